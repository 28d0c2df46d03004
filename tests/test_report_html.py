"""The HTML reports opened in a real headless Chromium (Debian's ``chromium``, driven by
Playwright; no browser is downloaded): they render, show Thai text and their SVG charts, log
no console error, ask the network for nothing, and switch to their print layout.

Screenshots go to ``test-artifacts/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy.orm import Session

from marketing.models import ChannelKind
from marketing.reports import campaign_report, community_report, programme_overview
from marketing.reports.html import render_html
from tests.test_reports import ACTIVE, CAMPAIGN, END, START, seed

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():  # scripts/services.sh installs it; say how, do not pass quietly
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


class Opened:
    """A report page and what the browser said while loading it."""

    def __init__(self, page: Any, errors: list[str], requests: list[str]) -> None:
        self.page = page
        self.errors = errors
        self.requests = requests

    @property
    def text(self) -> str:
        return str(self.page.inner_text("body"))


def open_report(browser: Any, html: str, path: Path, screenshot: str) -> Opened:
    path.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / screenshot), full_page=True)
    return Opened(page, errors, requests)


def svg_summary(opened: Opened) -> list[dict[str, Any]]:
    return list(
        opened.page.eval_on_selector_all(
            "svg",
            """nodes => nodes.map(n => ({
                title: n.querySelector('title') ? n.querySelector('title').textContent : null,
                lines: n.querySelectorAll('polyline.series').length,
                bars: n.querySelectorAll('rect.bar').length,
                texts: n.querySelectorAll('text').length,
                width: n.getBoundingClientRect().width,
                height: n.getBoundingClientRect().height,
            }))""",
        )
    )


def platform_fonts(page: Any, selector: str) -> list[dict[str, Any]]:
    """The fonts Chromium actually drew ``selector``'s text with (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")
    node = cdp.send("DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector})
    fonts: list[dict[str, Any]] = cdp.send(
        "CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]}
    )["fonts"]
    cdp.detach()
    return fonts


def assert_clean(opened: Opened, path: Path) -> None:
    assert opened.errors == []
    assert opened.requests == [path.as_uri()]  # self-contained: nothing else was fetched


def test_community_report_in_chromium(browser: Any, session: Session, tmp_path: Path) -> None:
    seed(session)
    report = community_report(session=session, community_slug=ACTIVE, start=START, end=END)
    path = tmp_path / "community.html"
    opened = open_report(
        browser, render_html(report, buddhist_era=True), path, "report-community.png"
    )
    assert_clean(opened, path)
    text = opened.text
    assert "ชุมชนผ้าทอบ้านดอยเงิน" in text
    assert "1 ต.ค. 2569 – 28 ต.ค. 2569 (28 วัน)" in text  # Buddhist-era dates
    assert "อัตราการมีส่วนร่วม" in text and "โพสต์ที่ได้ผลดีที่สุด" in text
    assert f"อันดับที่ {report.rank.by_rate} จาก 10 ชุมชน" in text
    assert f"{report.total.current.interactions:,}" in text

    charts = svg_summary(opened)
    assert [c["title"] for c in charts] == [
        "การมีส่วนร่วมรายวัน",
        "การเข้าถึงรายวัน (การมองเห็น และอีเมลที่ส่ง)",
        "สัดส่วนการมีส่วนร่วมตามช่องทาง",
    ]
    channels = len(ChannelKind)  # the seed has records for every channel
    assert [c["lines"] for c in charts] == [channels, channels, 0]  # a line per channel
    assert charts[2]["bars"] == channels
    assert all(c["width"] > 300 and c["height"] > 100 and c["texts"] > 5 for c in charts)

    # Best posts link to where they were published.
    links = opened.page.eval_on_selector_all("table.posts a", "as => as.map(a => a.href)")
    assert f"https://example.org/{ACTIVE}/fb" in links

    # The Thai heading is drawn with fonts that have Thai glyphs (not boxes): ask Chromium
    # which platform fonts it used for that node, and fontconfig which fonts cover Thai.
    used = platform_fonts(opened.page, "h1")
    thai = subprocess.run(
        ["fc-list", ":lang=th", "family"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    thai_families = {name.strip() for line in thai.splitlines() for name in line.split(",")}
    assert used and all(font["familyName"] in thai_families for font in used), used
    assert all(font["glyphCount"] > 0 for font in used)

    # The print stylesheet takes over when printing.
    opened.page.emulate_media(media="print")
    size = opened.page.eval_on_selector("body", "b => getComputedStyle(b).fontSize")
    assert size == "14px"  # 10.5pt
    pdf = opened.page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    (ARTIFACTS / "report-community.pdf").write_bytes(pdf)
    opened.page.close()


def test_overview_and_campaign_in_chromium(browser: Any, session: Session, tmp_path: Path) -> None:
    seed(session)
    overview = programme_overview(session=session, start=START, end=END)
    path = tmp_path / "overview.html"
    opened = open_report(browser, render_html(overview), path, "report-overview.png")
    assert_clean(opened, path)
    assert "ภาพรวมโครงการสลากสร้างสรรค์เพื่อชุมชน" in opened.text
    assert "ชุมชนประมงบ้านอ่าวใส" in opened.text  # the inactive community is listed
    assert "ไม่มีความเคลื่อนไหว" in opened.text  # ...and flagged
    rows = opened.page.eval_on_selector_all("table.overview tbody tr", "rs => rs.length")
    assert rows == 10
    charts = svg_summary(opened)
    channels = len(ChannelKind)
    assert [c["lines"] for c in charts] == [channels, channels, 0, 0]
    assert [c["bars"] for c in charts][2:] == [channels, 10]
    opened.page.close()

    report = campaign_report(session=session, campaign_slug=CAMPAIGN)
    path = tmp_path / "campaign.html"
    opened = open_report(browser, render_html(report), path, "report-campaign.png")
    assert_clean(opened, path)
    assert "เที่ยวชุมชน ยลวิถีไทย" in opened.text
    assert "ต้องให้เจ้าหน้าที่ดำเนินการ (3)" in opened.text
    assert "ให้ผู้ดูแลเพจอนุญาตสิทธิ์" in opened.text
    assert len(svg_summary(opened)) == 1
    opened.page.close()


def test_html_is_well_formed_svg_and_has_no_external_reference(session: Session) -> None:
    seed(session)
    html = render_html(
        community_report(session=session, community_slug=ACTIVE, start=START, end=END)
    )
    for marker in ("<script", "<link", "@import", "url(", "http://fonts", "https://fonts"):
        assert marker not in html
    start = html.index("<svg")
    ElementTree.fromstring(html[start : html.index("</svg>", start) + len("</svg>")])
