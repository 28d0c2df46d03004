"""A whole working day in the web app, in a real headless Chromium (Debian's ``chromium`` driven
by Playwright): an editor signs in, uploads a campaign with a mistake and sees it at its line,
fixes it and previews every post per channel, applies it; an approver approves it; the posts
are on the calendar; the publishing pipeline runs (in this process, through the real adapters
against the Graph API and SMTP sandboxes); the posts show as published with their links, and
the community's page and report show them.

Every page is photographed into ``test-artifacts/web-*.png`` for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import Engine, select

from channels.sandbox.graph import GraphSandbox
from channels.sandbox.smtp import SmtpSandbox
from marketing.db import session_scope
from marketing.models import ChannelAccount, ChannelKind, Post, PostState, Role
from marketing.performance import keys_for_post, rollup
from marketing.publishing import Policy, claim_due
from marketing.settings import get_settings, reset_settings
from tests.support.web import PASSWORD, add_user, import_sample, same_week_pair, served

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
COMMUNITIES = ("nan-ban-doi-ngoen", "phrae-ban-thung-khram")
TYPO_LINE = 10


def campaign_text(first: date, *, typo: bool) -> str:
    second = first + timedelta(days=1)
    field = "mesage" if typo else "message"
    return f"""\
slug: village-stories
name: เรื่องเล่าจากหมู่บ้าน
window:
  start: {first.isoformat()}
  end: {second.isoformat()}
communities: [{", ".join(COMMUNITIES)}]
channels:
  facebook:
    account: community
    {field}: "มาเที่ยว{{{{ community.name_th }}}} จังหวัด{{{{ community.province }}}} กันนะคะ"
    link: "https://example.org/{{{{ community.slug }}}}"
  email:
    account: glo-email
    subject: "ข่าวจาก{{{{ community.name_th }}}}"
    html: "<p>สวัสดีค่ะ เรื่องเล่าใหม่จากจังหวัด{{{{ community.province }}}}</p>"
schedule:
  at: [{first.isoformat()}T10:00:00+07:00, {second.isoformat()}T10:00:00+07:00]
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `bash scripts/services.sh` (apt chromium)")
    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def channels(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The Graph API and SMTP sandboxes, with the sample accounts' tokens, as the settings."""
    import_sample(engine)
    graph, smtp = GraphSandbox().start(), SmtpSandbox().start()
    monkeypatch.setenv("MARKETING_GRAPH_API_URL", graph.url)
    monkeypatch.setenv("MARKETING_SMTP_PORT", str(smtp.port))
    with session_scope(engine) as session:
        for account in session.scalars(select(ChannelAccount)):
            if account.kind == ChannelKind.FACEBOOK and account.secret_name:
                token = f"sandbox-{account.secret_name.lower()}"
                monkeypatch.setenv(f"MARKETING_SECRET_{account.secret_name}", token)
                graph.register_page(account.external_id, token)
    reset_settings()
    from tasks import wiring

    wiring.reset()
    try:
        yield
    finally:
        wiring.reset()
        graph.stop()
        smtp.stop()


class Tab:
    """One browser tab on the app, collecting console errors and requests to elsewhere."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"{m.text} at {m.location['url']}")
                if m.type == "error"
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "response",
            lambda r: (
                self.errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.status != 422
                else None
            ),
        )
        self.page.on(
            "request",
            lambda r: None if r.url.startswith(base) else self.elsewhere.append(r.url),
        )

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path, wait_until="load")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)

    def text(self, selector: str = "main") -> str:
        return str(self.page.inner_text(selector))

    def sign_in(self, username: str) -> None:
        self.go("/")
        assert "/login" in self.page.url  # nothing without signing in
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_load_state("load")

    def sign_out(self) -> None:
        self.page.click("header form[action='/logout'] button")
        self.page.wait_for_load_state("load")
        assert "/login" in self.page.url

    def expect_error(self, status: int) -> None:
        """The page just loaded answered ``status`` on purpose (Chromium logs that)."""
        assert len(self.errors) == 1
        assert f"the server responded with a status of {status}" in self.errors[0]
        self.errors.clear()

    def close(self) -> None:
        assert self.errors == []
        assert self.elsewhere == []  # offline: no CDN, no font service, nothing outside
        self.context.close()


def publish_everything(engine: Engine, after: datetime) -> int:
    """What the worker does, in this process: claim the due posts and publish each through
    the real adapters; then roll up performance.  Returns how many were published."""
    from tasks.publishing import publish_post

    result = claim_due(engine=engine, policy=Policy.from_settings(), now=after)
    outcomes = [publish_post(post_id) for post_id, _channel in result.queued]
    with session_scope(engine) as session:
        keys = set()
        for post_id, _channel in result.queued:
            keys |= keys_for_post(session=session, post_id=post_id)
        rollup(session=session, keys=keys)
    return outcomes.count("published")


def test_a_whole_day_in_the_browser(
    browser: Any, engine: Engine, channels: None, tmp_path: Path
) -> None:
    add_user(engine, "somchai", Role.EDITOR)
    add_user(engine, "malee", Role.APPROVER)
    zone = get_settings().zone
    # Two days in one week and one month by construction (a Tuesday and a Wednesday at least
    # two weeks ahead), so the week view shows both whatever day the test runs on.
    first, second = same_week_pair(datetime.now(zone).date())

    with served(engine) as server:
        # -- morning: the editor writes a campaign ----------------------------------------
        tab = Tab(browser, server.url)
        tab.go("/login")
        tab.shot("01-login")
        assert "เข้าสู่ระบบ" in tab.text()
        tab.sign_in("somchai")
        assert tab.page.url == server.url + "/"
        assert "ภาพรวม" in tab.text("h1")
        tab.shot("02-dashboard")

        tab.go("/campaigns/new")
        tab.page.fill("#yaml", campaign_text(first, typo=True))
        tab.page.click("form[action='/campaigns/check'] button[type=submit]")
        tab.page.wait_for_load_state("load")
        tab.shot("03-campaign-mistake")
        tab.expect_error(422)  # the check answers 422 with the problems
        assert "พบปัญหา" in tab.text("#problems-title")
        line = tab.page.locator(f"ol.source li#L{TYPO_LINE}")
        assert "has-problem" in (line.get_attribute("class") or "")
        assert (
            "mesage" in line.inner_text() and "ไม่ใช่ช่องที่รู้จัก" in line.inner_text()
        )  # Thai, as staff read it
        # The problems list links to the line.
        assert tab.page.locator(f"ul.problems a[href='#L{TYPO_LINE}']").count() == 1
        with session_scope(engine) as session:
            assert session.scalars(select(Post)).all() == []  # nothing stored

        tab.page.fill("#yaml", campaign_text(first, typo=False))
        tab.page.click("form[action='/campaigns/check'] button[type=submit]")
        tab.page.wait_for_load_state("load")
        tab.shot("04-campaign-preview")
        facebook = tab.page.locator("#channel-facebook article.post-preview")
        email = tab.page.locator("#channel-email article.post-preview")
        assert facebook.count() == 4 and email.count() == 4  # 2 communities x 2 days each
        assert "มาเที่ยวชุมชนผ้าทอบ้านดอยเงิน จังหวัดน่าน กันนะคะ" in tab.text("#channel-facebook")
        assert "ข่าวจากชุมชนหม้อห้อมบ้านทุ่งคราม" in tab.text("#channel-email")
        # Each email is shown as it will look, in a sandboxed frame.
        emails = [f for f in tab.page.frames if f.url == "about:srcdoc"]
        assert len(emails) == 4
        assert "เรื่องเล่าใหม่จากจังหวัดน่าน" in emails[0].inner_text("body")
        tab.page.click("form[action='/campaigns/apply'] button[type=submit]")
        tab.page.wait_for_load_state("load")
        assert tab.page.url.endswith("/campaigns/village-stories")
        assert "ร่าง (รออนุมัติ)" in tab.text()
        assert tab.page.locator("form[action$='/approve']").count() == 0  # not an editor's
        tab.shot("05-campaign-draft")
        tab.sign_out()

        # -- noon: the approver approves ----------------------------------------------------
        tab.sign_in("malee")
        tab.go("/campaigns")
        tab.shot("06-campaigns")
        tab.page.click("a[href='/campaigns/village-stories']")
        tab.page.wait_for_load_state("load")
        tab.page.click("form[action='/campaigns/village-stories/approve'] button")
        tab.page.wait_for_load_state("load")
        assert "อนุมัติแล้ว" in tab.text()
        assert "malee" in tab.text("dl.facts")
        tab.shot("07-campaign-approved")

        tab.go(f"/calendar?day={first.isoformat()}")
        tab.shot("08-calendar-month")
        for day in (first, second):
            cell = tab.page.locator(f"td#d{day.isoformat()} li.post")
            assert cell.count() == 4, f"expected 4 posts on {day}, saw {cell.count()}"
            assert "10:00" in cell.first.inner_text()
        tab.go(f"/calendar?view=week&day={first.isoformat()}&channel=facebook")
        shown = tab.page.locator("li.post").count()
        assert shown == 4, f"expected 4 Facebook posts in the week of {first}, saw {shown}"
        tab.shot("09-calendar-week")

        # -- afternoon: the worker publishes -----------------------------------------------
        after = datetime.combine(second + timedelta(days=1), time.min, tzinfo=zone)
        published = publish_everything(engine, after=after)
        assert published == 8, f"expected 8 posts published by {after}, saw {published}"

        tab.go("/posts?campaign=village-stories")
        tab.shot("10-posts-published")
        rows = tab.page.locator("table.posts tbody tr")
        assert rows.count() == 8
        assert tab.page.locator("table.posts span.state-published").count() == 8
        links = tab.page.eval_on_selector_all("table.posts a.live", "as => as.map(a => a.href)")
        assert len(links) == 4 and all(
            link.startswith("https://www.facebook.com/") for link in links
        )
        with session_scope(engine) as session:
            stored = {p.permalink for p in session.scalars(select(Post)) if p.permalink}
            assert set(links) == stored
            assert all(p.state == PostState.PUBLISHED for p in session.scalars(select(Post)))

        tab.page.locator("table.posts a[href^='/posts/']").first.click()
        tab.page.wait_for_load_state("load")
        tab.shot("11-post")
        tab.go(f"/calendar?day={first.isoformat()}")
        assert tab.page.locator("li.post span.state-published").count() == 8
        assert tab.page.locator("li.post a.live").count() == 4

        # -- evening: the community's page and report --------------------------------------
        tab.go(f"/communities/{COMMUNITIES[0]}")
        tab.shot("12-community")
        assert tab.page.locator(".charts svg").count() == 3
        metrics = tab.text("table.metrics")
        assert "เฟซบุ๊ก\t2" in metrics and "อีเมล\t2" in metrics  # posts per channel
        assert tab.page.locator(".highlight img.media").count() >= 1  # media served
        tab.go(f"/reports/community/{COMMUNITIES[0]}")
        tab.shot("13-community-report")
        report = tab.text("body")
        assert tab.page.title() == "รายงานชุมชน ชุมชนผ้าทอบ้านดอยเงิน"
        assert "ข่าวจากชุมชนผ้าทอบ้านดอยเงิน" in report  # the email post among the best
        for path, name in (
            ("/", "14-dashboard-after"),
            ("/communities", "15-communities"),
            ("/reports", "16-reports"),
            ("/problems", "17-problems"),
            ("/account", "18-account"),
        ):
            tab.go(path)
            tab.shot(name)
        tab.close()
    assert os.listdir(ARTIFACTS)
