"""Reports as terminal tables (rich): the figures at a glance, in Thai or English.

Headings go through ``gettext`` (the command line passes its ``cli`` catalog); the domain's
words (channels, metrics, trends, states) are :mod:`marketing.reports.labels`', as in the
HTML reports; dates are the web app's :class:`~marketing.web.i18n.Clock`'s.  Given the
terminal's ``width``, a table that would not fit whole becomes narrow: the overview one card
per community, a metric table one small table per channel.  Numbers are never cut ("7.8…"):
a column is never narrower than its longest number, and words wrap instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from marketing.conventions import DEFAULT_TIMEZONE
from marketing.reports import labels
from marketing.reports.period import Period
from marketing.reports.rows import (
    CHANNELS,
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
from marketing.tables import listing
from marketing.web.i18n import Clock

Report = CommunityReport | ProgrammeOverview | CampaignReport


def _identity(message: str) -> str:
    return message


# Marks a message for the catalog where it is translated later (``_(heading)``).
N_ = _identity


class _Words:
    """The words of one language: headings through ``gettext``, the domain's from labels."""

    def __init__(self, *, en: bool, gettext: Callable[[str], str], clock: Clock) -> None:
        self.en = en
        self._ = gettext
        self.clock = clock

    def channel(self, name: str) -> str:
        return labels.channel_names(en=self.en)[name]

    def metric(self, name: str) -> str:
        if self.en:
            return dict(zip(METRIC_ROWS, METRIC_HEADINGS, strict=True))[name]
        return labels.METRIC_TH[name]

    def trend(self, name: str) -> str:
        return (labels.TREND_EN if self.en else labels.TREND_TH)[name]

    def state(self, name: str) -> str:
        return name.replace("_", " ") if self.en else labels.STATE_TH.get(name, name)

    def period(self, period: Period, previous: Period) -> str:
        def show(p: Period) -> str:
            return self._("{start} to {end}").format(
                start=self.clock.day(p.start), end=self.clock.day(p.end)
            )

        return self._("{period} ({days} days), compared with {previous}").format(
            period=show(period), days=period.days, previous=show(previous)
        )


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


def _floor(cells: Sequence[str]) -> int:
    """The width below which one of ``cells`` would have a number or word cut."""
    return max((Text(word).cell_len for cell in cells for word in cell.split()), default=1)


def _figures(
    words: _Words, heading: str, columns: Sequence[tuple[str, Metrics]], previous: Metrics | None
) -> list[tuple[str, list[str]]]:
    """The columns of a metric table: (heading, cells), the metric names first."""
    names = [words.metric(name) for name in METRIC_ROWS]
    out = [(heading, names)]
    en = words.en
    for title, metrics in columns:
        out.append((title, [labels.metric_text(name, metrics, en=en) for name in METRIC_ROWS]))
    if previous is not None:
        total = columns[-1][1]
        before = [labels.metric_text(name, previous, en=en) for name in METRIC_ROWS]
        change = []
        for name in METRIC_ROWS:
            if name == "engagement_rate":
                change.append(
                    labels.points(rate_points(total, previous), current=total.reach, en=en)
                )
            else:
                now = getattr(total, name)
                change.append(
                    labels.change(relative_change(now, getattr(previous, name)), current=now, en=en)
                )
        out.append((words._("All before"), before))
        out.append((words._("Change"), change))
    return out


def _figure_table(title: str, columns: Sequence[tuple[str, list[str]]]) -> Table:
    table = Table(title=title, title_justify="left")
    for index, (heading, cells) in enumerate(columns):
        table.add_column(
            heading,
            justify="left" if index == 0 else "right",
            min_width=_floor(cells),
            overflow="fold",
        )
    for row in range(len(METRIC_ROWS)):
        key = METRIC_ROWS[row] in ("interactions", "reach", "engagement_rate")
        table.add_row(*(cells[row] for _, cells in columns), style="bold" if key else None)
    return table


def _metric_tables(
    words: _Words,
    title: str,
    columns: Sequence[tuple[str, Metrics]],
    previous: Metrics | None,
    width: int | None,
) -> list[RenderableType]:
    """Metrics down, channels across; the last column is the total, compared with ``previous``
    when given.  When that does not fit ``width``: one table per channel, the total last."""
    figures = _figures(words, words._("Metric"), columns, previous)
    needed = sum(max(_floor(cells), Text(h).cell_len) + 3 for h, cells in figures) + 1
    if width is None or needed <= width:
        return [_figure_table(title, figures)]
    names = figures[0]
    tables: list[RenderableType] = [Text(title, style="bold")]
    channels = len(columns)
    for index in range(1, channels):
        tables.append(_figure_table("", [names, figures[index]]))
    tables.append(_figure_table("", [names, *figures[channels:]]))
    return tables


def _channel_tables(
    words: _Words, title: str, lines: Sequence[ChannelLine], width: int | None
) -> list[RenderableType]:
    return _metric_tables(
        words,
        title,
        [(words.channel(line.channel), line.current) for line in lines],
        lines[-1].previous,
        width,
    )


def _posts_table(
    words: _Words, title: str, posts: Sequence[PostResult], width: int | None
) -> RenderableType:
    _ = words._
    headings = (
        N_("Community"),
        N_("Channel"),
        N_("Post"),
        N_("Published"),
        N_("Reach"),
        N_("Interactions"),
        N_("Rate"),
    )
    rows = [
        (
            post.community_name_th,
            words.channel(post.channel),
            post.label,
            words.clock.when(post.published_at),
            labels.integer(post.reach),
            labels.integer(post.interactions),
            labels.rate(post, en=words.en),
            post.permalink or "",
        )
        for post in posts
    ]
    return listing(
        width or 1000,
        title=title,
        headings=[*(_(h) for h in headings), _("Link")],
        rows=rows,
        keys=(3,),
        numeric=(4, 5, 6),
    )


def _overview(words: _Words, report: ProgrammeOverview, width: int | None) -> RenderableType:
    _ = words._
    sort = labels.SORT_TH.get(report.sort, report.sort) if not words.en else report.sort
    title = _("Communities by {sort}").format(sort=sort)
    if report.reverse:
        title += " " + _("(reversed)")
    headings = (
        N_("Posts"),
        *(words.channel(c.value) for c in CHANNELS),
        N_("Interactions"),
        N_("Reach"),
        N_("Rate"),
        N_("Change"),
        N_("Rate change"),
    )
    shown = []
    for row in report.rows:
        total = row.total
        shown.append(
            (
                row,
                [
                    labels.integer(total.current.posts),
                    *(
                        labels.integer(line.current.interactions)
                        for line in row.channels[: len(CHANNELS)]
                    ),
                    labels.integer(total.current.interactions),
                    labels.integer(total.current.reach),
                    labels.rate(total.current, en=words.en),
                    labels.change(
                        total.change.interactions, current=total.current.interactions, en=words.en
                    ),
                    labels.points(
                        total.change.engagement_rate_points,
                        current=total.current.reach,
                        en=words.en,
                    ),
                ],
            )
        )
    floors = [
        max(_floor([cells[i] for _row, cells in shown]), Text(_(heading)).cell_len)
        for i, heading in enumerate(headings)
    ]
    trend_floor = max(
        _floor([words.trend(row.trend) for row, _cells in shown]), Text(_("Trend")).cell_len
    )
    needed = 3 + 16 + sum(floors) + trend_floor + 3 * (len(headings) + 3)
    if width is None or needed <= width:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column(_("Community"), min_width=16, ratio=1, overflow="fold")
        for heading, floor in zip(headings, floors, strict=True):
            table.add_column(_(heading), justify="right", min_width=floor)
        table.add_column(_("Trend"), min_width=trend_floor)
        for row, cells in shown:
            table.add_row(
                str(row.rank.by_rate),
                row.community.name_th,
                *cells,
                words.trend(row.trend),
                style="yellow" if row.trend in labels.NEEDS_HELP else None,
            )
        return table
    cards: list[RenderableType] = [Text(title, style="bold")]
    for row, cells in shown:
        style = "yellow" if row.trend in labels.NEEDS_HELP else ""
        card = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
        card.add_column(style="dim", no_wrap=True)
        card.add_column(min_width=max(_floor(cells), 1))
        card.add_row("#", Text(f"{row.rank.by_rate}  {row.community.name_th}", style="bold"))
        for heading, cell in zip(headings, cells, strict=True):
            card.add_row(_(heading), cell)
        card.add_row(_("Trend"), Text(words.trend(row.trend), style=style))
        cards.append(Text(""))
        cards.append(card)
    return Group(*cards)


def renderables(
    report: Report,
    *,
    buddhist_era: bool = False,
    zone: ZoneInfo | None = None,
    language: str = "en",
    gettext: Callable[[str], str] = _identity,
    width: int | None = None,
) -> RenderableType:
    """``report`` as rich renderables (print them with a rich ``Console``), in ``language``
    (headings through ``gettext``), fitted to a terminal ``width`` wide (None: no limit)."""
    clock = Clock(
        language=language, buddhist_era=buddhist_era, zone=zone or ZoneInfo(DEFAULT_TIMEZONE)
    )
    words = _Words(en=language == "en", gettext=gettext, clock=clock)
    _ = words._
    parts: list[RenderableType] = []
    if isinstance(report, CommunityReport):
        c = report.community
        parts.append(Text(f"{c.name_th} ({c.name_en}, {c.province})", style="bold"))
        parts.append(Text(words.period(report.period, report.previous_period)))
        parts.append(
            Text(
                _(
                    "Rank in the programme: {rate} of {of} by engagement rate, "
                    "{interactions} by interactions"
                ).format(
                    rate=report.rank.by_rate,
                    of=report.rank.of,
                    interactions=report.rank.by_interactions,
                )
            )
        )
        parts.extend(_channel_tables(words, _("By channel"), report.channels, width))
        if report.best_posts:
            parts.append(_posts_table(words, _("Best posts"), report.best_posts, width))
        else:
            parts.append(Text(_("No published post with results in this period.")))
    elif isinstance(report, ProgrammeOverview):
        parts.append(Text(_("Programme overview"), style="bold"))
        parts.append(Text(words.period(report.period, report.previous_period)))
        parts.append(_overview(words, report, width))
        parts.extend(_channel_tables(words, _("Programme by channel"), report.programme, width))
    else:
        campaign = report.campaign
        status = (
            campaign.status
            if words.en
            else labels.CAMPAIGN_STATUS_TH.get(campaign.status, campaign.status)
        )
        parts.append(Text(f"{campaign.name} ({campaign.slug}), {status}", style="bold"))
        states = Table(title=_("Posts by state"), title_justify="left")
        states.add_column(_("Channel"))
        states.add_column(_("State"))
        states.add_column(_("Posts"), justify="right", no_wrap=True)
        for count in report.states:
            states.add_row(
                words.channel(count.channel), words.state(count.state.value), str(count.posts)
            )
        parts.append(states)
        if report.needs_person:
            headings = (
                N_("Community"),
                N_("Channel"),
                N_("State"),
                N_("Scheduled"),
                N_("Error"),
                N_("What to do"),
            )
            parts.append(
                listing(
                    width or 1000,
                    title=_("Needs a person"),
                    headings=[_(h) for h in headings],
                    rows=[
                        (
                            post.community_name_th,
                            words.channel(post.channel),
                            words.state(post.state.value),
                            clock.when(post.scheduled_at),
                            post.last_error or "",
                            post.action_hint or "",
                        )
                        for post in report.needs_person
                    ],
                    keys=(3,),
                )
            )
        else:
            parts.append(Text(_("No post needs a person.")))
        parts.extend(
            _metric_tables(
                words,
                _("Achieved (posts = published posts)"),
                [(words.channel(line.channel), line.metrics) for line in report.achieved],
                None,
                width,
            )
        )
        if report.best_posts:
            parts.append(_posts_table(words, _("Best posts"), report.best_posts, width))
    parts.append(
        Text(labels.RATE_DEFINITION_EN if words.en else labels.RATE_DEFINITION_TH, style="dim")
    )
    return Group(*parts)
