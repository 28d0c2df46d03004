"""Honest figures (#15): no change shown against a period with no data, no rate from too few
emails or views, rate changes in points (and "จุด" in Thai), evenly spaced date labels.  The
database tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from marketing.cli.communities import SAMPLE
from marketing.models import ChannelKind, Community, CommunityPerformance, Role
from marketing.performance import summarise
from marketing.reference import import_reference
from marketing.reports import community_report, programme_overview
from marketing.reports.charts import Series, date_ticks, line_chart
from marketing.reports.exports import to_csv, to_json
from marketing.reports.html import render_html
from marketing.reports.rows import MIN_EMAILS_SENT, MIN_VIEWS
from marketing.reports.terminal import renderables
from marketing.web import create_app
from tests.support.web import NOW, WebClient, add_user, clock_at

START, END = date(2026, 10, 1), date(2026, 10, 28)
BEFORE = date(2026, 9, 15)  # a day of the previous period
SLUG = "nan-ban-doi-ngoen"


def record(session: Session, day: date, channel: ChannelKind, **values: int) -> None:
    community_id = session.scalars(select(Community.id).where(Community.slug == SLUG)).one()
    session.execute(
        insert(CommunityPerformance),
        [{"community_id": community_id, "channel": channel, "day": day, **values}],
    )
    summarise(session=session, keys=[(community_id, channel, day)])  # as rollup does
    session.commit()


def communities(session: Session) -> None:
    import_reference(session=session, path=SAMPLE)
    session.commit()


def terminal_text(report: Any) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderables(report))
    return console.export_text()


def csv_rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


def test_change_against_an_empty_previous_period_is_new(session: Session) -> None:
    communities(session)
    record(session, date(2026, 10, 5), ChannelKind.FACEBOOK, posts=2, views=400, reactions=30)
    report = community_report(session=session, community_slug=SLUG, start=START, end=END)

    change = json.loads(to_json(report))["channels"][-1]["change"]
    assert change["interactions"] is None and change["engagement_rate_points"] is None
    row = csv_rows(to_csv(report))[-1]
    assert row["channel"] == "all"
    assert row["change_engagement_rate_points"] == "" and row["change_interactions_fraction"] == ""

    html = render_html(report)
    assert "ใหม่ (ช่วงก่อนไม่มีข้อมูล)" in html
    assert "เทียบช่วงก่อน +" not in html and " pt" not in html and "จุด" not in html
    overview = render_html(programme_overview(session=session, start=START, end=END))
    assert ">ใหม่</td>" in overview and "+7.50 จุด" not in overview
    text = terminal_text(report)
    assert "new" in text and "+7.50 pt" not in text


def test_nothing_before_and_nothing_now_is_a_dash_not_new(session: Session) -> None:
    communities(session)
    report = community_report(session=session, community_slug=SLUG, start=START, end=END)
    html = render_html(report)
    assert "ช่วงก่อนไม่มีข้อมูล" in html and "ใหม่" not in html


def test_rate_change_is_in_points_in_csv_json_and_thai_says_chut(session: Session) -> None:
    communities(session)
    # Before: 4 of 200 views (2.0 %); now: 49 of 500 (9.8 %): +7.8 points.
    record(session, BEFORE, ChannelKind.FACEBOOK, views=200, reactions=4)
    record(session, date(2026, 10, 5), ChannelKind.FACEBOOK, views=500, reactions=49)
    report = community_report(session=session, community_slug=SLUG, start=START, end=END)
    row = csv_rows(to_csv(report))[-1]
    assert float(row["change_engagement_rate_points"]) == pytest.approx(7.8)
    assert float(row["change_interactions_fraction"]) == pytest.approx(49 / 4 - 1)
    change = json.loads(to_json(report))["channels"][-1]["change"]
    assert change["engagement_rate_points"] == pytest.approx(7.8)
    html = render_html(report)
    assert "เทียบช่วงก่อน +7.80 จุด" in html and " pt" not in html
    assert "+7.80 pt" in terminal_text(report)


def test_rate_from_three_emails_is_not_yet_meaningful(session: Session) -> None:
    communities(session)
    record(session, date(2026, 10, 5), ChannelKind.EMAIL, posts=1, emails_sent=3, clicks=1)
    report = community_report(session=session, community_slug=SLUG, start=START, end=END)
    email = json.loads(to_json(report))["channels"][2]
    assert email["channel"] == "email" and email["current"]["rate_meaningful"] is False
    assert csv_rows(to_csv(report))[2]["rate_meaningful"] == "False"
    html = render_html(report)
    assert "ยังน้อยเกินไป (3 ฉบับ)" in html and "33.33%" not in html
    text = terminal_text(report)
    assert "too few (3 emails)" in text and "33.33%" not in text


def test_rate_from_thirty_emails_or_a_hundred_views_is_shown(session: Session) -> None:
    assert (MIN_EMAILS_SENT, MIN_VIEWS) == (30, 100)  # the numbers docs/reports.md states
    communities(session)
    record(session, date(2026, 10, 5), ChannelKind.EMAIL, emails_sent=30, clicks=3)
    record(session, date(2026, 10, 5), ChannelKind.YOUTUBE, views=99, reactions=9)
    report = community_report(session=session, community_slug=SLUG, start=START, end=END)
    html = render_html(report)
    assert "10.00%" in html  # 3 of 30 emails
    assert "ยังน้อยเกินไป (99 ครั้ง)" in html  # 99 views is one short


@pytest.mark.parametrize("days", [2, 3, 7, 11, 14, 26, 28, 29, 30, 31, 60, 90, 91, 365])
def test_date_labels_are_evenly_spaced(days: int) -> None:
    ticks = date_ticks(days)
    assert ticks[-1] == days - 1 and 2 <= len(ticks) <= 5
    assert len({b - a for a, b in zip(ticks, ticks[1:], strict=False)}) == 1
    period = [date(2026, 1, 1).fromordinal(date(2026, 1, 1).toordinal() + i) for i in range(days)]
    svg = line_chart(
        title="t",
        days=period,
        series=[Series(label="s", colour="#000", values=[1] * days)],
        day_label=lambda d: d.isoformat(),
    )
    label = re.compile(r'<text x="([0-9.]+)"[^>]*text-anchor="middle"[^>]*>(\d{4}-\d\d-\d\d)<')
    xs = [float(x) for x, _ in label.findall(str(svg))]
    assert len(xs) == len(ticks)
    gaps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert max(gaps) - min(gaps) < 0.2  # rounding to one decimal only


def test_web_pages_show_new_and_too_few_not_a_change_from_zero_or_33_percent(
    engine: Engine, session: Session
) -> None:
    communities(session)
    today = NOW.astimezone(ZoneInfo("Asia/Bangkok")).date()
    record(session, today, ChannelKind.EMAIL, posts=1, emails_sent=3, clicks=1)
    add_user(engine, "reader", Role.VIEWER)
    client = WebClient(create_app(engine=engine, clock=clock_at(NOW))).sign_in("reader")
    try:
        page = client.get(f"/communities/{SLUG}").text
        assert "ยังน้อยเกินไป (3 ฉบับ)" in page and "33.33%" not in page
        report = client.get(f"/reports/community/{SLUG}").text
        assert "ใหม่ (ช่วงก่อนไม่มีข้อมูล)" in report and "ยังน้อยเกินไป (3 ฉบับ)" in report
        assert "33.33%" not in report and " pt" not in report
        data = client.get(f"/reports/community/{SLUG}?format=json").json()
        assert data["channels"][-1]["change"]["engagement_rate_points"] is None
    finally:
        client.close()
