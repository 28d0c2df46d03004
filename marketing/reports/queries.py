"""The report queries: SQL aggregation over performance records, posts and their metrics.

Everything a report sums is summed by the database (``GROUP BY``, ``CASE`` inside ``SUM`` to
get a period and the one before it in one pass, window functions for ranks and for each
post's newest snapshot); Python only arranges the few aggregated rows that come back.  The
functions here are what the command line and, later, the web app call.

Where the figures come from
    Community and overview reports: ``CommunityPerformance`` (community x channel x local day).
    Posts (best posts, campaign reports): a post's newest ``MetricSnapshot`` for views,
    reactions, comments, shares and clicks; for email posts, ``Delivery`` rows in state
    ``sent`` (emails sent) and ``EmailEvent`` rows, counted as the performance rollup
    (:mod:`marketing.performance`) counts them: opens and clicks are subscribers who opened
    or clicked (one person clicking five times counts once), unsubscribes are events -- so a
    post's figures add up to its community's.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    distinct,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Subquery

from marketing import engagement
from marketing.models import (
    Campaign,
    ChannelKind,
    Community,
    CommunityMonthPerformance,
    CommunityPerformance,
    Delivery,
    DeliveryState,
    DestinationClickDay,
    EmailEvent,
    EmailEventKind,
    MetricSnapshot,
    Post,
    PostState,
    ProgrammeDayPerformance,
)
from marketing.performance import month_end
from marketing.placeholders import readable
from marketing.post_variants import campaign_post_tests
from marketing.queries import campaign_by_slug
from marketing.reports.period import Period
from marketing.reports.rows import (
    ALL,
    CHANNELS,
    NEEDS_PERSON,
    RAW_FIELDS,
    CampaignCommunityLine,
    CampaignRef,
    CampaignReport,
    ChannelLine,
    ChannelName,
    ChannelSum,
    CommunityRef,
    CommunityReport,
    DayPoint,
    Metrics,
    OverviewRow,
    PostResult,
    PostVariantArmLine,
    PostVariantTestLine,
    ProgrammeOverview,
    Rank,
    StateCount,
    VariantArmLine,
    VariantTestLine,
    trend_of,
    trusted,
)
from marketing.variant_tests import campaign_tests

BEST_POSTS = 5
_CHANNEL_ORDER = {c.value: i for i, c in enumerate(CHANNELS)}
_CHANNEL_NAMES: tuple[str, ...] = tuple(c.value for c in CHANNELS)
WAITING: tuple[PostState, ...] = (PostState.SCHEDULED, PostState.QUEUED, PostState.PUBLISHING)


class ReportSubjectNotFound(LookupError):
    """The community or campaign a report was asked for does not exist."""


# -- sort keys of the overview -----------------------------------------------------------------

# name -> (what it sorts by, highest first?)
SORT_KEYS: dict[str, tuple[str, bool]] = {
    "rate": ("engagement rate", True),
    "interactions": ("interactions", True),
    "reach": ("reach (views and emails sent)", True),
    "views": ("views", True),
    "posts": ("posts", True),
    "growth": ("change in interactions against the previous period", True),
    "rate-change": ("change in engagement rate (points)", True),
    "name": ("Thai name", False),
    "slug": ("slug", False),
    "province": ("province", False),
}


def _sort_value(row: OverviewRow, key: str) -> Any:
    total = row.total
    values: dict[str, Any] = {
        "rate": total.current.engagement_rate,
        "interactions": total.current.interactions,
        "reach": total.current.reach,
        "views": total.current.views,
        "posts": total.current.posts,
        "growth": total.change.interactions,
        "rate-change": total.change.engagement_rate_points,
        "name": row.community.name_th,
        "slug": row.community.slug,
        "province": row.community.province,
    }
    return values[key]


def sort_rows(rows: Iterable[OverviewRow], key: str, *, reverse: bool = False) -> list[OverviewRow]:
    """``rows`` in the order of ``key`` (see :data:`SORT_KEYS`); rows without a value
    (growth from nothing) go last either way, ties keep slug order."""
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r}; use one of: {', '.join(SORT_KEYS)}")
    descending = SORT_KEYS[key][1] != reverse
    ordered = sorted(rows, key=lambda r: r.community.slug)
    present = [r for r in ordered if _sort_value(r, key) is not None]
    missing = [r for r in ordered if _sort_value(r, key) is None]
    present.sort(key=lambda r: _sort_value(r, key), reverse=descending)
    return present + missing


# -- expressions over CommunityPerformance ---------------------------------------------------

_CP = CommunityPerformance
_CM = CommunityMonthPerformance
_PD = ProgrammeDayPerformance


def _raw_sums() -> list[ColumnElement[Any]]:
    """``SUM`` of every raw field of the performance records, labelled with its name."""
    return [func.sum(getattr(_CP, name)).label(name) for name in RAW_FIELDS]


def whole_months(period: Period) -> tuple[list[date], list[Period]]:
    """``period`` cut into the calendar months it holds whole and the days left over (at
    most one stretch before the first whole month and one after the last)."""
    first = period.start if period.start.day == 1 else month_end(period.start) + timedelta(1)
    months: list[date] = []
    month = first
    while month_end(month) <= period.end:
        months.append(month)
        month = month_end(month) + timedelta(days=1)
    if not months:
        return [], [period]
    rest = []
    if period.start < months[0]:
        rest.append(Period(start=period.start, end=months[0] - timedelta(days=1)))
    if month_end(months[-1]) < period.end:
        rest.append(Period(start=month_end(months[-1]) + timedelta(days=1), end=period.end))
    return months, rest


def _records(periods: Iterable[Period], community_id: int | None = None) -> Subquery:
    """The performance records of ``periods`` as (community_id, channel, since, raw
    fields...): whole months from :class:`CommunityMonthPerformance` (``since`` = the month's
    first day), the days left over from ``CommunityPerformance`` (``since`` = the day).

    Summing these per community gives the same totals as summing the daily records, from
    about a thirtieth of the rows over a year.  A month is whole only inside one period, so
    ``since >= period.start`` tells which period a row belongs to.
    """
    months: list[date] = []
    days: list[Period] = []
    for period in periods:
        whole, rest = whole_months(period)
        months += whole
        days += rest
    parts: list[Select[Any]] = []
    if months:
        monthly = select(
            _CM.community_id,
            _CM.channel,
            _CM.month.label("since"),
            *(getattr(_CM, name) for name in RAW_FIELDS),
        ).where(_CM.month.in_(months))
        if community_id is not None:
            monthly = monthly.where(_CM.community_id == community_id)
        parts.append(monthly)
    if days:
        daily = select(
            _CP.community_id,
            _CP.channel,
            _CP.day.label("since"),
            *(getattr(_CP, name) for name in RAW_FIELDS),
        ).where(or_(*(_CP.day.between(p.start, p.end) for p in days)))
        if community_id is not None:
            daily = daily.where(_CP.community_id == community_id)
        parts.append(daily)
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery()


def _sums_now_and_before(period: Period, community_id: int | None) -> Select[Any]:
    """Raw sums per community, channel and ``current`` (the period, or the one before).

    Only plain sums: interactions and reach are linear, so they follow per channel from these
    (:meth:`Metrics.of_channel`) without a ``CASE`` on every row.
    """
    records = _records((period.previous(), period), community_id)
    current = (records.c.since >= period.start).label("current")
    return select(
        records.c.community_id,
        records.c.channel,
        current,
        *(func.sum(records.c[name]).label(name) for name in RAW_FIELDS),
    ).group_by(records.c.community_id, records.c.channel, current)


def _now_and_before(
    session: Session, period: Period, community_id: int | None = None
) -> dict[int, dict[str, tuple[Metrics, Metrics]]]:
    """community id -> channel -> (metrics of the period, metrics of the one before)."""
    zero = Metrics()
    found: dict[int, dict[str, tuple[Metrics, Metrics]]] = {}
    for row in session.execute(_sums_now_and_before(period, community_id)).mappings():
        channel = ChannelKind(row["channel"]).value
        metrics = Metrics.of_channel(channel, row)
        per_channel = found.setdefault(row["community_id"], {})
        now, before = per_channel.get(channel, (zero, zero))
        per_channel[channel] = (metrics, before) if row["current"] else (now, metrics)
    return found


def _channel_lines(by_channel: Mapping[str, tuple[Metrics, Metrics]]) -> list[ChannelLine]:
    """Lines for facebook, youtube, email (zeros where absent) and their ``all`` total."""
    zero = (Metrics(), Metrics())
    # Made of Metrics already built: nothing to validate (a line per channel and community).
    lines = [
        trusted(ChannelLine, {"channel": name, "current": now, "previous": before})
        for name in _CHANNEL_NAMES
        for now, before in (by_channel.get(name, zero),)
    ]
    current = Metrics.total(line.current for line in lines)
    previous = Metrics.total(line.previous for line in lines)
    lines.append(trusted(ChannelLine, {"channel": ALL, "current": current, "previous": previous}))
    return lines


def _ranks(session: Session, period: Period, community_id: int | None = None) -> dict[int, Rank]:
    """Every community's rank by engagement rate and by interactions over ``period``
    (communities without records rank with zeros); only ``community_id``'s if given."""
    records = _records((period,))
    r = records.c
    counts = {name: r[name] for name in RAW_FIELDS}
    per_community = (
        select(
            r.community_id,
            func.sum(engagement.interactions_sql(r.channel, counts)).label("interactions"),
            func.sum(engagement.reach_sql(r.channel, counts)).label("reach"),
        )
        .group_by(r.community_id)
        .subquery()
    )
    interactions = func.coalesce(per_community.c.interactions, 0)
    reach = func.coalesce(per_community.c.reach, 0)
    rate = engagement.rate_sql(interactions, reach)
    ranked = (
        select(
            Community.id.label("community_id"),
            func.rank().over(order_by=rate.desc()).label("by_rate"),
            func.rank().over(order_by=interactions.desc()).label("by_interactions"),
            func.count().over().label("of"),
        )
        .select_from(Community)
        .outerjoin(per_community, per_community.c.community_id == Community.id)
        .subquery()
    )
    query = select(ranked)
    if community_id is not None:
        query = query.where(ranked.c.community_id == community_id)
    return {
        row.community_id: Rank(by_rate=row.by_rate, by_interactions=row.by_interactions, of=row.of)
        for row in session.execute(query)
    }


def rank_totals(totals: Mapping[int, Metrics]) -> dict[int, Rank]:
    """Ranks from each community's totals, exactly as :func:`_ranks` computes them in SQL
    (1 + how many do better; ties share a rank).  Integer division is correctly rounded in
    both, so equal rates compare equal in both."""
    # Each rate once: it is computed on every read (#19).
    rate = {community_id: m.engagement_rate for community_id, m in totals.items()}
    count = {community_id: m.interactions for community_id, m in totals.items()}
    rates, interactions = sorted(rate.values()), sorted(count.values())
    of = len(totals)
    return {
        community_id: Rank(
            by_rate=1 + of - bisect_right(rates, rate[community_id]),
            by_interactions=1 + of - bisect_right(interactions, count[community_id]),
            of=of,
        )
        for community_id in totals
    }


def _daily(session: Session, period: Period, community_id: int | None) -> list[DayPoint]:
    """Views, interactions and reach per day and channel, every day of ``period`` included."""
    query: Select[Any]
    if community_id is None:  # the programme's days are summed already
        query = select(_PD.day, _PD.channel, *(getattr(_PD, name) for name in RAW_FIELDS)).where(
            _PD.day.between(period.start, period.end)
        )
    else:
        query = (
            select(_CP.day, _CP.channel, *_raw_sums())
            .where(_CP.day.between(period.start, period.end), _CP.community_id == community_id)
            .group_by(_CP.day, _CP.channel)
        )
    found = {}
    for row in session.execute(query).mappings():
        channel = ChannelKind(row["channel"]).value
        found[(row["day"], channel)] = Metrics.of_channel(channel, row)
    zero = Metrics()
    return [
        trusted(
            DayPoint,
            {
                "day": day,
                "channel": channel.value,
                "views": metrics.views,
                "interactions": metrics.interactions,
                "reach": metrics.reach,
            },
        )
        for day in period.each_day()
        for channel in CHANNELS
        for metrics in (found.get((day, channel.value), zero),)
    ]


def _community_ref(community: Community) -> CommunityRef:
    return CommunityRef(
        slug=community.slug,
        name_th=community.name_th,
        name_en=community.name_en,
        province=community.province,
    )


# -- posts and their newest metrics ----------------------------------------------------------


#: The counts :func:`_post_metrics` gives each post: a channel's, e-mail's, and what follows.
_POST_COUNTS: tuple[str, ...] = (
    *engagement.SNAPSHOT_METRICS,
    "emails_sent",
    "opens",
    "unsubscribes",
    "interactions",
    "reach",
)


def _post_metrics(post_filter: ColumnElement[bool]) -> Subquery:
    """Every post matching ``post_filter`` with its newest metrics and email results."""
    post_ids = select(Post.id).where(post_filter)
    newest = (
        select(
            MetricSnapshot.post_id,
            *(getattr(MetricSnapshot, name) for name in engagement.SNAPSHOT_METRICS),
            func.row_number()
            .over(partition_by=MetricSnapshot.post_id, order_by=MetricSnapshot.collected_at.desc())
            .label("newest"),
        )
        .where(MetricSnapshot.post_id.in_(post_ids))
        .subquery()
    )

    def unique_subscribers(kind: EmailEventKind) -> ColumnElement[int]:
        return func.count(distinct(case((EmailEvent.kind == kind, EmailEvent.subscriber_id))))

    def event_count(kind: EmailEventKind) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((EmailEvent.kind == kind, 1), else_=0)), 0)

    events = (
        select(
            EmailEvent.post_id,
            unique_subscribers(EmailEventKind.OPEN).label("opens"),
            unique_subscribers(EmailEventKind.CLICK).label("clicks"),
            event_count(EmailEventKind.UNSUBSCRIBE).label("unsubscribes"),
        )
        .where(EmailEvent.post_id.in_(post_ids))
        .group_by(EmailEvent.post_id)
        .subquery()
    )
    sent = (
        select(Delivery.post_id, func.count().label("emails_sent"))
        .where(Delivery.post_id.in_(post_ids), Delivery.state == DeliveryState.SENT)
        .group_by(Delivery.post_id)
        .subquery()
    )
    is_email = Post.channel == ChannelKind.EMAIL
    counts: dict[str, ColumnElement[Any]] = {
        name: func.coalesce(newest.c[name], 0) for name in engagement.SNAPSHOT_METRICS
    }
    # An e-mail's clicks are people who clicked (the tracking events), not a channel's count.
    counts["clicks"] = case((is_email, func.coalesce(events.c.clicks, 0)), else_=counts["clicks"])
    counts["emails_sent"] = func.coalesce(sent.c.emails_sent, 0)
    return (
        select(
            Post.id.label("post_id"),
            Campaign.slug.label("campaign_slug"),
            Community.slug.label("community_slug"),
            Community.name_th.label("community_name_th"),
            Post.channel,
            Post.state,
            Post.content,
            Post.scheduled_at,
            Post.published_at,
            Post.permalink,
            Post.last_error,
            Post.action_hint,
            *(counts[name].label(name) for name in (*engagement.SNAPSHOT_METRICS, "emails_sent")),
            func.coalesce(events.c.opens, 0).label("opens"),
            func.coalesce(events.c.unsubscribes, 0).label("unsubscribes"),
            engagement.interactions_sql(Post.channel, counts).label("interactions"),
            engagement.reach_sql(Post.channel, counts).label("reach"),
        )
        .join(Campaign, Campaign.id == Post.campaign_id)
        .join(Community, Community.id == Post.community_id)
        .outerjoin(newest, and_(newest.c.post_id == Post.id, newest.c.newest == 1))
        .outerjoin(events, events.c.post_id == Post.id)
        .outerjoin(sent, sent.c.post_id == Post.id)
        .where(post_filter)
        .subquery()
    )


def post_label(content: Mapping[str, Any] | None, *, limit: int = 90) -> str:
    """A post's title, subject or first line of its message, as a reader sees it (merge
    fields as Thai labels), cut to ``limit`` characters."""
    content = content or {}
    for key in ("title", "subject", "video_title", "message", "description"):
        value = content.get(key)
        if isinstance(value, str) and value.strip():
            line = readable(value).strip().splitlines()[0]
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def _post_results(session: Session, query: Select[Any]) -> list[PostResult]:
    results = []
    for row in session.execute(query).mappings():
        results.append(
            PostResult(
                post_id=row["post_id"],
                campaign_slug=row["campaign_slug"],
                community_slug=row["community_slug"],
                community_name_th=row["community_name_th"],
                channel=ChannelKind(row["channel"]).value,
                state=PostState(row["state"]),
                label=post_label(row["content"]),
                scheduled_at=row["scheduled_at"],
                published_at=row["published_at"],
                permalink=row["permalink"],
                last_error=row["last_error"],
                action_hint=row["action_hint"],
                **{name: int(row[name]) for name in _POST_COUNTS},
            )
        )
    return results


def _best_first(metrics: Subquery) -> Sequence[ColumnElement[Any]]:
    return (
        metrics.c.interactions.desc(),
        metrics.c.reach.desc(),
        metrics.c.published_at.desc(),
        metrics.c.post_id,
    )


# -- the reports -----------------------------------------------------------------------------


def _community_by_slug(session: Session, slug: str) -> Community:
    community = session.scalars(select(Community).where(Community.slug == slug)).one_or_none()
    if community is None:
        raise ReportSubjectNotFound(
            f"no community with slug {slug!r}; `marketing communities list` shows the slugs"
        )
    return community


def all_ranks(session: Session, period: Period) -> dict[int, Rank]:
    """Every community's rank by engagement rate and by interactions over ``period``."""
    return _ranks(session, period)


def community_report(
    *,
    session: Session,
    community_slug: str,
    start: date,
    end: date,
    best_posts: int = BEST_POSTS,
    ranks: Callable[[Period], Mapping[int, Rank]] | None = None,
) -> CommunityReport:
    """One community's report for the local days ``start`` to ``end`` inclusive; ``ranks``
    gives every community's ranks over a period, if the caller keeps them (the web app does,
    between rollups: :func:`marketing.web.report_cache.kept_ranks`)."""
    period = Period(start=start, end=end)
    previous = period.previous()
    community = _community_by_slug(session, community_slug)

    by_channel = _now_and_before(session, period, community.id).get(community.id, {})

    begin, after = period.utc_bounds(ZoneInfo(community.timezone))
    metrics = _post_metrics(
        and_(
            Post.community_id == community.id,
            Post.state == PostState.PUBLISHED,
            Post.published_at >= begin,
            Post.published_at < after,
        )
    )
    best = _post_results(
        session,
        select(metrics)
        .where(metrics.c.interactions + metrics.c.reach > 0)
        .order_by(*_best_first(metrics))
        .limit(best_posts),
    )
    return CommunityReport(
        community=_community_ref(community),
        period=period,
        previous_period=previous,
        channels=_channel_lines(by_channel),
        rank=(ranks(period) if ranks else _ranks(session, period, community.id))[community.id],
        trend=_daily(session, period, community.id),
        best_posts=best,
        destination_clicks=_destination_clicks(session, period, community.id),
    )


def _destination_clicks(session: Session, period: Period, community_id: int) -> dict[str, int]:
    """Channel -> people's clicks to the community's pages over the period's local days."""
    rows = session.execute(
        select(DestinationClickDay.channel, func.sum(DestinationClickDay.clicks))
        .where(
            DestinationClickDay.community_id == community_id,
            DestinationClickDay.day >= period.start,
            DestinationClickDay.day <= period.end,
        )
        .group_by(DestinationClickDay.channel)
        .order_by(DestinationClickDay.channel)
    )
    return {channel: int(total or 0) for channel, total in rows}


def programme_overview(
    *, session: Session, start: date, end: date, sort: str = "rate", reverse: bool = False
) -> ProgrammeOverview:
    """Every community side by side for the local days ``start`` to ``end`` inclusive."""
    period = Period(start=start, end=end)
    previous = period.previous()
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}; use one of: {', '.join(SORT_KEYS)}")

    by_community = _now_and_before(session, period)
    communities = [
        (
            row.id,
            CommunityRef(
                slug=row.slug, name_th=row.name_th, name_en=row.name_en, province=row.province
            ),
        )
        for row in session.execute(
            select(
                Community.id,
                Community.slug,
                Community.name_th,
                Community.name_en,
                Community.province,
            )
        )
    ]
    lines_of = {cid: _channel_lines(by_community.get(cid, {})) for cid, _ in communities}
    # The sums are at hand: rank them here rather than scan the period again in SQL.
    ranks = rank_totals({cid: lines[-1].current for cid, lines in lines_of.items()})
    rows = [
        OverviewRow(
            community=ref,
            channels=lines_of[cid],
            rank=ranks[cid],
            trend=trend_of(lines_of[cid][-1].current, lines_of[cid][-1].previous),
        )
        for cid, ref in communities
    ]
    programme = {
        channel.value: (
            Metrics.total(row.channels[i].current for row in rows),
            Metrics.total(row.channels[i].previous for row in rows),
        )
        for i, channel in enumerate(CHANNELS)
    }
    return ProgrammeOverview(
        period=period,
        previous_period=previous,
        sort=sort,
        reverse=reverse,
        rows=sort_rows(rows, sort, reverse=reverse),
        programme=_channel_lines(programme),
        trend=_daily(session, period, None),
    )


def campaign_report(
    *, session: Session, campaign_slug: str, best_posts: int = BEST_POSTS
) -> CampaignReport:
    """A campaign's posts: where they went, which need a person, and what they achieved."""
    campaign = campaign_by_slug(session=session, slug=campaign_slug)
    if campaign is None:
        raise ReportSubjectNotFound(
            f"no campaign with slug {campaign_slug!r}; apply its file first "
            "(`marketing campaign apply FILE`) or check the slug"
        )
    states = [
        StateCount(
            channel=ChannelKind(row.channel).value, state=PostState(row.state), posts=row.posts
        )
        for row in session.execute(
            select(Post.channel, Post.state, func.count().label("posts"))
            .where(Post.campaign_id == campaign.id)
            .group_by(Post.channel, Post.state)
            .order_by(Post.channel, Post.state)
        )
    ]
    metrics = _post_metrics(Post.campaign_id == campaign.id)
    published = metrics.c.state == PostState.PUBLISHED

    def count_where(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    sum_columns = [
        count_where(published).label("posts"),
        *(func.coalesce(func.sum(metrics.c[name]), 0).label(name) for name in _POST_COUNTS),
    ]

    def as_metrics(row: RowMapping) -> Metrics:
        return Metrics(**{name: int(row[name]) for name in Metrics.model_fields})

    by_channel = {
        ChannelKind(row["channel"]).value: as_metrics(row)
        for row in session.execute(
            select(metrics.c.channel, *sum_columns).group_by(metrics.c.channel)
        ).mappings()
    }
    achieved = [
        ChannelSum(channel=c.value, metrics=by_channel.get(c.value, Metrics())) for c in CHANNELS
    ]
    total = Metrics()
    for line in achieved:
        total += line.metrics
    achieved.append(ChannelSum(channel=ALL, metrics=total))

    communities = {
        c.slug: c
        for c in session.scalars(
            select(Community).where(
                Community.id.in_(select(Post.community_id).where(Post.campaign_id == campaign.id))
            )
        )
    }
    lines = []
    for row in session.execute(
        select(
            metrics.c.community_slug,
            metrics.c.channel,
            *sum_columns,
            count_where(metrics.c.state.in_(NEEDS_PERSON)).label("needs_person"),
            count_where(metrics.c.state.in_(WAITING)).label("waiting"),
            count_where(metrics.c.state == PostState.CANCELLED).label("cancelled"),
        )
        .group_by(metrics.c.community_slug, metrics.c.channel)
        .order_by(metrics.c.community_slug, metrics.c.channel)
    ).mappings():
        channel: ChannelName = ChannelKind(row["channel"]).value
        lines.append(
            CampaignCommunityLine(
                community=_community_ref(communities[row["community_slug"]]),
                channel=channel,
                published=int(row["posts"]),
                needs_person=int(row["needs_person"]),
                waiting=int(row["waiting"]),
                cancelled=int(row["cancelled"]),
                metrics=as_metrics(row),
            )
        )
    return CampaignReport(
        campaign=CampaignRef(
            slug=campaign.slug,
            name=campaign.name,
            status=str(campaign.status),
            window_start=campaign.window_start,
            window_end=campaign.window_end,
        ),
        states=states,
        achieved=achieved,
        communities=sorted(
            lines, key=lambda line: (line.community.slug, _CHANNEL_ORDER[line.channel])
        ),
        needs_person=_post_results(
            session,
            select(metrics)
            .where(metrics.c.state.in_(NEEDS_PERSON))
            .order_by(metrics.c.scheduled_at, metrics.c.post_id),
        ),
        best_posts=_post_results(
            session,
            select(metrics)
            .where(published, metrics.c.interactions + metrics.c.reach > 0)
            .order_by(*_best_first(metrics))
            .limit(best_posts),
        ),
        posts=_post_results(
            session, select(metrics).order_by(metrics.c.scheduled_at, metrics.c.post_id)
        ),
        variant_tests=_variant_tests(session, campaign.id, communities),
        post_variant_tests=_post_variant_tests(session, campaign.id),
    )


def _post_variant_tests(session: Session, campaign_id: int) -> list[PostVariantTestLine]:
    return [
        PostVariantTestLine(
            channel=test.channel,
            communities=list(test.communities),
            outcome=test.outcome,
            winner=test.winner,
            chosen=test.chosen,
            needed=test.needed,
            rest_posts=test.rest_posts,
            arms=[
                PostVariantArmLine(
                    key=arm.key,
                    message=arm.message,
                    photo=arm.photo,
                    posts=arm.posts,
                    views=arm.trials,
                    interactions=arm.successes,
                    rate=arm.rate,
                    low=arm.low,
                    high=arm.high,
                    probability_best=arm.probability_best,
                )
                for arm in test.arms
            ],
        )
        for test in campaign_post_tests(session=session, campaign_id=campaign_id)
    ]


def _variant_tests(
    session: Session, campaign_id: int, communities: dict[str, Community]
) -> list[VariantTestLine]:
    return [
        VariantTestLine(
            community=_community_ref(communities[test.community_slug]),
            occurrence=test.occurrence,
            outcome=test.outcome,
            winner=test.winner,
            chosen=test.chosen,
            needed=test.needed,
            arms=[
                VariantArmLine(
                    key=arm.key,
                    subject=arm.subject,
                    sent=arm.trials,
                    clicked=arm.successes,
                    rate=arm.rate,
                    low=arm.low,
                    high=arm.high,
                    probability_best=arm.probability_best,
                )
                for arm in test.arms
            ],
        )
        for test in campaign_tests(session=session, campaign_id=campaign_id)
        if test.community_slug in communities
    ]
