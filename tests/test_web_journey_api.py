"""The Songkran journey of #14 through the JSON API, on SQLite and PostgreSQL: the poster, the
clip and the e-mail template uploaded to the media library (the shipped examples are not in
the media folder), the campaign file that names them previewed and applied -- and its posts
are the posts the composer's form makes of the same file: same channel, community, time and
content (the campaign's slug, which the tracked links carry, aside)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from marketing.db import session_scope
from marketing.models import Campaign, Community, Post, Role
from marketing.settings import get_settings
from marketing.web import create_app
from tests.support.media import EXAMPLES_MEDIA
from tests.support.web import NOW, WebClient, add_user, clock_at, import_sample, token_for
from tests.test_web_composer import SONGKRAN, submitted_from

TEMPLATE = Path(__file__).resolve().parents[1] / "campaigns/examples/templates"
FORM_SLUG, API_SLUG = "songkran-2027", "songkran-api"


def planned(engine: Engine, slug: str) -> list[tuple[str, str, str, str]]:
    """The campaign's posts as (channel, community, time, content), the slug written as the
    form's, sorted."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Post.channel, Community.slug, Post.scheduled_at, Post.content)
            .join(Campaign, Campaign.id == Post.campaign_id)
            .join(Community, Community.id == Post.community_id)
            .where(Campaign.slug == slug)
        ).all()
    return sorted(
        (
            channel.value,
            community,
            at.isoformat(),
            json.dumps(content, sort_keys=True, ensure_ascii=False).replace(slug, FORM_SLUG),
        )
        for channel, community, at, content in rows
    )


def test_the_songkran_campaign_through_the_api_gives_the_form_s_posts(engine: Engine) -> None:
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    # The shipped examples are not in this media folder: they come through the library.
    shutil.rmtree(get_settings().media_root / "examples")
    app = create_app(engine=engine, clock=clock_at(NOW))
    headers = {"Authorization": f"Bearer {token_for(engine, 'editor')}"}
    text = SONGKRAN.replace(f"slug: {FORM_SLUG}", f"slug: {API_SLUG}", 1)
    assert text != SONGKRAN
    files: list[tuple[str, tuple[str, bytes]]] = [
        ("files", (p.name, p.read_bytes()))
        for p in (
            EXAMPLES_MEDIA / "songkran-poster.png",
            EXAMPLES_MEDIA / "songkran-clip.mp4",
            TEMPLATE / "songkran-email.html.j2",
        )
    ]
    with TestClient(app) as api:
        refused = api.post("/api/v1/campaigns/preview", json={"yaml": text}, headers=headers)
        assert not refused.json()["ok"]  # nothing uploaded yet: the media are missing
        uploaded = api.post("/api/v1/media", files=files, headers=headers)
        assert uploaded.status_code == 201, uploaded.text
        assert {i["name"] for i in uploaded.json()} == {
            "songkran-poster.png",
            "songkran-clip.mp4",
            "songkran-email.html.j2",
        }
        preview: Any = api.post("/api/v1/campaigns/preview", json={"yaml": text}, headers=headers)
        assert preview.status_code == 200, preview.text[:2000]
        body = preview.json()
        assert body["ok"], body["problems"]
        assert {p["channel"] for p in body["previews"]} == {"facebook", "youtube", "email"}
        applied = api.post("/api/v1/campaigns", json={"yaml": text}, headers=headers)
        assert applied.status_code == 200, applied.text
    # The same file through the composer's form.
    editor = WebClient(app).sign_in("editor")
    made = editor.post(
        "/campaigns/compose",
        data={"base": SONGKRAN, "action": "apply", **submitted_from(SONGKRAN)},
    )
    assert made.status_code == 303, made.text[:2000]
    editor.close()
    through_api, through_form = planned(engine, API_SLUG), planned(engine, FORM_SLUG)
    assert len(through_api) > 0
    assert {p[0] for p in through_api} == {"facebook", "youtube", "email"}
    assert through_api == through_form


def test_videos_youtube_would_refuse_are_turned_away_at_upload_in_thai_with_what_to_do(
    engine: Engine, tmp_path: Path
) -> None:
    """Through the library form staff use: a Matroska video named .mp4 (the wrong container)
    and one over YouTube's size limit (lowered here, as a real one is 256 GB) are refused at
    upload -- not at publishing time -- each saying in Thai what is wrong and what to do, and
    neither is kept."""
    from marketing.media_library import default_rules
    from marketing.models import MediaItem
    from tests.support.videos import make_video

    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    wrong = make_video(tmp_path / "wrong-container.mp4", container="matroska")
    large = make_video(tmp_path / "large-clip.mp4")
    limit = large.stat().st_size - 1
    rules = default_rules().with_limit("youtube", video_max_bytes=limit)
    app = create_app(engine=engine, clock=clock_at(NOW), media_rules=rules)
    editor = WebClient(app).sign_in("editor")
    for video in (wrong, large):
        answer = editor.http.post(
            "/library",
            data={"csrf_token": editor.csrf, "people": "none"},
            files=[("files", (video.name, video.read_bytes()))],
        )
        assert answer.status_code == 303, answer.text[:500]
    page = editor.get("/library").text
    editor.close()
    flashes = " ".join(re.findall(r'class="flash error"[^>]*>(.*?)</', page, re.S))
    # the wrong container: what it is, and to export it again as MP4
    assert "wrong-container.mp4: YouTube: ภายในวิดีโอเป็นรูปแบบ matroska" in flashes, flashes
    assert "ส่งออกใหม่เป็นไฟล์ MP4 (ภาพ H.264 เสียง AAC)" in flashes
    # over the size: how large, the most taken, and to make it smaller
    assert f"large-clip.mp4: YouTube: ไฟล์มีขนาด {limit + 1:,} ไบต์" in flashes, flashes
    assert f"รับได้ไม่เกิน {limit:,} ไบต์ ลดขนาดไฟล์" in flashes
    assert "Export it again" not in flashes and "Make it smaller" not in flashes  # Thai only
    with session_scope(engine) as session:
        assert session.scalars(select(MediaItem)).first() is None
