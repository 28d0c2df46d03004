"""Creators' videos about a community: staff add a YouTube URL; public statistics come from
``videos.list`` with the project's API key through google-api-python-client against the
YouTube sandbox (50 ids a call); shown on the community page beside the owned channels, never
mixed into them -- in Thai, at desktop and phone width in Chromium (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from channels.errors import PermanentError
from channels.sandbox.youtube import YouTubeSandbox
from channels.youtube_public import public_videos, video_id_from_url
from marketing.cli import main
from marketing.cli.communities import SAMPLE
from marketing.creators import CreatorRefused, add_creator_video, refresh_creator_videos
from marketing.models import CreatorVideo, MetricSnapshot, Post, Role
from marketing.reference import import_reference
from marketing.web import create_app
from tests.support.web import NOW, WebClient, add_user, clock_at, served
from tests.test_web_browser import browser  # noqa: F401  (the module's Chromium, reused)
from tests.test_web_phone import Walker

KEY = "sandbox-api-key"
NAN = "nan-ban-doi-ngoen"
WHEN = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _id(n: int) -> str:
    return f"vid{n:08d}"  # 11 characters, like YouTube's


@pytest.fixture
def youtube() -> Iterator[YouTubeSandbox]:
    sandbox = YouTubeSandbox().start()
    sandbox.register_api_key(KEY)
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://youtu.be/dQw4w9WgXcQ?t=42", "dQw4w9WgXcQ"),
        ("youtube.com/shorts/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://m.youtube.com/watch?feature=share&v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/embed/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/channel/UCabc", None),
        ("https://evil.example/watch?v=dQw4w9WgXcQ", None),
        ("https://youtu.be/short", None),
        ("not a url at all", None),
    ],
)
def test_video_ids_from_addresses(url: str, found: str | None) -> None:
    assert video_id_from_url(url) == found


def test_public_statistics_come_50_ids_a_call_with_the_key(youtube: YouTubeSandbox) -> None:
    for n in range(120):
        youtube.add_public_video(_id(n), channel_id="UCcreator", title=f"ตอนที่ {n}")
    youtube.add_public_video(_id(500), channel_id="UCcreator", title="ลับ", privacy="private")
    youtube.clock.advance(timedelta(hours=30))
    ids = [_id(n) for n in range(120)] + [_id(500), _id(999)]
    found = public_videos(ids, api_key=SecretStr(KEY), root_url=youtube.url + "/")
    assert sorted(found) == sorted(_id(n) for n in range(120))  # private and unknown: absent
    assert youtube.calls_to("videos.list") == 3 and youtube.quota_used() == 3
    assert all(query.get("key") == KEY for _m, query in youtube.calls)
    assert found[_id(7)].title == "ตอนที่ 7" and (found[_id(7)].views or 0) > 0
    with pytest.raises(PermanentError) as refused:
        public_videos([_id(1)], api_key=SecretStr("wrong"), root_url=youtube.url + "/")
    assert refused.value.code == "youtube:api-key-refused"
    assert KEY not in str(refused.value) and "wrong" not in str(refused.value)


def test_added_videos_get_their_figures_and_stay_apart_from_owned_channels(
    sample: Session, youtube: YouTubeSandbox
) -> None:
    youtube.add_public_video(_id(1), channel_id="UCcreator", title="เที่ยวบ้านดอยเงิน",
                             channel_title="พาเที่ยวชุมชน")  # fmt: skip
    youtube.add_public_video(_id(2), channel_id="UCcreator", title="ผ้าทอเมืองน่าน")
    first = add_creator_video(
        session=sample,
        community_slug=NAN,
        url=f"https://youtu.be/{_id(1)}",
        actor="malee",
        now=WHEN,
    )
    again = add_creator_video(
        session=sample,
        community_slug=NAN,
        url=f"https://www.youtube.com/watch?v={_id(1)}",
        actor="malee",
        now=WHEN,
    )
    assert again.id == first.id
    add_creator_video(
        session=sample, community_slug=NAN, url=f"youtu.be/{_id(2)}", actor="malee", now=WHEN
    )
    with pytest.raises(CreatorRefused) as refused:
        add_creator_video(
            session=sample, community_slug=NAN, url="https://example.org/x", actor="m", now=WHEN
        )
    assert refused.value.code == "not_a_video"
    sample.commit()

    youtube.clock.advance(timedelta(days=3))
    done = refresh_creator_videos(
        session=sample, api_key=SecretStr(KEY), root_url=youtube.url + "/", now=WHEN
    )
    sample.commit()
    assert (done.videos, done.missing, done.calls) == (2, 0, 1)
    video = sample.scalars(select(CreatorVideo).where(CreatorVideo.video_id == _id(1))).one()
    assert video.title == "เที่ยวบ้านดอยเงิน" and video.channel_title == "พาเที่ยวชุมชน"
    assert (video.views or 0) > 0 and video.fetched_at == WHEN
    views = video.views

    # The creator makes one private: it keeps its last figures, marked missing.
    youtube.videos[_id(1)].status["privacyStatus"] = "private"
    done = refresh_creator_videos(
        session=sample, api_key=SecretStr(KEY), root_url=youtube.url + "/", now=WHEN
    )
    sample.commit()
    sample.expire_all()
    video = sample.scalars(select(CreatorVideo).where(CreatorVideo.video_id == _id(1))).one()
    assert done.missing == 1 and video.missing and video.views == views
    # Never mixed into the owned channels: no post, no snapshot came of it.
    assert sample.scalar(select(func.count()).select_from(Post)) == 0
    assert sample.scalar(select(func.count()).select_from(MetricSnapshot)) == 0


def test_the_commands_add_and_refresh_in_thai(
    engine: Engine, youtube: YouTubeSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketing.settings import get_settings

    youtube.add_public_video(_id(3), channel_id="UCcreator", title="ตลาดเช้า")
    runner = CliRunner()
    assert runner.invoke(main, ["communities", "import", "--sample"]).exit_code == 0
    refused = runner.invoke(main, ["communities", "creators-refresh"])
    assert refused.exit_code != 0 and "MARKETING_YOUTUBE_API_KEY" in refused.output
    added = runner.invoke(main, ["communities", "creator-add", NAN, f"https://youtu.be/{_id(3)}"])
    assert added.exit_code == 0 and f"เพิ่มวิดีโอ {_id(3)} ให้ {NAN} แล้ว" in added.output
    bad = runner.invoke(main, ["communities", "creator-add", NAN, "https://example.org"])
    assert bad.exit_code != 0 and "ไม่ใช่ที่อยู่ของวิดีโอ YouTube" in bad.output
    monkeypatch.setenv("MARKETING_YOUTUBE_API_KEY", KEY)
    monkeypatch.setenv("MARKETING_YOUTUBE_ROOT_URL", youtube.url + "/")
    get_settings.cache_clear()
    done = runner.invoke(main, ["communities", "creators-refresh"])
    assert done.exit_code == 0, done.output
    assert "อ่านวิดีโอ 1 รายการใน 1 ครั้ง" in done.output
    assert KEY not in done.output


def _page(engine: Engine, role: Role, name: str) -> WebClient:
    add_user(engine, name, role)
    return WebClient(create_app(engine=engine, clock=clock_at(NOW))).sign_in(name)


def test_editors_add_a_video_on_the_community_page(sample: Session, engine: Engine) -> None:
    editor = _page(engine, Role.EDITOR, "malee")
    answer = editor.post(f"/communities/{NAN}/creators", data={"url": f"https://youtu.be/{_id(4)}"})
    assert answer.status_code == 303
    page = editor.get(f"/communities/{NAN}").text
    assert "วิดีโอจากครีเอเตอร์" in page and "เพิ่มวิดีโอแล้ว" in page
    assert f"watch?v={_id(4)}" in page and "ยังไม่ได้อ่าน" in page
    wrong = editor.post(f"/communities/{NAN}/creators", data={"url": "https://example.org/x"})
    assert wrong.status_code == 303
    assert "นี่ไม่ใช่ที่อยู่ของวิดีโอ YouTube" in editor.get(f"/communities/{NAN}").text
    viewer = _page(engine, Role.VIEWER, "somchai")
    assert 'id="creator-add"' not in viewer.get(f"/communities/{NAN}").text
    assert (
        viewer.post(f"/communities/{NAN}/creators", data={"url": "https://youtu.be/x"}).status_code
        == 403
    )
    assert sample.scalar(select(func.count()).select_from(CreatorVideo)) == 1


def test_the_creators_section_fits_desktop_and_phone(
    browser: Any,  # noqa: F811
    sample: Session,
    engine: Engine,
    youtube: YouTubeSandbox,
) -> None:
    youtube.add_public_video(
        _id(5),
        channel_id="UCcreator",
        title="พาเที่ยวบ้านดอยเงิน ชมการทอผ้าและชิมอาหารพื้นถิ่นแบบยาวมากสำหรับโทรศัพท์",
        channel_title="ช่องพาเที่ยวชุมชนทั่วไทย",
    )
    add_creator_video(
        session=sample, community_slug=NAN, url=f"https://youtu.be/{_id(5)}", actor="m", now=WHEN
    )
    youtube.clock.advance(timedelta(days=2))
    refresh_creator_videos(
        session=sample, api_key=SecretStr(KEY), root_url=youtube.url + "/", now=WHEN
    )
    sample.commit()
    add_user(engine, "admin", Role.ADMIN)
    with served(engine, clock=clock_at(NOW)) as server:
        walker = Walker(browser, server.url, photos=True)
        walker.sign_in()
        walker.check("community-creators", f"/communities/{NAN}#creators")
        assert walker.problems == []
        for page, _size in walker.tabs:
            text = page.locator("#creators").inner_text()
            assert "ช่องพาเที่ยวชุมชนทั่วไทย" in text and "ตัวเลข ณ" in text
