"""Reports as terminal tables (rich): the figures at a glance, English headings, Thai names."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from marketing.reports import labels
from marketing.reports.period import Period, short_date
from marketing.reports.rows import (
    METRIC_ROWS,
    CampaignReport,
    ChannelLine,
    CommunityReport,
    Metrics,
    PostResult,
    ProgrammeOverview,
    rate_points,
    relative_change,
)

Report = CommunityReport | ProgrammeOverview | CampaignReport


def _period(period: Period, previous: Period, buddhist_era: bool) -> str:
    def show(p: Period) -> str:
        return (
            f"{short_date(p.start, buddhist_era=buddhist_era)} to "
            f"{short_date(p.end, buddhist_era=buddhist_era)}"
        )

    return f"{show(period)} ({period.days} days), compared with {show(previous)}"


METRIC_HEADINGS = (
    "Posts",
    "Views",
    "Reactions",
    "Comments",
    "Shares",
    "Clicks",
    "Emails sent",
    "Opens",
    "Unsubscribes",
    "Interactions",
    "Reach",
    "Engagement rate",
)


def _metric_table(
    title: str, columns: Sequence[tuple[str, Metrics]], previous: Metrics | None
) -> Table:
    """Metrics down, channels across (narrow enough for a terminal); the last column is the
    total, compared with ``previous`` when given."""
    table = Table(title=title, title_justify="left")
    table.add_column("Metric")
    for heading, _ in columns:
        table.add_column(heading, justify="right")
    if previous is not None:
        table.add_column("All before", justify="right")
        table.add_column("Change", justify="right")
    total = columns[-1][1]
    for name, heading in zip(METRIC_ROWS, METRIC_HEADINGS, strict=True):
        cells = [labels.metric_text(name, metrics, en=True) for _, metrics in columns]
        if previous is not None:
            cells.append(labels.metric_text(name, previous, en=True))
            if name == "engagement_rate":
                cells.append(
                    labels.points(rate_points(total, previous), current=total.reach, en=True)
                )
            else:
                now = getattr(total, name)
                cells.append(
                    labels.change(
                        relative_change(now, getattr(previous, name)), current=now, en=True
                    )
                )
        key = name in ("interactions", "reach", "engagement_rate")
        table.add_row(heading, *cells, style="bold" if key else None)
    return table


def _channel_table(title: str, lines: Sequence[ChannelLine]) -> Table:
    return _metric_table(
        title,
        [(labels.CHANNEL_EN[line.channel], line.current) for line in lines],
        lines[-1].previous,
    )


def _posts_table(
    title: str, posts: Sequence[PostResult], zone: ZoneInfo, buddhist_era: bool
) -> Table:
    table = Table(title=title, title_justify="left")
    for heading, justify in (
        ("Community", "left"),
        ("Channel", "left"),
        ("Post", "left"),
        ("Published", "left"),
        ("Reach", "right"),
        ("Interactions", "right"),
        ("Rate", "right"),
        ("Link", "left"),
    ):
        table.add_column(heading, justify=justify)  # type: ignore[arg-type]
    for post in posts:
        table.add_row(
            post.community_name_th,
            labels.CHANNEL_EN[post.channel],
            post.label,
            labels.local_time(post.published_at, zone=zone, buddhist_era=buddhist_era),
            labels.integer(post.reach),
            labels.integer(post.interactions),
            labels.rate(post, en=True),
            Text(post.permalink or "", overflow="fold"),
        )
    return table


def _definition() -> Text:
    return Text(labels.RATE_DEFINITION_EN, style="dim")


def renderables(
    report: Report, *, buddhist_era: bool = False, zone: ZoneInfo | None = None
) -> RenderableType:
    """``report`` as rich renderables (print them with a rich ``Console``)."""
    zone = zone or ZoneInfo("Asia/Bangkok")
    parts: list[RenderableType] = []
    if isinstance(report, CommunityReport):
        c = report.community
        parts.append(Text(f"{c.name_th} ({c.name_en}, {c.province})", style="bold"))
        parts.append(Text(_period(report.period, report.previous_period, buddhist_era)))
        parts.append(
            Text(
                f"Rank in the programme: {report.rank.by_rate} of {report.rank.of} by "
                f"engagement rate, {report.rank.by_interactions} by interactions"
            )
        )
        parts.append(_channel_table("By channel", report.channels))
        if report.best_posts:
            parts.append(_posts_table("Best posts", report.best_posts, zone, buddhist_era))
        else:
            parts.append(Text("No published post with results in this period."))
    elif isinstance(report, ProgrammeOverview):
        parts.append(Text("Programme overview", style="bold"))
        parts.append(Text(_period(report.period, report.previous_period, buddhist_era)))
        table = Table(
            title=f"Communities by {report.sort}{' (reversed)' if report.reverse else ''}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        table.add_column("#", justify="right")
        table.add_column("Community", min_width=14, ratio=1)
        for heading in (
            "Posts",
            "FB",
            "YT",
            "Mail",
            "Inter-\nactions",
            "Reach",
            "Rate",
            "Change",
            "Rate Δ",
        ):
            table.add_column(heading, justify="right")
        table.add_column("Trend")
        for row in report.rows:
            total = row.total
            help_style = "yellow" if row.trend in labels.NEEDS_HELP else None
            table.add_row(
                str(row.rank.by_rate),
                row.community.name_th,
                labels.integer(total.current.posts),
                *(labels.integer(line.current.interactions) for line in row.channels[:3]),
                labels.integer(total.current.interactions),
                labels.integer(total.current.reach),
                labels.rate(total.current, en=True),
                labels.change(
                    total.change.interactions, current=total.current.interactions, en=True
                ),
                labels.points(
                    total.change.engagement_rate_points, current=total.current.reach, en=True
                ),
                labels.TREND_EN[row.trend],
                style=help_style,
            )
        parts.append(table)
        parts.append(_channel_table("Programme by channel", report.programme))
    else:
        campaign = report.campaign
        parts.append(Text(f"{campaign.name} ({campaign.slug}), {campaign.status}", style="bold"))
        states = Table(title="Posts by state", title_justify="left")
        states.add_column("Channel")
        states.add_column("State")
        states.add_column("Posts", justify="right")
        for count in report.states:
            states.add_row(labels.CHANNEL_EN[count.channel], count.state.value, str(count.posts))
        parts.append(states)
        if report.needs_person:
            needs = Table(title="Needs a person", title_justify="left", style="yellow")
            for heading in ("Community", "Channel", "State", "Scheduled", "Error", "What to do"):
                needs.add_column(heading)
            for post in report.needs_person:
                needs.add_row(
                    post.community_name_th,
                    labels.CHANNEL_EN[post.channel],
                    post.state.value,
                    labels.local_time(post.scheduled_at, zone=zone, buddhist_era=buddhist_era),
                    post.last_error or "",
                    post.action_hint or "",
                )
            parts.append(needs)
        else:
            parts.append(Text("No post needs a person."))
        achieved = _metric_table(
            "Achieved (posts = published posts)",
            [(labels.CHANNEL_EN[line.channel], line.metrics) for line in report.achieved],
            None,
        )
        parts.append(achieved)
        if report.best_posts:
            parts.append(_posts_table("Best posts", report.best_posts, zone, buddhist_era))
    parts.append(_definition())
    return Group(*parts)
