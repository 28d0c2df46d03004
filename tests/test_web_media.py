"""The media library in the web app and the JSON API (#14): several files in one plain form, the
chunked upload with its offsets, a video YouTube would refuse turned away at upload in Thai, the
editor role for writes, and the shipped Songkran campaign working through the API once its
poster, clip and e-mail template are in the library.  Both databases."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from marketing.db import session_scope
from marketing.media_library import CHUNK_MAX_BYTES, default_rules
from marketing.models import AuditLog, Consent, MediaItem, MediaUpload, PeopleShown, Role
from marketing.settings import get_settings
from marketing.web import create_app
from tests.support.media import EXAMPLES_MEDIA, ROOT
from tests.support.videos import make_video
from tests.support.web import NOW, WebClient, add_user, clock_at, import_sample, token_for

TEMPLATE = ROOT / "campaigns/examples/templates/songkran-email.html.j2"
SONGKRAN = ROOT / "campaigns/examples/songkran-2027.yaml"


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    add_user(engine, "viewer", Role.VIEWER)
    # The shipped examples are not in this media folder: they come through the library.
    shutil.rmtree(get_settings().media_root / "examples")
    return create_app(engine=engine, clock=clock_at(NOW))


@pytest.fixture
def editor(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("editor")
    yield client
    client.close()


def _bearer(engine: Engine, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(engine, name)}"}


def _items(engine: Engine) -> dict[str, MediaItem]:
    with session_scope(engine) as session:
        items = {i.name: i for i in session.scalars(select(MediaItem))}
        session.expunge_all()
        return items


def test_several_files_in_one_plain_form_each_checked_and_shown_with_their_fit(
    app: FastAPI, editor: WebClient, engine: Engine, tmp_path: Path
) -> None:
    bad = make_video(tmp_path / "lossless.avi", codec="ffv1")
    files = [
        ("files", ("songkran-poster.png", (EXAMPLES_MEDIA / "songkran-poster.png").read_bytes())),
        ("files", ("songkran-clip.mp4", (EXAMPLES_MEDIA / "songkran-clip.mp4").read_bytes())),
        ("files", ("songkran-email.html.j2", TEMPLATE.read_bytes())),
        ("files", ("lossless.avi", bad.read_bytes())),
    ]
    answer = editor.http.post(
        "/library",
        data={"csrf_token": editor.csrf, "people": "yes", "consent": "written"},
        files=files,
    )
    assert answer.status_code == 303, answer.text[:500]
    page = editor.get("/library").text
    assert "เพิ่ม songkran-poster.png เข้าคลังสื่อแล้ว" in page
    # The video YouTube would refuse is turned away now, saying what to do, in Thai.
    assert "lossless.avi: YouTube: วิดีโอเข้ารหัสแบบ ffv1 ซึ่งไม่รับ" in page
    assert "ส่งออกใหม่เป็นไฟล์ MP4 แบบ H.264" in page
    items = _items(engine)
    assert set(items) == {"songkran-poster.png", "songkran-clip.mp4", "songkran-email.html.j2"}
    assert items["songkran-poster.png"].people is PeopleShown.YES
    assert items["songkran-poster.png"].consent is Consent.WRITTEN
    for item in items.values():
        assert f'href="/library/{item.id}"' in page
    assert page.count('class="fit fit-ok"') == 4  # poster: Facebook; clip: both; template: e-mail
    clip = items["songkran-clip.mp4"]
    thumb = editor.get(f"/library/{clip.id}/thumbnail")
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    detail = editor.get(f"/library/{clip.id}").text
    assert "h264" in detail and "ใช้ได้" in detail
    with session_scope(engine) as session:
        uploads = session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "media.upload")
        )
    assert uploads == 3


def test_people_and_consent_are_changed_by_an_editor_not_a_viewer(
    app: FastAPI, editor: WebClient, engine: Engine
) -> None:
    poster = (EXAMPLES_MEDIA / "songkran-poster.png").read_bytes()
    editor.http.post(
        "/library", data={"csrf_token": editor.csrf}, files=[("files", ("p.png", poster))]
    )
    item = _items(engine)["p.png"]
    assert (item.people, item.consent) == (PeopleShown.UNKNOWN, Consent.MISSING)
    answer = editor.post(
        f"/library/{item.id}/people",
        {"people": "yes", "consent": "electronic", "consent_note": "ไลน์กลุ่มชุมชน 3 ม.ค."},
    )
    assert answer.status_code == 303
    item = _items(engine)["p.png"]
    assert (item.people, item.consent, item.consent_note) == (
        PeopleShown.YES,
        Consent.ELECTRONIC,
        "ไลน์กลุ่มชุมชน 3 ม.ค.",
    )
    viewer = WebClient(app).sign_in("viewer")
    assert viewer.get("/library").status_code == 200
    assert 'id="upload-form"' not in viewer.get("/library").text
    refused = viewer.post(f"/library/{item.id}/people", {"people": "none", "consent": "missing"})
    assert refused.status_code == 403
    refused = viewer.http.post(
        "/library", data={"csrf_token": viewer.csrf}, files=[("files", ("q.png", poster))]
    )
    assert refused.status_code == 403
    viewer.close()
    # Without the session's CSRF token, an editor's form is refused too.
    forged = editor.http.post("/library", files=[("files", ("r.png", poster))])
    assert forged.status_code == 403
    assert set(_items(engine)) == {"p.png"}


def test_api_upload_list_item_and_a_refusal_in_the_readers_language(
    app: FastAPI, engine: Engine, tmp_path: Path
) -> None:
    bad = make_video(tmp_path / "clip.mp4", container="matroska")
    with TestClient(app) as api:
        answer = api.post(
            "/api/v1/media",
            files=[
                ("files", ("poster.png", (EXAMPLES_MEDIA / "songkran-poster.png").read_bytes()))
            ],
            data={"people": "none"},
            headers=_bearer(engine, "editor"),
        )
        assert answer.status_code == 201, answer.text
        [item] = answer.json()
        assert item["kind"] == "image" and item["fit"] == {"facebook": []}
        assert item["consent"] == "not-needed" and item["reference"].startswith("library:")
        listed = api.get("/api/v1/media", headers=_bearer(engine, "viewer")).json()
        assert [i["name"] for i in listed] == ["poster.png"]
        one = api.get(f"/api/v1/media/{item['id']}", headers=_bearer(engine, "viewer"))
        assert one.json()["sha256"] == item["sha256"]
        refused = api.post(
            "/api/v1/media",
            files=[("files", ("clip.mp4", bad.read_bytes()))],
            headers=_bearer(engine, "editor"),
        )
        assert refused.status_code == 422
        youtube = [r for r in refused.json()["refusals"] if r["channel"] == "youtube"]
        assert youtube[0]["code"] == "media:container"
        assert "matroska" in youtube[0]["message"]
        assert "ส่งออกใหม่เป็นไฟล์ MP4" in youtube[0]["shown"]  # the editor reads Thai
        viewer = api.post(
            "/api/v1/media",
            files=[("files", ("p.png", b"x"))],
            headers=_bearer(engine, "viewer"),
        )
        assert viewer.status_code == 403
    assert set(_items(engine)) == {"poster.png"}


def test_a_chunked_upload_resumes_at_the_servers_offset_and_refuses_others(
    app: FastAPI, engine: Engine, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "clip.mp4", seconds=4).read_bytes()
    third = len(clip) // 3
    headers = _bearer(engine, "editor")
    with TestClient(app) as api:
        start = api.post(
            "/api/v1/media/uploads",
            json={"name": "คลิป.mp4", "size": len(clip)},
            headers=headers,
        )
        assert start.status_code == 201, start.text
        location = start.headers["location"]

        def put(first: int, body: bytes, total: int = len(clip)):  # type: ignore[no-untyped-def]
            return api.put(
                location,
                content=body,
                headers={
                    **headers,
                    "Content-Range": f"bytes {first}-{first + len(body) - 1}/{total}",
                },
            )

        answer = put(0, clip[:third])
        assert answer.status_code == 308 and answer.headers["range"] == f"bytes=0-{third - 1}"
        # Sent again, or skipping ahead: 409 with where to go on from.
        for first in (0, 2 * third):
            again = put(first, clip[first : first + third])
            assert again.status_code == 409 and again.json()["received"] == third
        assert put(third, clip[third:], total=len(clip) + 5).status_code == 400
        status = api.put(location, headers={**headers, "Content-Range": f"bytes */{len(clip)}"})
        assert status.status_code == 308 and status.json()["received"] == third
        # Another user cannot write into it.
        add_user(engine, "other", Role.EDITOR)
        other = api.put(
            location,
            content=clip[third:],
            headers={
                **_bearer(engine, "other"),
                "Content-Range": f"bytes {third}-{len(clip) - 1}/{len(clip)}",
            },
        )
        assert other.status_code == 404
        done = put(third, clip[third:])
        assert done.status_code == 201, done.text
        assert done.json()["name"] == "คลิป.mp4" and done.json()["video_codec"] == "h264"
        assert api.put(location, headers={**headers, "Content-Range": "bytes */1"}).status_code == (
            404
        )
        # Bounded: a chunk larger than the most a chunk may be never reaches the app.
        start = api.post(
            "/api/v1/media/uploads",
            json={"name": "big.mp4", "size": 3 * CHUNK_MAX_BYTES},
            headers=headers,
        )
        big = api.put(
            start.headers["location"],
            content=b"\0" * (CHUNK_MAX_BYTES + 70 * 1024),
            headers={**headers, "Content-Range": f"bytes 0-{CHUNK_MAX_BYTES + 70 * 1024 - 1}/1"},
        )
        assert big.status_code == 413
        # Keys that are not keys are refused before the database is asked.
        assert api.put(
            "/api/v1/media/uploads/..%2F..%2Fetc", headers=headers, content=b"x"
        ).status_code in (404, 422)
        refused = api.post(
            "/api/v1/media/uploads",
            json={"name": "../../clip.mp4", "size": 10},
            headers=headers,
        )
        assert refused.status_code == 422
        assert refused.json()["refusals"][0]["code"] == "media:name"
    assert set(_items(engine)) == {"คลิป.mp4"}
    # Only the unfinished upload (big.mp4, whose chunk never reached the app) is left, with
    # no partial file: the finished one's parts became the library file.
    partial = get_settings().media_root / "library" / ".partial"
    assert list(partial.iterdir()) == []
    with session_scope(engine) as session:
        assert list(session.scalars(select(MediaUpload.name))) == ["big.mp4"]


def test_a_video_over_youtubes_lowered_limit_is_refused_at_upload(
    engine: Engine, tmp_path: Path
) -> None:
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    clip = make_video(tmp_path / "clip.mp4").read_bytes()
    rules = default_rules().with_limit("youtube", video_max_bytes=len(clip) - 1)
    app = create_app(engine=engine, clock=clock_at(NOW), media_rules=rules)
    with TestClient(app) as api:
        answer = api.post(
            "/api/v1/media",
            files=[("files", ("clip.mp4", clip))],
            headers=_bearer(engine, "editor"),
        )
    assert answer.status_code == 422
    [refusal] = answer.json()["refusals"]
    assert (refusal["channel"], refusal["code"]) == ("youtube", "media:too-large")
    assert f"{len(clip):,}" in refusal["shown"] and "ลดขนาดไฟล์" in refusal["shown"]


def test_the_shipped_songkran_campaign_works_through_the_api_after_its_uploads(
    app: FastAPI, engine: Engine
) -> None:
    headers = _bearer(engine, "editor")
    text = SONGKRAN.read_text(encoding="utf-8")
    with TestClient(app) as api:
        before = api.post("/api/v1/campaigns/check", json={"yaml": text}, headers=headers).json()
        assert not before["ok"]
        assert {p["field"] for p in before["problems"]} >= {
            "channels.facebook.photo",
            "channels.youtube.video",
        }
        answer = api.post(
            "/api/v1/media",
            files=[
                ("files", (p.name, p.read_bytes()))
                for p in (
                    EXAMPLES_MEDIA / "songkran-poster.png",
                    EXAMPLES_MEDIA / "songkran-clip.mp4",
                    TEMPLATE,
                )
            ],
            headers=headers,
        )
        assert answer.status_code == 201, answer.text
        after = api.post("/api/v1/campaigns/check", json={"yaml": text}, headers=headers).json()
        assert after["ok"], after["problems"]
        assert after["posts"] > 0
        applied = api.post("/api/v1/campaigns", json={"yaml": text}, headers=headers)
        assert applied.status_code == 200, applied.text
        posts = api.get(
            "/api/v1/posts", params={"campaign": "songkran-2027"}, headers=headers
        ).json()
    items = _items(engine)
    root = get_settings().media_root
    photos = {p["content"].get("photo") for p in posts if p["channel"] == "facebook"}
    assert photos == {str((root / items["songkran-poster.png"].path).resolve())}


def test_a_file_with_people_and_no_consent_cannot_be_posted_until_consent_is_recorded(
    app: FastAPI, editor: WebClient, engine: Engine
) -> None:
    campaign = """\
slug: faces
name: ภาพชาวบ้าน
window: {start: 2027-04-01, end: 2027-04-20}
communities: [nan-ban-doi-ngoen]
channels:
  facebook:
    account: community
    message: "ภาพจากงานสงกรานต์"
    photo: songkran-poster.png
schedule:
  at: [2027-04-13T09:00:00+07:00]
"""
    editor.http.post(
        "/library",
        data={"csrf_token": editor.csrf, "people": "yes"},
        files=[
            (
                "files",
                ("songkran-poster.png", (EXAMPLES_MEDIA / "songkran-poster.png").read_bytes()),
            )
        ],
    )
    item = _items(engine)["songkran-poster.png"]
    assert (item.people, item.consent) == (PeopleShown.YES, Consent.MISSING)
    headers = _bearer(engine, "editor")
    with TestClient(app) as api:
        refused = api.post("/api/v1/campaigns/check", json={"yaml": campaign}, headers=headers)
        [problem] = refused.json()["problems"]
        assert problem["field"] == "channels.facebook.photo" and problem["line"] == 9
        assert "no consent" in problem["message"]
        page = editor.post("/campaigns/check", {"yaml": campaign}).text
        assert "ยังไม่ได้บันทึกความยินยอม" in page, re.sub(r"<[^>]+>", " ", page)[-3000:]
        editor.post(f"/library/{item.id}/people", {"people": "yes", "consent": "written"})
        ok = api.post("/api/v1/campaigns/check", json={"yaml": campaign}, headers=headers)
        assert ok.json()["ok"], ok.json()["problems"]


def test_an_api_batch_with_one_refused_file_keeps_none_of_them(
    app: FastAPI, engine: Engine, tmp_path: Path
) -> None:
    from marketing.media import find_in_library

    bad = make_video(tmp_path / "lossless.avi", codec="ffv1")
    with TestClient(app) as api:
        answer = api.post(
            "/api/v1/media",
            files=[
                ("files", ("poster.png", (EXAMPLES_MEDIA / "songkran-poster.png").read_bytes())),
                ("files", ("lossless.avi", bad.read_bytes())),
            ],
            headers=_bearer(engine, "editor"),
        )
    assert answer.status_code == 422 and answer.json()["file"] == "lossless.avi"
    assert _items(engine) == {}
    root = get_settings().media_root
    assert find_in_library(root, "poster.png") is None  # no file without its row
    assert [p for p in (root / "library").rglob("*") if p.is_file()] == []


def test_many_refusals_in_one_form_keep_the_session_and_are_counted(
    app: FastAPI, editor: WebClient, engine: Engine
) -> None:
    """The session is a signed cookie (about 4 KB): twenty refused files with long Thai
    messages must not overflow it and sign the editor out."""
    files = [("files", (f"ภาพงานสงกรานต์-หมายเลข-{i:02}.png", b"not a picture")) for i in range(20)]
    answer = editor.http.post("/library", data={"csrf_token": editor.csrf}, files=files)
    assert answer.status_code == 303
    assert len(answer.headers["set-cookie"]) < 4000
    page = editor.get("/library")
    assert page.status_code == 200  # still signed in
    assert page.text.count('class="flash error"') == 4
    assert "… และอีก 17 รายการ" in page.text
    assert _items(engine) == {}
