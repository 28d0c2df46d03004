"""The composer in a real Chromium at phone width (390 px): an editor fills the whole form,
the live check (``static/composer.js``) puts the over-long YouTube title's problem at its
field, the fix clears it, the previews of every channel fit the phone, and applying stores
the campaign.  SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from marketing.db import session_scope
from marketing.models import Campaign, Post, Role
from tests.support.web import NOW, add_user, clock_at, import_sample, served
from tests.test_web_browser import Tab, browser  # noqa: F401  (the module's Chromium, reused)
from tests.test_web_composer import place_example_files

PHONE = {"width": 390, "height": 844}
TITLE_FIELD = '[data-field="channels.youtube.title"]'


def test_an_editor_composes_a_campaign_at_phone_width(browser: Any, engine: Engine) -> None:  # noqa: F811
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    place_example_files()
    with served(engine, clock=clock_at(NOW)) as server:
        tab = Tab(browser, server.url)
        tab.page.set_viewport_size(PHONE)
        tab.sign_in("editor")
        tab.go("/campaigns/compose")
        page = tab.page
        page.fill("#f-slug", "songkran-phone")
        page.fill("#f-name", "สงกรานต์วิถีชุมชน 2570")
        page.fill("#f-window-start", "2027-04-01")
        page.fill("#f-window-end", "2027-04-20")
        page.check('input[name="communities.mode"][value="list"]')
        page.fill("#f-communities-list", "nan-ban-doi-ngoen")
        page.check("#f-channels-facebook-enabled")
        page.fill(
            "#f-channels-facebook-message",
            "💦 สงกรานต์นี้ มาเที่ยว{{ community.name_th }} จังหวัด{{ community.province }}\n"
            "{{ community.description }}",
        )
        page.fill("#f-channels-facebook-link", "https://community.example.org/{{ community.slug }}")
        page.fill("#f-channels-facebook-photo", "examples/songkran-poster.png")
        page.check("#f-channels-youtube-enabled")
        page.fill("#f-channels-youtube-title", "สงกรานต์ที่{{ community.name_th }} " + "ก" * 100)
        page.fill("#f-channels-youtube-video", "examples/songkran-clip.mp4")
        page.check("#f-channels-email-enabled")
        page.fill("#f-channels-email-account", "glo-email")
        page.fill("#f-channels-email-subject", "{{ subscriber.name }} มาเที่ยวสงกรานต์")
        page.fill("#f-channels-email-html", "<p>สวัสดีค่ะ คุณ{{ subscriber.name }}</p>")
        page.check('input[name="schedule.kind"][value="at"]')
        page.fill("#f-schedule-at", "announce 2027-04-05T10:00+07:00")
        page.press("#f-schedule-at", "Tab")
        # the live check: the title's problem at the title, nowhere else
        page.wait_for_selector(f"{TITLE_FIELD} .field-problems li", timeout=60_000)
        said = page.inner_text(f"{TITLE_FIELD} .field-problems")
        assert "100" in said, said
        assert page.locator(".composer-field.has-problem").count() == 1
        # fixed: the live check clears it
        page.fill("#f-channels-youtube-title", "สงกรานต์ที่{{ community.name_th }}")
        page.press("#f-channels-youtube-title", "Tab")
        page.wait_for_selector('#composer[data-checked="ok"]', timeout=60_000)
        assert page.locator(".composer-field.has-problem").count() == 0
        page.click('button[name="action"][value="check"]')
        page.wait_for_selector("#previews", timeout=60_000)
        for channel in ("facebook", "youtube", "email"):
            assert page.locator(f'.preview-card[data-channel="{channel}"]').count() >= 1
        assert page.locator(".fb-width-phone").first.is_visible()
        assert not page.locator(".fb-width-desktop").first.is_visible()
        widths = page.evaluate(
            """() => ({
              doc: document.documentElement.scrollWidth,
              cards: Array.from(document.querySelectorAll('.preview-card'))
                .map(c => c.getBoundingClientRect().right)
            })"""
        )
        assert widths["doc"] <= PHONE["width"], widths
        assert all(right <= PHONE["width"] for right in widths["cards"]), widths
        page.wait_for_function(  # the poster is served from the media folder
            "() => { const i = document.querySelector('.fb-width-phone .fb-photo img');"
            " return i && i.complete && i.naturalWidth > 0; }",
            timeout=30_000,
        )
        tab.shot("composer-phone")
        page.click('.preview-width[data-width="desktop"]')  # the toggle (composer.js)
        assert page.locator(".fb-width-desktop").first.is_visible()
        assert not page.locator(".fb-width-phone").first.is_visible()
        page.click('.preview-width[data-width="phone"]')
        page.click('button[name="action"][value="apply"]')
        page.wait_for_url("**/campaigns/songkran-phone", timeout=60_000)
        tab.close()
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.slug == "songkran-phone" and campaign.status.value == "draft"
        posts = session.scalars(select(Post).where(Post.campaign_id == campaign.id)).all()
        assert {p.channel.value for p in posts} == {"facebook", "youtube", "email"}
