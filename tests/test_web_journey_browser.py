"""The whole #14 journey in a real headless Chromium, on SQLite and PostgreSQL: an editor builds
the Songkran campaign (campaigns/examples/songkran-2027.yaml) in the browser alone -- the poster,
the clip and the e-mail template uploaded to the media library (the shipped examples are not in
the media folder), the composer filled at phone width, the over-long YouTube title's problem
shown at its field and fixed, every channel previewed at 390 px, applied; an approver (another
user) approves it, and after a later edit sees the diff and approves again; the editor drags
one post to the next day and it is published on that day through the real adapters against the
sandboxes; a Thai word from the post's text finds it; the YAML downloaded from the app passes
``marketing campaign validate`` (the command, run) and uploads again with no change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from channels.sandbox.suite import SandboxAccount, SandboxSuite, sandbox_token
from marketing.db import session_scope
from marketing.models import (
    AuditLog,
    Campaign,
    ChannelAccount,
    ChannelKind,
    MediaItem,
    Post,
    PostState,
    Role,
)
from marketing.settings import get_settings, reset_settings
from tests.support.media import EXAMPLES_MEDIA
from tests.support.web import NOW, add_user, clock_at, import_sample, served
from tests.test_web_browser import Tab, browser, publish_everything  # noqa: F401

PHONE = {"width": 390, "height": 844}
TEMPLATE = (
    Path(__file__).resolve().parents[1] / "campaigns/examples/templates/songkran-email.html.j2"
)
SLUG = "songkran-2027"
TITLE_FIELD = '[data-field="channels.youtube.title"]'
WORD = "รดน้ำดำหัว"  # a word from the middle of the Facebook post's text
DAY, NEXT = "2027-04-05", "2027-04-06"


@pytest.fixture
def sandboxes(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxSuite]:
    """The sample communities, and the Graph API, YouTube and SMTP sandboxes with their
    accounts' tokens, as the settings."""
    from tasks import wiring

    import_sample(engine)
    with SandboxSuite() as suite:
        with session_scope(engine) as session:
            accounts = [a for a in session.scalars(select(ChannelAccount)) if a.secret_name]
            for a in accounts:
                token = sandbox_token(a.secret_name or "")
                monkeypatch.setenv(f"MARKETING_SECRET_{a.secret_name}", token)
            suite.register(
                SandboxAccount(a.kind.value, a.external_id, sandbox_token(a.secret_name or ""))
                for a in accounts
            )
        for name, value in suite.settings_env().items():
            monkeypatch.setenv(name, value)
        reset_settings()
        wiring.reset()
        try:
            yield suite
        finally:
            wiring.reset()


def _fits_the_phone(page: Any) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


def _compose(page: Any) -> None:
    """The Songkran campaign typed into the composer, with a YouTube title over 100 characters."""
    page.fill("#f-slug", SLUG)
    page.fill("#f-name", "สงกรานต์วิถีชุมชน 2570")
    page.fill("#f-window-start", "2027-04-01")
    page.fill("#f-window-end", "2027-04-20")
    page.check('input[name="communities.mode"][value="list"]')
    page.fill("#f-communities-list", "nan-ban-doi-ngoen")
    page.check("#f-channels-facebook-enabled")
    page.fill(
        "#f-channels-facebook-message",
        "💦 สงกรานต์นี้ มาเที่ยว{{ community.name_th }} จังหวัด{{ community.province }}\n"
        f"มา{WORD}ผู้สูงอายุ ชิมอาหารพื้นถิ่น และอุดหนุนสินค้าชุมชน\n"
        "{{ community.description }}",
    )
    page.fill(
        "#f-channels-facebook-link", "https://community.example.org/{{ community.slug }}/songkran"
    )
    page.fill("#f-channels-facebook-photo", "songkran-poster.png")  # its name in the library
    page.check("#f-channels-youtube-enabled")
    page.fill("#f-channels-youtube-title", "สงกรานต์ที่{{ community.name_th }} " + "ก" * 100)
    page.fill(
        "#f-channels-youtube-description",
        "บรรยากาศสงกรานต์ที่{{ community.name_th }} จังหวัด{{ community.province }}",
    )
    page.fill("#f-channels-youtube-video", "songkran-clip.mp4")
    page.check("#f-channels-email-enabled")
    page.fill("#f-channels-email-account", "glo-email")
    page.fill(
        "#f-channels-email-subject",
        "{{ subscriber.name }} มาสาดความสุขที่{{ community.name_th }} สงกรานต์นี้",
    )
    page.fill("#f-channels-email-html", "<p>สวัสดีค่ะ คุณ{{ subscriber.name }}</p>")
    page.check('input[name="schedule.kind"][value="at"]')
    page.fill("#f-schedule-at", "announce 2027-04-05T10:00+07:00\nfestival 2027-04-13T09:00+07:00")
    page.press("#f-schedule-at", "Tab")


def _approve(browser: Any, base: str) -> str:  # noqa: F811
    """The approver opens the campaign, reads what changed and approves; the changes' text."""
    tab = Tab(browser, base)
    tab.sign_in("approver")
    tab.go(f"/campaigns/{SLUG}")
    changes = tab.text("#changes") if tab.page.locator("#changes").count() else ""
    tab.page.click(f"form[action='/campaigns/{SLUG}/approve'] button[type=submit]")
    tab.page.wait_for_load_state("load")
    tab.close()
    return changes


def test_an_editor_builds_songkran_in_the_browser_and_it_goes_out(
    browser: Any,  # noqa: F811
    engine: Engine,
    sandboxes: SandboxSuite,
    tmp_path: Path,
) -> None:
    add_user(engine, "editor", Role.EDITOR)
    add_user(engine, "approver", Role.APPROVER)
    root = get_settings().media_root
    shutil.rmtree(root / "examples")  # only the library has them
    with served(engine, clock=clock_at(NOW)) as server:
        tab = Tab(browser, server.url)
        page = tab.page
        page.set_viewport_size(PHONE)
        tab.sign_in("editor")
        # -- the media library: three files at once -----------------------------------------
        tab.go("/library")
        page.set_input_files(
            "#files",
            [
                str(EXAMPLES_MEDIA / "songkran-poster.png"),
                str(EXAMPLES_MEDIA / "songkran-clip.mp4"),
                str(TEMPLATE),
            ],
        )
        page.select_option("#people", "none")
        with page.expect_navigation(url="**/library", timeout=60_000):
            page.click("#upload-form button[type=submit]")
        page.wait_for_load_state("load")
        assert page.locator(".media-grid img").count() == 2  # the poster and a frame of the clip
        _fits_the_phone(page)
        # -- the composer, at phone width ---------------------------------------------------
        tab.go("/campaigns/compose")
        _compose(page)
        page.wait_for_selector(f"{TITLE_FIELD} .field-problems li", timeout=60_000)
        assert "100" in page.inner_text(f"{TITLE_FIELD} .field-problems")
        assert page.locator(".composer-field.has-problem").count() == 1
        page.fill("#f-channels-youtube-title", "สงกรานต์{{ community.name_th }}")
        page.press("#f-channels-youtube-title", "Tab")
        page.wait_for_selector('#composer[data-checked="ok"]', timeout=60_000)
        page.click('button[name="action"][value="check"]')
        page.wait_for_selector("#previews", timeout=60_000)
        for channel in ("facebook", "youtube", "email"):
            card = page.locator(f'.preview-card[data-channel="{channel}"]').first
            assert card.is_visible(), channel
            box = card.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        assert page.locator(".fb-width-phone").first.is_visible()
        _fits_the_phone(page)
        page.wait_for_function(  # the poster comes from the library
            "() => { const i = document.querySelector('.fb-width-phone .fb-photo img');"
            " return i && i.complete && i.naturalWidth > 0; }",
            timeout=30_000,
        )
        tab.shot("journey-previews-phone")
        page.click('button[name="action"][value="apply"]')
        page.wait_for_url(f"**/campaigns/{SLUG}", timeout=60_000)
        tab.close()
        _approve(browser, server.url)
        # -- a later edit by the editor, then the approver's diff ----------------------------
        tab = Tab(browser, server.url)
        page = tab.page
        tab.sign_in("editor")
        tab.go(f"/campaigns/{SLUG}/compose")
        page.fill(
            "#f-channels-facebook-link", "https://community.example.org/{{ community.slug }}/water"
        )
        page.press("#f-channels-facebook-link", "Tab")
        page.wait_for_selector('#composer[data-checked="ok"]', timeout=60_000)
        page.click('button[name="action"][value="check"]')  # applying comes after previewing
        page.wait_for_selector("#previews", timeout=60_000)
        page.click('button[name="action"][value="apply"]')
        page.wait_for_url(f"**/campaigns/{SLUG}", timeout=60_000)
        tab.close()
        changes = _approve(browser, server.url)
        assert "/water" in changes and "/songkran" in changes, changes
        with session_scope(engine) as session:
            campaign = session.scalars(select(Campaign)).one()
            assert campaign.status.value == "approved"
            post = session.scalars(
                select(Post)
                .where(Post.campaign_id == campaign.id, Post.channel == ChannelKind.FACEBOOK)
                .order_by(Post.scheduled_at)
            ).first()
            assert post is not None
            dragged = post.id
            approvals = session.scalars(
                select(AuditLog.actor).where(AuditLog.action == "campaign.approve")
            ).all()
        assert approvals == ["approver", "approver"]  # never the editor: four eyes
        # -- the calendar: drag one post to the next day -------------------------------------
        tab = Tab(browser, server.url)
        page = tab.page
        tab.sign_in("editor")
        tab.go(f"/calendar?day={DAY}")
        item = page.locator(f"li.post[data-post='{dragged}']")
        with page.expect_navigation():
            item.drag_to(page.locator(f"td#d{NEXT}"))
        page.wait_for_load_state("load")
        assert page.locator(f"td#d{NEXT} li.post[data-post='{dragged}']").count() == 1
        # -- search: a Thai word from the middle of the post's text --------------------------
        page.fill("#search-q", WORD)
        page.press("#search-q", "Enter")
        page.wait_for_load_state("load")
        assert page.locator(f"#found-posts a[href='/posts/{dragged}']").count() == 1
        # -- the file, downloaded ------------------------------------------------------------
        tab.go(f"/campaigns/{SLUG}")
        with page.expect_download() as download:
            page.click(f"a[href='/campaigns/{SLUG}/source']")
        downloaded = tmp_path / "songkran-downloaded.yaml"
        download.value.save_as(downloaded)
        tab.close()
        text = downloaded.read_text(encoding="utf-8")
        assert "songkran-poster.png" in text and "/water" in text
        command = Path(sys.executable).with_name("marketing")
        checked = subprocess.run(
            [str(command), "campaign", "validate", str(downloaded)],
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ.copy(),
            check=False,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # -- and uploaded again: nothing changes ---------------------------------------------
        tab = Tab(browser, server.url)
        page = tab.page
        tab.sign_in("editor")
        tab.go("/campaigns/new")
        page.set_input_files("#file", str(downloaded))
        page.click("form[action='/campaigns/check'] button[type=submit]")
        page.wait_for_load_state("load")
        page.click("form[action='/campaigns/apply'] button[type=submit]")
        page.wait_for_load_state("load")
        assert "ไม่มีการเปลี่ยนแปลง" in tab.text(), tab.text()[:2000]
        tab.close()
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.status.value == "approved" and campaign.source_text == text
        assert {i.name for i in session.scalars(select(MediaItem))} == {
            "songkran-poster.png",
            "songkran-clip.mp4",
            "songkran-email.html.j2",
        }
        moved = session.get(Post, dragged)
        assert moved is not None
        assert moved.scheduled_at.replace(tzinfo=UTC) == datetime(2027, 4, 6, 3, 0, tzinfo=UTC)
    # -- publishing: the day it was on passes without it; it goes out the next day ------------
    publish_everything(engine, after=datetime(2027, 4, 5, 20, 0, tzinfo=UTC))
    with session_scope(engine) as session:
        post = session.get(Post, dragged)
        assert post is not None and post.state == PostState.SCHEDULED
        # the day's other posts -- the YouTube upload and the e-mail -- went out that day
        states = {
            (p.channel.value, p.state)
            for p in session.scalars(select(Post).where(Post.occurrence_key == post.occurrence_key))
            if p.id != dragged
        }
    assert states == {("youtube", PostState.PUBLISHED), ("email", PostState.PUBLISHED)}, states
    assert publish_everything(engine, after=datetime(2027, 4, 6, 4, 0, tzinfo=UTC)) >= 1
    with session_scope(engine) as session:
        post = session.get(Post, dragged)
        assert post is not None and post.state == PostState.PUBLISHED, post.last_error
        external_id = post.external_id
    # The Graph API sandbox has it: the photo from the library, with the post's text.
    [shown] = [p for p in sandboxes.graph.published() if p.id == external_id]
    poster = (EXAMPLES_MEDIA / "songkran-poster.png").stat().st_size
    assert shown.kind == "photo" and WORD in shown.message and shown.media_bytes == poster
