"""Every page of the web app and every HTML report at phone width (390 x 844), in a real headless
Chromium: the document is never wider than the screen, no element sticks out of it, chart text
stays readable and the month calendar is a list.  Pages come from the app's own routes, so a
new page is walked as soon as it exists (or the test asks where to find one).

On SQLite each page is also photographed at 390 and 1280 px into
``test-artifacts/screenshots/`` (``MARKETING_TEST_SCREENSHOTS`` moves it), with ``widths.json``
(each page's width at 390 px) beside them.  On PostgreSQL only the phone is walked (no
photographs, to keep the test's time down), with the interface in English, whose words are longer.
"""

from __future__ import annotations

import json
import os
import random
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.routing import APIRoute
from sqlalchemy import Engine, select

from marketing.db import session_scope
from marketing.media_library import add_file, default_rules, move_into_library
from marketing.models import AccountHealth, ChannelAccount, Role
from marketing.reconnect_links import create_link
from marketing.web.app import ROUTERS
from marketing.web.tracking import TrackingLinks
from tests.support.besttimes import seeded_programme
from tests.support.media import EXAMPLES_MEDIA
from tests.support.web import NOW, PASSWORD, add_user, clock_at, served, subscribers_of
from tests.test_reports import ACTIVE, CAMPAIGN, END, START, seed
from tests.test_web_browser import browser  # noqa: F401  (the module's Chromium, reused)

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = Path(
    os.environ.get("MARKETING_TEST_SCREENSHOTS") or ROOT / "test-artifacts" / "screenshots"
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
#: The smallest chart text a phone shows, in CSS pixels.
MIN_CHART_TEXT_PX = 10.0
#: A campaign on every channel, with long Thai texts, a photo and a video.
EVERY_CHANNEL = """\
slug: phone-walk
name: เที่ยวชุมชนช่วงสงกรานต์ สัมผัสวิถีผ้าทอและอาหารพื้นถิ่น
window: {start: 2027-04-01, end: 2027-04-20}
communities: [nan-ban-doi-ngoen, phrae-ban-thung-khram]
channels:
  facebook:
    account: community
    message: "สงกรานต์นี้ มาเที่ยว{{ community.name_th }} จังหวัด{{ community.province }}"
    link: "https://community.example.org/{{ community.slug }}/songkran-2570-long-path-for-phones"
    photo: examples/songkran-poster.png
  youtube:
    account: community
    title: "สงกรานต์{{ community.name_th }}"
    description: "บรรยากาศสงกรานต์ที่{{ community.name_th }} {{ community.description }}"
    video: examples/songkran-clip.mp4
    privacy: public
  email:
    account: glo-email
    subject: "ข่าวสงกรานต์จาก{{ community.name_th }}"
    html: "<p>สวัสดีค่ะ คุณ{{ subscriber.name }} ชวนเที่ยว{{ community.name_th }}</p>"
schedule:
  at: [2027-04-10T09:00:00+07:00, 2027-04-13T09:00:00+07:00]
"""
SUBSCRIBERS_CSV = "email,name,tags\nphone.one@example.org,คุณโทรศัพท์,ผ้าทอ\n"
#: GET routes that are not pages a person reads, and what they are instead.
NOT_PAGES = {
    "/media/post/{post_id}/{key}": "a photo or video file",
    "/media/highlight/{highlight_id}/{index}": "a photo file",
    "/media/draft": "a photo or video file named in a campaign being composed",
    "/library/{item_id}/file": "a media library file",
    "/library/{item_id}/thumbnail": "a media library thumbnail (JPEG)",
    "/campaigns/{slug}/source": "the campaign file, downloaded",
    "/e/open/{token}": "a one-pixel image",
    "/e/click/{token}": "a redirect to the link in the e-mail",
    "/go/{token}": "a redirect to a community's shop, booking or product page",
    "/healthz": "a liveness probe (JSON)",
    "/readyz": "a readiness probe (JSON)",
    "/metrics": "the Prometheus page (text)",
    "/accounts/connect/facebook/callback": "the provider's answer, a redirect to the picker",
    "/accounts/connect/youtube/callback": "the provider's answer, a redirect to the picker",
    "/accounts/connect/facebook/delegated": "a redirect to Facebook's Login dialog",
    "/accounts/connect/youtube/delegated": "a redirect to Google's consent page",
}

# What overflows, measured in the page: the document's width, the widest element sticking out
# of the viewport (named by its path of tags, ids and classes) and chart text drawn too small.
MEASURE = """() => {
  const view = document.documentElement.clientWidth;
  const name = el => {
    const parts = [];
    for (let n = el; n && n.nodeType === 1 && parts.length < 4; n = n.parentElement) {
      let part = n.tagName.toLowerCase();
      if (n.id) part += '#' + n.id;
      const cls = (n.getAttribute('class') || '').trim().split(/\\s+/).filter(Boolean);
      if (cls.length) part += '.' + cls.join('.');
      parts.unshift(part);
    }
    const text = (el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
    return parts.join(' > ') + (text ? ` "${text}"` : '');
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= 0) continue;  // hidden, or moved off-screen on purpose
    if (box.right > view + 1 || box.left < -1) {
      out.push({element: name(el), right: Math.round(box.right), width: Math.round(box.width)});
    }
  }
  out.sort((a, b) => b.right - a.right || b.width - a.width);
  const small = [];
  for (const t of document.querySelectorAll('svg text')) {
    const box = t.getBoundingClientRect();
    if (box.width === 0) continue;
    const px = parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a;
    if (px < MIN_PX) small.push({text: t.textContent.slice(0, 30), px: Math.round(px * 10) / 10});
  }
  const overlapping = [];
  for (const svg of document.querySelectorAll('svg')) {
    const boxes = [...svg.querySelectorAll('text')].map(t => [t, t.getBoundingClientRect()]);
    boxes.forEach(([t, a], i) => boxes.slice(i + 1).forEach(([u, b]) => {
      const across = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const down = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (across > 1 && down > 1) overlapping.push([t.textContent, u.textContent]);
    }));
  }
  return {
    document: document.documentElement.scrollWidth, view: window.innerWidth,
    offenders: out.slice(0, 3), small: small.slice(0, 3), overlapping: overlapping.slice(0, 3),
  };
}""".replace("MIN_PX", str(MIN_CHART_TEXT_PX))


def html_routes() -> set[str]:
    """The app's GET routes outside the JSON API."""
    return {
        route.path
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        and "GET" in route.methods
        and not route.path.startswith("/api/")
    }


def seed_everything(engine: Engine, *, language: str) -> dict[str, int]:
    """Reports' sample data (a campaign with a post on every channel, failed, unconfirmed and
    needs-reconnect posts), an account needing reconnection, communities with enough posts
    for a best-times heat map and an admin reading ``language``."""
    with session_scope(engine) as session:
        post_ids = seed(session).post_ids
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == "sukhothai-ban-rim-yom-facebook")
        ).one()
        account.health = AccountHealth.NEEDS_RECONNECT
        account.health_message = (
            "(#190) Error validating access token: Session has expired on Tuesday, "
            "01-Dec-26 03:00:00 PST. The current time is Tuesday, 01-Dec-26 04:12:00 PST."
        )
        # Communities whose posts teach the best times: the community page's heat map.
        seeded_programme(session, random.Random(7), last_monday=date(2026, 11, 16))
    add_user(engine, "admin", Role.ADMIN, language=language)
    return post_ids


class Walker:
    """A signed-in tab at phone width that measures; with ``photos``, every page is also
    photographed there and in a second tab at desktop width."""

    def __init__(self, chromium: Any, base: str, *, photos: bool) -> None:
        self.base = base
        self.photos = photos
        self.phone = self._tab(chromium, PHONE)
        self.tabs = [(self.phone, "390")]
        if photos:
            self.tabs.append((self._tab(chromium, DESKTOP), "1280"))
        self.widths: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        if photos:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _tab(chromium: Any, viewport: dict[str, int]) -> Any:
        context = chromium.new_context(viewport=viewport, locale="th-TH")
        return context.new_page()

    def sign_in(self) -> None:
        for page, _size in self.tabs:
            page.goto(self.base + "/login", wait_until="load")
            page.fill("#username", "admin")
            page.fill("#password", PASSWORD)
            page.click("form[action='/login'] button[type=submit]")
            page.wait_for_load_state("load")
            assert urlsplit(page.url).path == "/", page.url

    def check(self, name: str, path: str | None = None) -> None:
        """Open ``path`` (or look at what each tab shows now) in each tab and check it."""
        for page, size in self.tabs:
            if path is not None:
                page.goto(self.base + path, wait_until="load")
            if self.photos:
                page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
        found = self.phone.evaluate(MEASURE)
        self.widths[name] = {"path": path or self.phone.url, "width_at_390": found["document"]}
        where = f"{name} ({path or urlsplit(self.phone.url).path})"
        if found["document"] > found["view"]:
            self.problems.append(
                f"{where} is {found['document']} px wide at {found['view']} px"
                + (f"; widest: {found['offenders'][0]}" if found["offenders"] else "")
            )
        elif found["offenders"]:
            self.problems.append(f"{where}: sticks out of the screen: {found['offenders'][0]}")
        if found["overlapping"]:
            self.problems.append(f"{where}: chart labels overlap at 390 px: {found['overlapping']}")
        if found["small"]:
            self.problems.append(f"{where}: chart text too small at 390 px: {found['small']}")

    def both(self, action: Any) -> None:
        for page, _size in self.tabs:
            action(page)


def test_every_page_and_report_fits_a_phone(browser: Any, engine: Engine) -> None:  # noqa: F811
    # Thai, photographed, on SQLite; English (longer words), phone only, on PostgreSQL.
    photos = engine.dialect.name == "sqlite"
    post_ids = seed_everything(engine, language="th" if photos else "en")
    subscriber = subscribers_of(engine, ACTIVE)[0]
    period = f"from={START.isoformat()}&to={END.isoformat()}"
    day = date(2026, 10, 5).isoformat()  # the seeded campaign's busy day
    with served(engine, clock=clock_at(NOW)) as server:
        links: TrackingLinks = server.server.config.app.state.links
        unsubscribe = urlsplit(
            links.unsubscribe_url(post_id=post_ids["mail"], subscriber_id=subscriber)
        ).path
        settings = server.server.config.app.state.settings
        with session_scope(engine) as session:
            reconnect = urlsplit(
                create_link(
                    session=session,
                    account=session.scalars(
                        select(ChannelAccount).where(
                            ChannelAccount.slug == "sukhothai-ban-rim-yom-facebook"
                        )
                    ).one(),
                    created_by="admin",
                    secret=settings.web_secret,
                    base_url=settings.public_base_url,
                    now=NOW,
                ).url
            ).path
        walker = Walker(browser, server.url, photos=photos)
        walker.check("login", "/login")
        walker.check("unsubscribe", unsubscribe)
        walker.check("reconnect", reconnect)
        walker.sign_in()

        # A campaign with every channel, previewed (the answer to a form) and applied.
        def checked(text: str) -> Any:
            def action(page: Any) -> None:
                page.goto(server.url + "/campaigns/new", wait_until="load")
                page.fill("#yaml", text)
                page.click("form[action='/campaigns/check'] button[type=submit]")
                page.wait_for_load_state("load")

            return action

        walker.both(checked(EVERY_CHANNEL.replace("privacy: public", "privacy: everyone")))
        walker.check("campaign-mistake")
        walker.both(checked(EVERY_CHANNEL))
        walker.check("campaign-preview")
        walker.phone.click("form[action='/campaigns/apply'] button[type=submit]")
        walker.phone.wait_for_load_state("load")
        assert walker.phone.url.endswith("/campaigns/phone-walk"), walker.phone.url

        # A subscriber import, for its job page.
        walker.phone.goto(f"{server.url}/communities/{ACTIVE}", wait_until="load")
        walker.phone.set_input_files(
            "#csvfile",
            {"name": "list.csv", "mimeType": "text/csv", "buffer": SUBSCRIBERS_CSV.encode()},
        )
        walker.phone.fill("#consent_source", "ใบสมัครที่งาน OTOP น่าน")
        walker.phone.fill("#consent_date", "2026-11-01")
        walker.phone.click("form#import button[type=submit]")
        walker.phone.wait_for_load_state("load")
        job = urlsplit(walker.phone.url).path
        assert job.startswith("/imports/"), walker.phone.url

        # The media library with a photo and a video in it (thumbnails, fit badges).
        with session_scope(engine) as session:
            library = [
                add_file(
                    session=session,
                    source=move_into_library(source, settings.media_root),
                    name=source.name,
                    root=settings.media_root,
                    rules=default_rules(),
                    uploaded_by="admin",
                ).item.id
                for source in (
                    EXAMPLES_MEDIA / "songkran-poster.png",
                    EXAMPLES_MEDIA / "songkran-clip.mp4",
                )
            ]

        pages: dict[str, list[tuple[str, str]]] = {
            "/login": [],  # above, signed out
            "/e/unsubscribe/{token}": [],  # above, as a subscriber sees it
            "/reconnect/{token}": [],  # above, as a Page's owner without an account sees it
            "/": [("dashboard", "/")],
            "/calendar": [
                ("calendar-month", f"/calendar?day={day}"),
                ("calendar-week", f"/calendar?view=week&day={day}"),
            ],
            "/problems": [("problems", "/problems")],
            "/search": [("search", "/search?q=%E0%B8%99%E0%B9%88%E0%B8%B2%E0%B8%99")],  # น่าน
            "/campaigns": [("campaigns", "/campaigns")],
            "/campaigns/new": [("campaign-new", "/campaigns/new")],
            "/campaigns/{slug}": [
                ("campaign", f"/campaigns/{CAMPAIGN}"),
                ("campaign-every-channel", "/campaigns/phone-walk"),
            ],
            "/campaigns/{slug}/edit": [("campaign-edit", "/campaigns/phone-walk/edit")],
            "/campaigns/compose": [("composer-new", "/campaigns/compose")],
            "/campaigns/{slug}/compose": [("composer", "/campaigns/phone-walk/compose")],
            "/campaigns/quick": [("quick-post", "/campaigns/quick")],
            "/posts": [("posts", "/posts")],
            "/posts/{post_id}": [
                (f"post-{name}", f"/posts/{post_ids[name]}")
                for name in ("fb", "yt", "mail", "failed", "unconfirmed", "reconnect")
            ],
            "/communities": [("communities", "/communities")],
            "/communities/{slug}": [
                ("community", f"/communities/{ACTIVE}"),
                ("community-best-times", "/communities/busy"),
            ],
            "/imports/{key}": [("import-job", job)],
            "/reports": [("reports", "/reports")],
            "/reports/overview": [("report-overview", f"/reports/overview?{period}")],
            "/reports/community/{slug}": [
                ("report-community", f"/reports/community/{ACTIVE}?{period}")
            ],
            "/reports/campaign/{slug}": [
                ("report-campaign", f"/reports/campaign/{CAMPAIGN}"),
                ("report-campaign-every-channel", "/reports/campaign/phone-walk"),
            ],
            "/reports/year/{year}": [("report-year", "/reports/year/2569")],
            "/accounts/connect": [("connect", "/accounts/connect")],
            # Without a connection under way: the refusal page (the picker with Pages to tie
            # is opened at 390 px in tests/test_web_connect.py, not measured there).
            "/accounts/connect/pick": [("connect-pick-expired", "/accounts/connect/pick")],
            "/account": [("account", "/account")],
            "/account/tokens": [("tokens", "/account/tokens")],
            "/admin/users": [("users", "/admin/users")],
            "/admin/audit": [("audit", "/admin/audit")],
            "/library": [("library", "/library")],
            "/library/{item_id}": [
                ("library-photo", f"/library/{library[0]}"),
                ("library-video", f"/library/{library[1]}"),
            ],
        }
        unknown = html_routes() - set(pages) - set(NOT_PAGES)
        assert not unknown, f"new pages: add them (with sample values) to `pages`: {unknown}"
        for path_pages in pages.values():
            for name, path in path_pages:
                walker.check(name, path)
        walker.check("not-found", "/posts/999999")

        # The month calendar is a list on a phone: a post's line has room for its words.
        walker.phone.goto(f"{server.url}/calendar?day={day}", wait_until="load")
        narrowest = walker.phone.eval_on_selector_all(
            "ul.day-posts li.post", "items => Math.min(...items.map(i => i.offsetWidth))"
        )
        if narrowest < 250:
            walker.problems.append(f"a post on the month calendar is {narrowest} px wide at 390")

    if walker.photos:
        (SCREENSHOTS / "widths.json").write_text(
            json.dumps(walker.widths, indent=1, ensure_ascii=False), encoding="utf-8"
        )
    assert not walker.problems, "\n".join(walker.problems)
