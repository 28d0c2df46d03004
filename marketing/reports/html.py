"""Reports as one self-contained HTML file each: inline CSS and SVG, no script, no web font,
no request to anywhere -- a file that opens offline, can be mailed, and prints on A4.

Words are in the reader's language: Thai by default, English by choice.  The templates' and
this module's messages are English msgids translated through the web app's gettext catalog
(``marketing/web/translations/th/LC_MESSAGES/messages.po``); the label tables of
:mod:`marketing.reports.labels` have a Thai and an English column.  The font stack finds a
Thai face on every common system ("Sarabun", "Noto Sans Thai", "Leelawadee UI" on Windows,
"Tahoma", then any sans-serif).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import cache, partial
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from marketing.conventions import DEFAULT_TIMEZONE
from marketing.db import utcnow
from marketing.reports import labels
from marketing.reports.charts import Bar, Series, bar_chart, line_chart
from marketing.reports.period import Period, short_date
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
from marketing.web.i18n import Clock, language_of, translations

Report = CommunityReport | ProgrammeOverview | CampaignReport

# The overview's rate chart shows at most this many communities (the table shows them all).
RATE_CHART_ROWS = 30
# A campaign's list of posts that need a person stops here (CSV and JSON have them all).
LIST_LIMIT = 200


def _metric_delta(name: str, current: Metrics, previous: Metrics, *, en: bool) -> str:
    if name == "engagement_rate":
        return labels.points(rate_points(current, previous), current=current.reach, en=en)
    now = getattr(current, name)
    return labels.change(relative_change(now, getattr(previous, name)), current=now, en=en)


@cache
def _environment(language: str) -> Environment:
    en = language == "en"
    env = Environment(
        loader=PackageLoader("marketing.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    channel_name = labels.channel_names(en=en)
    env.globals.update(
        language=language,
        channel_name=channel_name,
        metric_name=labels.METRIC_EN if en else labels.METRIC_TH,
        trend_name=labels.TREND_EN if en else labels.TREND_TH,
        state_name=labels.STATE_EN if en else labels.STATE_TH,
        needs_help=labels.NEEDS_HELP,
        campaign_status_name=labels.CAMPAIGN_STATUS_EN if en else labels.CAMPAIGN_STATUS_TH,
        list_limit=LIST_LIMIT,
        rate_definition=labels.RATE_DEFINITION_EN if en else labels.RATE_DEFINITION_TH,
        metric_rows=METRIC_ROWS,
        key_metrics=("interactions", "reach", "engagement_rate"),
        metric_value=partial(labels.metric_text, en=en),
        metric_delta=partial(_metric_delta, en=en),
        line_columns=lambda lines: [(channel_name[line.channel], line.current) for line in lines],
        sum_columns=lambda sums: [(channel_name[line.channel], line.metrics) for line in sums],
        percent=labels.percent,
        rate=partial(labels.rate, en=en),
        versus_before=partial(labels.versus_before, en=en),
        change=partial(labels.change, en=en),
        points=partial(labels.points, en=en),
        integer=labels.integer,
    )
    return env


class _Words:
    """The Python-made words of one report in one language."""

    def __init__(self, language: str, buddhist_era: bool, zone: ZoneInfo) -> None:
        self.en = language == "en"
        self._ = translations(language).gettext
        self.channel = labels.channel_names(en=self.en)
        self.clock = Clock(language=language, buddhist_era=buddhist_era, zone=zone)
        self.buddhist_era = buddhist_era

    def period(self, period: Period) -> str:
        return self._("%(start)s – %(end)s (%(days)s days)") % {
            "start": self.clock.day(period.start),
            "end": self.clock.day(period.end),
            "days": period.days,
        }


def _trend_charts(
    trend: Sequence[DayPoint], period: Period, *, words: _Words, programme: bool
) -> list[Markup]:
    _ = words._
    days = period.each_day()
    index = {day: i for i, day in enumerate(days)}
    charts = []
    titles = (
        (
            "interactions",
            _("Daily interactions, whole programme") if programme else _("Daily interactions"),
        ),
        (
            "reach",
            _("Daily reach, whole programme (views and e-mails sent)")
            if programme
            else _("Daily reach (views and e-mails sent)"),
        ),
    )
    for field, title in titles:
        values = {c.value: [0] * len(days) for c in CHANNELS}
        for point in trend:
            values[point.channel][index[point.day]] = getattr(point, field)
        charts.append(
            line_chart(
                title=title,
                days=days,
                series=[
                    Series(
                        words.channel[c.value], labels.channel_colours()[c.value], values[c.value]
                    )
                    for c in CHANNELS
                ],
                day_label=lambda d: short_date(d, buddhist_era=words.buddhist_era),
            )
        )
    return charts


def _channel_mix(lines: Sequence[ChannelLine] | Sequence[ChannelSum], *, words: _Words) -> Markup:
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
        posts_text = words._("%(posts)s posts") % {"posts": labels.integer(posts)}
        bars.append(
            Bar(
                label=words.channel[channel],
                value=interactions,
                colour=labels.channel_colours()[channel],
                text=f"{labels.integer(interactions)} ({share}) · {posts_text}",
            )
        )
    return bar_chart(title=words._("Interactions by channel"), bars=bars)


def _common(words: _Words, generated_at: datetime) -> dict[str, Any]:
    def when(value: datetime | None) -> str:
        return words.clock.when(value)

    def day(value: date) -> str:
        return words.clock.day(value)

    return {
        "when": when,
        "day": day,
        "generated": when(generated_at),
        "era": words._("the Buddhist era") if words.buddhist_era else words._("the Common era"),
    }


def render_html(
    report: Report,
    *,
    language: str = "th",
    buddhist_era: bool = False,
    zone: ZoneInfo | None = None,
    generated_at: datetime | None = None,
) -> str:
    """``report`` as a complete, self-contained HTML document in ``language`` (th, en)."""
    language = language_of(language)
    words = _Words(language, buddhist_era, zone or ZoneInfo(DEFAULT_TIMEZONE))
    _ = words._
    context = _common(words, generated_at or utcnow())
    env = _environment(language)
    if isinstance(report, CommunityReport):
        template = env.get_template("community.html.j2")
        context.update(
            report=report,
            title=_("Community report %(name)s") % {"name": report.community.name_th},
            period_text=words.period(report.period),
            previous_text=words.period(report.previous_period),
            charts=[
                *_trend_charts(report.trend, report.period, words=words, programme=False),
                _channel_mix(report.channels, words=words),
            ],
        )
    elif isinstance(report, ProgrammeOverview):
        template = env.get_template("overview.html.j2")
        shown = report.rows[:RATE_CHART_ROWS]
        chart_title = _("Engagement rate by community")
        if len(report.rows) > len(shown):
            chart_title += _(" (the first %(count)s communities in the table's order)") % {
                "count": len(shown)
            }
        rate_chart = bar_chart(
            title=chart_title,
            bars=[
                Bar(
                    label=row.community.name_th,
                    # A rate from too few emails and views draws no bar, only the words.
                    value=row.total.current.engagement_rate
                    if row.total.current.rate_meaningful
                    else 0.0,
                    colour="#7a4fb5" if row.trend not in labels.NEEDS_HELP else "#c77700",
                    text=labels.rate(row.total.current, en=words.en),
                )
                for row in shown
            ],
        )
        sorts = labels.SORT_EN if words.en else labels.SORT_TH
        context.update(
            report=report,
            title=_("Overview of the Creative Lottery for Communities programme"),
            period_text=words.period(report.period),
            previous_text=words.period(report.previous_period),
            charts=[
                *_trend_charts(report.trend, report.period, words=words, programme=True),
                _channel_mix(report.programme, words=words),
                rate_chart,
            ],
            needs_help_rows=[row for row in report.rows if row.trend in labels.NEEDS_HELP],
            sort_name=sorts[report.sort] + (_(" (reversed)") if report.reverse else ""),
        )
    else:
        template = env.get_template("campaign.html.j2")
        states = sorted(
            {s.state for s in report.states}, key=lambda s: list(labels.STATE_TH).index(s)
        )
        pivot = {(s.channel, s.state): s.posts for s in report.states}
        context.update(
            report=report,
            title=_("Campaign report %(name)s") % {"name": report.campaign.name},
            states=states,
            pivot=pivot,
            channels=[c.value for c in CHANNELS],
            charts=[_channel_mix(report.achieved, words=words)],
        )
    return template.render(**context)
