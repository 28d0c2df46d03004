"""Pure parts of the reports: SVG charts, periods and Thai dates (no database, no browser)."""

from __future__ import annotations

from datetime import date
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from marketing.reports.charts import Bar, Series, bar_chart, line_chart, nice_ceiling
from marketing.reports.period import Period, parse_day, resolve_period, short_date, thai_date
from marketing.reports.rows import Metrics, trend_of

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def test_line_chart_has_title_axes_legend_and_a_line_per_series() -> None:
    days = Period(start=date(2026, 10, 1), end=date(2026, 10, 28)).each_day()
    svg = parse(
        line_chart(
            title="การมีส่วนร่วม <รายวัน> & ช่องทาง",
            days=days,
            series=[
                Series("เฟซบุ๊ก", "#1864d6", list(range(28))),
                Series("อีเมล", "#1e8a44", [0] * 28),
            ],
            day_label=lambda d: short_date(d, buddhist_era=True),
        )
    )
    title = svg.find(f"{SVG}title")
    assert title is not None and title.text == "การมีส่วนร่วม <รายวัน> & ช่องทาง"
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == title.get("id")
    lines = svg.findall(f"{SVG}polyline")
    assert len(lines) == 2
    assert len(lines[0].get("points", "").split()) == 28
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert "01/10/2569" in texts and "28/10/2569" in texts  # first and last day
    assert "เฟซบุ๊ก" in texts and "อีเมล" in texts  # legend
    assert "30" in texts  # the value axis reaches a round number above the largest value (27)


def test_line_chart_of_nothing_and_of_one_day() -> None:
    nothing = parse(
        line_chart(
            title="ว่าง",
            days=[date(2020, 1, 1)],
            series=[Series("a", "#000", [0])],
            day_label=str,
        )
    )
    assert nothing.findall(f"{SVG}polyline") == []
    axis = [t.text for t in nothing.iter(f"{SVG}text")][2:7]  # after title and legend
    assert axis == ["0", "1", "2", "3", "4"]  # whole numbers even with nothing to show
    assert len(nothing.findall(f"{SVG}circle")) == 1  # one day is a point, not a line
    empty = parse(line_chart(title="x", days=[], series=[], day_label=str))
    assert empty.find(f"{SVG}title") is not None


def test_bar_chart_scales_to_the_largest_value() -> None:
    svg = parse(
        bar_chart(
            title="สัดส่วน",
            bars=[
                Bar("ก", 50, "#111", "50"),
                Bar("ข", 100, "#222", "100"),
                Bar("ค", 0, "#333", "0"),
            ],
        )
    )
    widths = [float(r.get("width", "-1")) for r in svg.iter(f"{SVG}rect")]
    assert widths[1] == pytest.approx(2 * widths[0]) and widths[2] == 0
    assert [t.text for t in svg.iter(f"{SVG}text")][1:4] == ["ก", "50", "ข"]


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (0.3, 0.3), (7, 8), (27, 30), (101, 120), (2400, 2400), (9000, 10000)],
)
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_periods_and_buddhist_era() -> None:
    period = Period(start=date(2026, 10, 1), end=date(2026, 10, 28))
    assert period.days == 28
    assert period.previous() == Period(start=date(2026, 9, 3), end=date(2026, 9, 30))
    assert parse_day("2569-10-01") == date(2026, 10, 1)
    assert parse_day("2567-02-29") == date(2024, 2, 29)  # a leap day in BE 2567 (2024)
    assert parse_day("1/10/2569") == parse_day("01/10/2569") == date(2026, 10, 1)
    assert parse_day("29/02/2567") == date(2024, 2, 29)
    with pytest.raises(ValueError, match="DD/MM/YYYY or YYYY-MM-DD"):
        parse_day("10/2569")
    with pytest.raises(ValueError, match="not a date on the calendar"):
        parse_day("29/02/2568")  # 2025: no leap day
    with pytest.raises(ValidationError, match="give --from on or before --to"):
        Period(start=date(2026, 10, 2), end=date(2026, 10, 1))
    assert thai_date(date(2026, 11, 28), buddhist_era=True) == "28 พ.ย. 2569"
    assert thai_date(date(2026, 11, 28), buddhist_era=False) == "28 พ.ย. 2026"
    zone = ZoneInfo("Asia/Bangkok")
    assert resolve_period(start=None, end=date(2026, 10, 28), zone=zone, days=7) == Period(
        start=date(2026, 10, 22), end=date(2026, 10, 28)
    )
    assert resolve_period(start=date(2026, 10, 1), end=None, zone=zone, days=3).end == date(
        2026, 10, 3
    )


def test_email_and_social_rates_and_trends() -> None:
    email = Metrics.of_channel("email", {**dict.fromkeys(_RAW, 0), "clicks": 5, "emails_sent": 50})
    social = Metrics.of_channel(
        "facebook", {**dict.fromkeys(_RAW, 0), "views": 150, "reactions": 25, "clicks": 5}
    )
    assert email.engagement_rate == pytest.approx(0.1)
    assert social.engagement_rate == pytest.approx(0.2)
    both = email + social
    assert (both.interactions, both.reach) == (35, 200)
    assert both.engagement_rate == pytest.approx(0.175)  # weighted by reach, not (0.1 + 0.2) / 2
    assert Metrics().engagement_rate == 0.0
    assert trend_of(Metrics(), Metrics()) == "inactive"
    assert trend_of(both, Metrics()) == "new"
    assert trend_of(both, social) == "growing"
    assert trend_of(social, both) == "declining"
    assert trend_of(both, both) == "steady"


_RAW = ("posts", "views", "reactions", "comments", "shares", "clicks", "opens")
_RAW += ("unsubscribes", "emails_sent")
