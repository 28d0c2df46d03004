"""Issue #12, item 1: no file outside the media root is ever read, served or published.

The attack: an editor wrote ``video: /etc/passwd`` (or ``photo: ../../secrets.toml``, or a
highlight ``media:`` that climbs out) in a campaign; the path was stored on the post and
``GET /media/post/{id}/video`` handed the file to any signed-in user.  Every way in is
refused here, at validation with the file, line and field, again when a file is served, and
again when it is published.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from campaigns.lifecycle import apply_campaign, plan_file
from channels.base import Account, OutgoingPost
from channels.errors import PermanentError
from channels.facebook import FacebookAdapter, FacebookLimits, facebook_adapter_from_settings
from channels.quota import InMemoryQuotaLedger
from channels.youtube import YouTubeAdapter, YouTubeLimits
from marketing.db import session_scope
from marketing.models import Highlight, Post
from marketing.problems import InvalidInput, Problem
from marketing.reference import import_reference
from marketing.settings import get_settings
from tests.support.web import WebClient

PNG = (Path(__file__).parents[2] / "marketing" / "demo" / "poster.png").read_bytes()
MP4 = (Path(__file__).parents[2] / "marketing" / "demo" / "clip.mp4").read_bytes()

CAMPAIGN = """\
slug: media-attack
name: ทดสอบไฟล์สื่อ
window: {{start: 2031-04-10, end: 2031-04-16}}
communities: [nan-ban-doi-ngoen]
channels:
  {channel}:
    account: community
{body}
schedule:
  at: [2031-04-13T09:00:00+07:00]
"""
FACEBOOK = '    message: "สวัสดี"\n    {key}: {value}\n'
YOUTUBE = '    title: "คลิป"\n    description: "คลิปชุมชน"\n    video: {value}\n'


@pytest.fixture
def root() -> Path:
    return get_settings().media_root


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=Path("marketing/sample/communities.yaml").resolve())
    session.commit()
    return session


def _campaign(folder: Path, channel: str, key: str, value: str) -> Path:
    """A campaign file three folders deep in ``folder`` (so ``../..`` reaches ``folder``)."""
    if channel == "youtube":
        body = YOUTUBE.format(value=value)
    else:
        body = FACEBOOK.format(key=key, value=value)
    path = folder / "a" / "b" / "c" / "campaign.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CAMPAIGN.format(channel=channel, body=body), encoding="utf-8")
    return path


def _refused(session: Session, path: Path) -> list[Problem]:
    with pytest.raises(InvalidInput) as caught:
        plan_file(session=session, path=path)
    return caught.value.problems


def _secret_outside(tmp_path: Path) -> Path:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('FB_PAGE_NAN = "EAAsecret"\n', encoding="utf-8")
    return secrets


# -- at validation: the campaign file -------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "key", "value", "why"),
    [
        ("youtube", "video", "/etc/passwd", "absolute path"),
        ("facebook", "video", "/etc/passwd", "absolute path"),
        ("facebook", "photo", "../../secrets.toml", "climbs out"),
        ("facebook", "photo", "examples/../../../secrets.toml", "climbs out"),
        ("facebook", "photo", "\"{{ '/etc/' ~ 'passwd' }}\"", "absolute path"),
        ("facebook", "photo", "\"{{ '..' }}/{{ '..' }}/secrets.toml\"", "climbs out"),
    ],
)
def test_a_campaign_media_path_outside_the_media_root_is_refused_at_its_line(
    sample: Session, tmp_path: Path, channel: str, key: str, value: str, why: str
) -> None:
    _secret_outside(tmp_path)
    path = _campaign(tmp_path, channel, key, value)
    problems = _refused(sample, path)
    assert [(p.file, p.line, p.field) for p in problems] == [
        (str(path), 9 if channel == "facebook" else 10, f"channels.{channel}.{key}")
    ]
    assert why in problems[0].message
    assert "media folder" in (problems[0].hint or "")
    with session_scope() as session:
        assert session.scalars(select(Post.id)).first() is None  # nothing stored


def test_a_symlink_in_the_media_root_that_leads_outside_is_refused(
    sample: Session, tmp_path: Path, root: Path
) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG)  # a real picture: only where it lives is wrong
    (root / "examples" / "leak.png").symlink_to(outside)
    (root / "escape").symlink_to(tmp_path)  # a linked folder, too
    for value in ("examples/leak.png", "escape/outside.png"):
        problems = _refused(sample, _campaign(tmp_path, "facebook", "photo", value))
        assert [(p.line, p.field) for p in problems] == [(9, "channels.facebook.photo")]
        assert "leads out of the media folder" in problems[0].message


def test_a_link_that_stays_inside_the_media_root_is_fine(
    sample: Session, tmp_path: Path, root: Path
) -> None:
    (root / "poster-link.png").symlink_to(root / "examples" / "songkran-poster.png")
    path = _campaign(tmp_path, "facebook", "photo", "poster-link.png")
    plan = plan_file(session=sample, path=path)
    assert plan.posts[0].content["photo"] == str(
        (root / "examples" / "songkran-poster.png").resolve()
    )


def test_a_text_file_renamed_mp4_is_refused_by_its_content(
    sample: Session, tmp_path: Path, root: Path
) -> None:
    (root / "fake.mp4").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (root / "real-clip.png").write_bytes(MP4)  # a real video with an image's name
    for channel, key, value in (
        ("youtube", "video", "fake.mp4"),
        ("facebook", "video", "fake.mp4"),
        ("facebook", "photo", "real-clip.png"),
        ("facebook", "photo", "examples/songkran-clip.mp4"),
    ):
        problems = _refused(sample, _campaign(tmp_path, channel, key, value))
        assert [p.field for p in problems] == [f"channels.{channel}.{key}"], (value, problems)
        assert "accepted" in problems[0].message


# -- at validation: highlights ---------------------------------------------------------------

COMMUNITY = """\
communities:
- slug: media-attack
  name_th: ชุมชนทดสอบ
  name_en: Test community
  province: น่าน
  highlights:
  - key: first
    title: ภาพแรก
    media:
    - {media}
"""


@pytest.mark.parametrize(
    ("media", "why"),
    [
        ("../../secrets.toml", "climbs out"),
        ("/etc/passwd", "absolute path"),
        ("sample/../../../secrets.toml", "climbs out"),
        ("fake.mp4", "accepted"),
    ],
)
def test_a_highlight_media_path_outside_the_root_or_not_media_is_refused(
    session: Session, tmp_path: Path, root: Path, media: str, why: str
) -> None:
    _secret_outside(tmp_path)
    (root / "fake.mp4").write_text("not a video", encoding="utf-8")
    path = tmp_path / "a" / "b" / "communities.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(COMMUNITY.format(media=media), encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        import_reference(session=session, path=path)
    problems = caught.value.problems
    assert [(p.file, p.line, p.field) for p in problems] == [
        (str(path), 10, "communities[0].highlights[0].media[0]")
    ]
    assert why in problems[0].message


def test_highlight_media_are_stored_relative_to_the_media_root(sample: Session) -> None:
    media = sample.scalars(select(Highlight.media)).all()
    written = [m for ms in media for m in ms]
    assert written and all(not os.path.isabs(m) and m.startswith("sample/") for m in written)


# -- at publish time: the adapters -----------------------------------------------------------


def _outgoing(content: dict[str, object]) -> OutgoingPost:
    account = Account("facebook", "100000000000001", "เพจทดสอบ", SecretStr("EAAtoken"))
    return OutgoingPost(marker="m" * 32, account=account, content=content)


def test_the_adapters_refuse_a_file_that_is_not_the_media_they_take(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    content = {"message": "สวัสดี", "video": str(fake)}
    assert [p.field for p in FacebookLimits.content_problems(content)] == ["video"]
    youtube = {"title": "คลิป", "description": "", "video": str(fake), "tags": []}
    assert [p.field for p in YouTubeLimits.content_problems(youtube)] == ["video"]
    real = tmp_path / "clip.mp4"
    real.write_bytes(MP4)
    assert YouTubeLimits.content_problems({**youtube, "video": str(real)}) == []


@pytest.mark.parametrize("key", ["photo", "video"])
def test_facebook_never_uploads_a_stored_path_outside_the_media_root(
    tmp_path: Path, root: Path, key: str
) -> None:
    # A post stored before the fix, or changed in the database: a real picture or clip, but
    # outside the root.  The Graph URL goes nowhere: a refusal must come before any request.
    outside = tmp_path / f"outside.{'png' if key == 'photo' else 'mp4'}"
    outside.write_bytes(PNG if key == "photo" else MP4)
    adapter = FacebookAdapter(graph_url="http://127.0.0.1:9", api_version="v25.0", media_root=root)
    with pytest.raises(PermanentError) as caught:
        adapter.publish(_outgoing({"message": "สวัสดี", key: str(outside)}))
    assert caught.value.code == "facebook:media-refused"
    assert "not a file inside the media folder" in str(caught.value)


def test_youtube_never_uploads_a_stored_path_outside_the_media_root(
    tmp_path: Path, root: Path
) -> None:
    outside = tmp_path / "clip.mp4"
    outside.write_bytes(MP4)
    adapter = YouTubeAdapter(
        root_url="http://127.0.0.1:9/", ledger=InMemoryQuotaLedger(), media_root=root
    )
    post = OutgoingPost(
        marker="m" * 32,
        account=Account("youtube", "UC1", "ช่องทดสอบ", SecretStr("ya29.token")),
        content={"title": "คลิป", "description": "", "tags": [], "video": str(outside)},
    )
    with pytest.raises(PermanentError) as caught:
        adapter.publish(post)
    assert caught.value.code == "youtube:media-refused"


def test_the_pipelines_adapters_are_given_the_media_root(root: Path) -> None:
    assert facebook_adapter_from_settings(get_settings()).media_root == root


# -- at serve time: the web app --------------------------------------------------------------


def _facebook_post(engine: Engine, tmp_path: Path, root: Path) -> int:
    """A Facebook post planned from a good campaign (its photo inside the root); its id."""
    path = _campaign(tmp_path, "facebook", "photo", "examples/songkran-poster.png")
    with session_scope(engine) as session:
        apply_campaign(session=session, path=path, actor="editor")
    with session_scope(engine) as session:
        return session.scalars(select(Post.id)).one()


def _tamper(engine: Engine, post_id: int, content: dict[str, str]) -> None:
    with session_scope(engine) as session:
        session.execute(update(Post).where(Post.id == post_id).values(content=content))


def test_a_post_whose_stored_path_was_changed_to_point_outside_is_not_served(
    viewer: WebClient, engine: Engine, tmp_path: Path, root: Path
) -> None:
    post_id = _facebook_post(engine, tmp_path, root)
    good = viewer.get(f"/media/post/{post_id}/photo")
    assert good.status_code == 200 and good.content == PNG
    secrets = _secret_outside(tmp_path)
    (root / "examples" / "leak.png").symlink_to(secrets)
    for stored in (
        "/etc/passwd",
        str(secrets),
        str(root / ".." / "marketing.sqlite3"),
        f"{root}/../../secrets.toml",
        str(root / "examples" / "leak.png"),
        "../secrets.toml",
    ):
        _tamper(engine, post_id, {"message": "x", "photo": stored})
        answer = viewer.get(f"/media/post/{post_id}/photo")
        assert answer.status_code == 404, stored
        assert b"EAAsecret" not in answer.content and b"root:" not in answer.content


def test_a_highlight_whose_stored_path_points_outside_is_not_served(
    viewer: WebClient, engine: Engine, tmp_path: Path
) -> None:
    assert viewer.get("/media/highlight/1/0").status_code == 200
    secrets = _secret_outside(tmp_path)
    for stored in ("/etc/passwd", str(secrets), "../../secrets.toml"):
        with session_scope(engine) as session:
            session.execute(update(Highlight).where(Highlight.id == 1).values(media=[stored]))
        assert viewer.get("/media/highlight/1/0").status_code == 404, stored


def test_only_an_image_is_shown_inline_and_anything_else_is_a_download(
    viewer: WebClient, engine: Engine, tmp_path: Path, root: Path
) -> None:
    post_id = _facebook_post(engine, tmp_path, root)
    image = viewer.get(f"/media/post/{post_id}/photo")
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "attachment" not in image.headers.get("content-disposition", "")
    (root / "page.png").write_bytes(b"<html><script>alert(document.cookie)</script></html>")
    (root / "clip.mp4").write_bytes(MP4)
    for name, expected_type in (
        ("page.png", "application/octet-stream"),  # named like a picture, but it is not one
        ("clip.mp4", "video/mp4"),
    ):
        _tamper(engine, post_id, {"message": "x", "photo": str(root / name)})
        answer = viewer.get(f"/media/post/{post_id}/photo")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == expected_type
        assert answer.headers["content-disposition"].startswith("attachment")
        assert answer.headers["x-content-type-options"] == "nosniff"
