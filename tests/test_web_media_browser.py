"""Uploading to the media library from a phone, in a real headless Chromium (#14): several files
chosen at once at 390 px, each with its own progress bar, a video larger than one chunk sent in
parts by the page's own script, a video YouTube would refuse turned away in Thai; and the same
form without JavaScript, posted as a plain multipart form.  Pages never wider than the phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from marketing.db import session_scope
from marketing.media_library import CHUNK_MAX_BYTES
from marketing.models import MediaItem, Role
from tests.support.media import EXAMPLES_MEDIA
from tests.support.videos import make_video
from tests.support.web import NOW, PASSWORD, add_user, clock_at, import_sample, served
from tests.test_web_browser import ARTIFACTS, browser  # noqa: F401  (the module's Chromium)

PHONE = {"width": 390, "height": 844}
WIDER_THAN_THE_SCREEN = "() => document.documentElement.scrollWidth"


def _names(engine: Engine) -> set[str]:
    with session_scope(engine) as session:
        return set(session.scalars(select(MediaItem.name)))


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state("load")


def test_several_files_from_a_phone_with_progress_and_chunks(
    browser: Any,  # noqa: F811
    engine: Engine,
    tmp_path: Path,
) -> None:
    import_sample(engine)
    add_user(engine, "somchai", Role.EDITOR)
    # Larger than the script's chunk (half of the most a chunk may be): sent in several parts.
    big = make_video(tmp_path / "long-clip.mp4", seconds=4, noisy=True)
    refused = make_video(tmp_path / "lossless.avi", codec="ffv1")
    errors: list[str] = []
    with served(engine, clock=clock_at(NOW)) as server:
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        _sign_in(page, server.url, "somchai")
        page.goto(server.url + "/library")
        assert page.evaluate(WIDER_THAN_THE_SCREEN) <= PHONE["width"]
        assert "คลังสื่อ" in page.inner_text("h1")
        page.set_input_files(
            "#files",
            [str(EXAMPLES_MEDIA / "songkran-poster.png"), str(big), str(refused)],
        )
        page.select_option("#people", "none")
        page.click("#upload-form button[type=submit]")
        # One file is refused, so the page stays to say why instead of reloading.
        page.wait_for_selector("#upload-form[data-finished]", timeout=120_000)
        rows = page.query_selector_all("#upload-progress li")
        texts = [r.inner_text() for r in rows]
        assert len(rows) == 4  # three files and the link back to the library
        bars = page.eval_on_selector_all(
            "#upload-progress progress", "bars => bars.map(b => [b.value, b.max])"
        )
        assert bars[0][0] == bars[0][1] and bars[1][0] == bars[1][1]  # complete
        assert "เพิ่มเข้าคลังสื่อแล้ว" in texts[0] and "เพิ่มเข้าคลังสื่อแล้ว" in texts[1]
        assert "วิดีโอเข้ารหัสแบบ ffv1 ซึ่งไม่รับ" in texts[2]
        assert page.evaluate(WIDER_THAN_THE_SCREEN) <= PHONE["width"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-library-upload-phone.png"), full_page=True)
        page.click("#upload-progress a")
        page.wait_for_load_state("load")
        # Thumbnails load lazily: scroll to them, then wait until every one has loaded.
        page.locator(".media-grid").scroll_into_view_if_needed()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.media-grid img')]"
            ".every(i => i.complete && i.naturalWidth > 0)",
            timeout=20_000,
        )
        thumbnails = page.eval_on_selector_all(
            ".media-grid img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
        )
        assert thumbnails == [True, True]  # the poster and a frame of the video
        assert page.evaluate(WIDER_THAN_THE_SCREEN) <= PHONE["width"]
        page.screenshot(path=str(ARTIFACTS / "web-library-phone.png"), full_page=True)
        context.close()
    assert errors == []
    assert _names(engine) == {"songkran-poster.png", "long-clip.mp4"}
    assert big.stat().st_size > CHUNK_MAX_BYTES // 2


def test_the_upload_form_works_without_javascript(
    browser: Any,  # noqa: F811
    engine: Engine,
) -> None:
    import_sample(engine)
    add_user(engine, "somchai", Role.EDITOR)
    with served(engine, clock=clock_at(NOW)) as server:
        context = browser.new_context(viewport=PHONE, java_script_enabled=False)
        page = context.new_page()
        _sign_in(page, server.url, "somchai")
        page.goto(server.url + "/library")
        page.set_input_files(
            "#files",
            [
                str(EXAMPLES_MEDIA / "songkran-poster.png"),
                str(EXAMPLES_MEDIA / "songkran-clip.mp4"),
            ],
        )
        page.click("#upload-form button[type=submit]")
        page.wait_for_load_state("load")
        text = page.inner_text("main")
        assert "เพิ่ม songkran-poster.png เข้าคลังสื่อแล้ว" in text
        assert "เพิ่ม songkran-clip.mp4 เข้าคลังสื่อแล้ว" in text
        assert page.evaluate(WIDER_THAN_THE_SCREEN) <= PHONE["width"]
        context.close()
    assert _names(engine) == {"songkran-poster.png", "songkran-clip.mp4"}
