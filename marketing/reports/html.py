"""Reports as one self-contained HTML file each: inline CSS and SVG, no script, no web font,
no request to anywhere -- a file that opens offline, can be mailed, and prints on A4.

Labels are Thai, with a font stack that finds a Thai face on every common system ("Sarabun",
"Noto Sans Thai", "Leelawadee UI" on Windows, "Tahoma", then any sans-serif).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from marketing.db import utcnow
from marketing.reports import labels
from marketing.reports.charts import Bar, Series, bar_chart, line_chart
from marketing.reports.period import Period, short_date, thai_date
from marketing.reports.rows import (
    CHANNELS,
    METRIC_ROWS,
    CampaignReport,
    ChannelLine,
    ChannelSum,
    CommunityReport,
    DayPoint,
    Metrics,
    ProgrammeOverview,
    rate_points,
    relative_change,
)

Report = CommunityReport | ProgrammeOverview | CampaignReport

# The overview's rate chart shows at most this many communities (the table shows them all).
RATE_CHART_ROWS = 30
# A campaign's list of posts that need a person stops here (CSV and JSON have them all).
LIST_LIMIT = 200


def _metric_delta(name: str, current: Metrics, previous: Metrics) -> str:
    if name == "engagement_rate":
        return labels.points(rate_points(current, previous), current=current.reach)
    now = getattr(current, name)
    return labels.change(relative_change(now, getattr(previous, name)), current=now)


def _line_columns(lines: Sequence[ChannelLine]) -> list[tuple[str, Metrics]]:
    return [(labels.CHANNEL_TH[line.channel], line.current) for line in lines]


def _sum_columns(sums: Sequence[ChannelSum]) -> list[tuple[str, Metrics]]:
    return [(labels.CHANNEL_TH[line.channel], line.metrics) for line in sums]


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("marketing.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        channel_th=labels.CHANNEL_TH,
        metric_th=labels.METRIC_TH,
        trend_th=labels.TREND_TH,
        state_th=labels.STATE_TH,
        needs_help=labels.NEEDS_HELP,
        campaign_status_th=labels.CAMPAIGN_STATUS_TH,
        list_limit=LIST_LIMIT,
        rate_definition=labels.RATE_DEFINITION_TH,
        metric_rows=METRIC_ROWS,
        key_metrics=("interactions", "reach", "engagement_rate"),
        metric_value=labels.metric_text,
        metric_delta=_metric_delta,
        line_columns=_line_columns,
        sum_columns=_sum_columns,
        percent=labels.percent,
        rate=labels.rate,
        versus_before=labels.versus_before,
        change=labels.change,
        points=labels.points,
        integer=labels.integer,
    )
    return env


def _trend_charts(
    trend: Sequence[DayPoint], period: Period, *, buddhist_era: bool, whose: str
) -> list[Markup]:
    days = period.each_day()
    index = {day: i for i, day in enumerate(days)}
    charts = []
    for field, title in (
        ("interactions", f"การมีส่วนร่วมรายวัน{whose}"),
        ("reach", f"การเข้าถึงรายวัน{whose} (การมองเห็น และอีเมลที่ส่ง)"),
    ):
        values = {c.value: [0] * len(days) for c in CHANNELS}
        for point in trend:
            values[point.channel][index[point.day]] = getattr(point, field)
        charts.append(
            line_chart(
                title=title,
                days=days,
                series=[
                    Series(
                        labels.CHANNEL_TH[c.value], labels.CHANNEL_COLOUR[c.value], values[c.value]
                    )
                    for c in CHANNELS
                ],
                day_label=lambda d: short_date(d, buddhist_era=buddhist_era),
            )
        )
    return charts


def _channel_mix(lines: Sequence[ChannelLine] | Sequence[ChannelSum]) -> Markup:
    per_channel = []
    for line in lines:
        if line.channel == "all":
            continue
        metrics = line.current if isinstance(line, ChannelLine) else line.metrics
        per_channel.append((line.channel, metrics.interactions, metrics.posts))
    total = sum(interactions for _, interactions, _ in per_channel)
    bars = []
    for channel, interactions, posts in per_channel:
        share = labels.percent(interactions / total if total else 0.0, digits=1)
        bars.append(
            Bar(
                label=labels.CHANNEL_TH[channel],
                value=interactions,
                colour=labels.CHANNEL_COLOUR[channel],
                text=f"{labels.integer(interactions)} ({share}) · {labels.integer(posts)} โพสต์",
            )
        )
    return bar_chart(title="สัดส่วนการมีส่วนร่วมตามช่องทาง", bars=bars)


def _period_text(period: Period, *, buddhist_era: bool) -> str:
    start = thai_date(period.start, buddhist_era=buddhist_era)
    end = thai_date(period.end, buddhist_era=buddhist_era)
    return f"{start} – {end} ({period.days} วัน)"


def _common(buddhist_era: bool, zone: ZoneInfo, generated_at: datetime) -> dict[str, Any]:
    def when(value: datetime | None) -> str:
        return labels.local_time(value, zone=zone, buddhist_era=buddhist_era)

    def day(value: date) -> str:
        return thai_date(value, buddhist_era=buddhist_era)

    return {
        "when": when,
        "day": day,
        "generated": when(generated_at),
        "era": "พ.ศ." if buddhist_era else "ค.ศ.",
    }


def render_html(
    report: Report,
    *,
    buddhist_era: bool = False,
    zone: ZoneInfo | None = None,
    generated_at: datetime | None = None,
) -> str:
    """``report`` as a complete, self-contained HTML document."""
    zone = zone or ZoneInfo("Asia/Bangkok")
    context = _common(buddhist_era, zone, generated_at or utcnow())
    env = _environment()
    if isinstance(report, CommunityReport):
        template = env.get_template("community.html.j2")
        context.update(
            report=report,
            title=f"รายงานชุมชน {report.community.name_th}",
            period_text=_period_text(report.period, buddhist_era=buddhist_era),
            previous_text=_period_text(report.previous_period, buddhist_era=buddhist_era),
            charts=[
                *_trend_charts(report.trend, report.period, buddhist_era=buddhist_era, whose=""),
                _channel_mix(report.channels),
            ],
        )
    elif isinstance(report, ProgrammeOverview):
        template = env.get_template("overview.html.j2")
        shown = report.rows[:RATE_CHART_ROWS]
        rate_chart = bar_chart(
            title=(
                "อัตราการมีส่วนร่วมรายชุมชน"
                + (
                    f" ({len(shown)} ชุมชนแรกตามลำดับในตาราง)"
                    if len(report.rows) > len(shown)
                    else ""
                )
            ),
            bars=[
                Bar(
                    label=row.community.name_th,
                    # A rate from too few emails and views draws no bar, only the words.
                    value=row.total.current.engagement_rate
                    if row.total.current.rate_meaningful
                    else 0.0,
                    colour="#7a4fb5" if row.trend not in labels.NEEDS_HELP else "#c77700",
                    text=labels.rate(row.total.current),
                )
                for row in shown
            ],
        )
        context.update(
            report=report,
            title="ภาพรวมโครงการสลากสร้างสรรค์เพื่อชุมชน",
            period_text=_period_text(report.period, buddhist_era=buddhist_era),
            previous_text=_period_text(report.previous_period, buddhist_era=buddhist_era),
            charts=[
                *_trend_charts(
                    report.trend, report.period, buddhist_era=buddhist_era, whose="ทั้งโครงการ"
                ),
                _channel_mix(report.programme),
                rate_chart,
            ],
            needs_help_rows=[row for row in report.rows if row.trend in labels.NEEDS_HELP],
            sort_th=labels.SORT_TH[report.sort] + (" (กลับลำดับ)" if report.reverse else ""),
        )
    else:
        template = env.get_template("campaign.html.j2")
        states = sorted(
            {s.state for s in report.states}, key=lambda s: list(labels.STATE_TH).index(s)
        )
        pivot = {(s.channel, s.state): s.posts for s in report.states}
        context.update(
            report=report,
            title=f"รายงานแคมเปญ {report.campaign.name}",
            states=states,
            pivot=pivot,
            channels=[c.value for c in CHANNELS],
            charts=[_channel_mix(report.achieved)],
        )
    return template.render(**context)
