"""From channel metrics and email events to community performance records.

* :func:`store_snapshots` keeps what a channel reported (cumulative values and the raw
  answer) with the change since the post's previous snapshot.  A snapshot is identified by
  (post, collected_at): storing the same batch again inserts nothing.
* :func:`rollup` recomputes ``CommunityPerformance`` rows for the (community, channel, day)
  keys it is given, from scratch, with SQL aggregation -- so running it twice, or after a
  replay, gives the same rows.  Days are local to the community's time zone.

What a row counts (engagement rate is defined once, in :mod:`marketing.engagement`):

- ``posts``: posts published that day; ``views``/``reactions``/``comments``/``shares``/
  ``clicks``: growth reported by Facebook and YouTube that day;
- email: ``emails_sent`` (deliveries sent that day), ``opens`` and ``clicks`` counted by
  people (subscribers whose first open, or first click, of a message fell on that day; opens are
  a lower bound, images may be blocked) and ``unsubscribes``, from the tracking endpoints.  The
  raw events stay in ``EmailEvent``.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Engine,
    Select,
    and_,
    bindparam,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.elements import BindParameter

from channels.base import Capability, Metrics
from marketing.conventions import DEFAULT_TIMEZONE
from marketing.db import session_scope, utcnow, write_session
from marketing.engagement import SNAPSHOT_METRICS, engagement_rate
from marketing.models import (
    PERFORMANCE_SUMS,
    ChannelKind,
    Community,
    CommunityMonthPerformance,
    CommunityPerformance,
    Delivery,
    DeliveryState,
    EmailEvent,
    EmailEventKind,
    EmailEventTally,
    MetricSnapshot,
    Post,
    PostState,
    ProgrammeDayPerformance,
    ReportGeneration,
    Subscriber,
    channels_that,
)

Key = tuple[int, ChannelKind, date]
A = TypeVar("A", bound=Hashable)  # what identifies an account in store_collection
_METRICS = SNAPSHOT_METRICS


def local_day(moment: datetime, zone: str) -> date:
    """The calendar day of ``moment`` in ``zone``."""
    return moment.astimezone(ZoneInfo(zone)).date()


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants at which local ``day`` in ``zone`` starts and ends."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start, end


def _insert(session: Session, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


@dataclass(frozen=True)
class _PostInfo:
    community_id: int
    channel: ChannelKind
    zone: str


def _post_info(session: Session, post_ids: Iterable[int]) -> dict[int, _PostInfo]:
    rows = session.execute(
        select(Post.id, Post.community_id, Post.channel, Community.timezone)
        .join(Community, Community.id == Post.community_id)
        .where(Post.id.in_(set(post_ids)))
    ).all()
    return {r.id: _PostInfo(r.community_id, r.channel, r.timezone) for r in rows}


@functools.cache
def _posts_with_newest_snapshot(dialect: str) -> Select[Any]:
    """Each post of the ``ids`` parameter with its community, channel and zone, and the
    values of its newest snapshot (NULLs if it has none); made once per dialect.

    The newest snapshot is found through the (post_id, collected_at) index, one probe per
    post, whatever the table's size: on PostgreSQL a LATERAL ``ORDER BY ... LIMIT 1`` (the
    planner, whose statistics lag behind a fast-growing table, otherwise scans the table
    once per batch), on SQLite by ranking the posts' own snapshots.
    """
    columns = (MetricSnapshot.collected_at, *(getattr(MetricSnapshot, m) for m in _METRICS))
    newest: FromClause
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    if dialect == "postgresql":
        newest = (
            select(*columns)
            .where(MetricSnapshot.post_id == Post.id)
            .order_by(MetricSnapshot.collected_at.desc())
            .limit(1)
            .lateral()
        )
        joined: ColumnElement[bool] = true()
    else:
        newest = (
            select(
                MetricSnapshot.post_id,
                *columns,
                func.row_number()
                .over(
                    partition_by=MetricSnapshot.post_id,
                    order_by=MetricSnapshot.collected_at.desc(),
                )
                .label("newest"),
            )
            .where(MetricSnapshot.post_id.in_(ids))
            .subquery()
        )
        joined = and_(newest.c.post_id == Post.id, newest.c.newest == 1)
    return (
        select(
            Post.id,
            Post.community_id,
            Post.channel,
            Community.timezone,
            newest.c.collected_at,
            *(newest.c[m] for m in _METRICS),
        )
        .join(Community, Community.id == Post.community_id)
        .outerjoin(newest, joined)
        .where(Post.id.in_(ids))
    )


def store_snapshots(*, session: Session, items: Sequence[tuple[int, Metrics]]) -> set[Key]:
    """Store metrics as snapshots (skipping ones already stored); return the keys to roll up.

    Snapshots of a post are expected in time order; one older than the newest already
    stored is kept with zero change, so it can never be counted twice.
    """
    if not items:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        return _store_snapshots_in_sql(session, items)
    ids = {post_id for post_id, _ in items}
    # One query for each post's community, channel and zone, and its newest stored snapshot
    # (only the columns needed, not the raw JSON): this runs for every collected batch.
    info: dict[int, _PostInfo] = {}
    # The newest stored snapshot of each post: (collected_at, cumulative values).
    latest: dict[int, tuple[datetime, dict[str, int | None]]] = {}
    statement = _posts_with_newest_snapshot(session.get_bind().dialect.name)
    for found in session.execute(statement, {"ids": list(ids)}):
        info[found.id] = _PostInfo(found.community_id, found.channel, found.timezone)
        if found.collected_at is not None:
            latest[found.id] = (found.collected_at, {m: getattr(found, m) for m in _METRICS})
    rows: list[dict[str, Any]] = []
    keys: set[Key] = set()
    for post_id, metrics in sorted(items, key=lambda item: (item[0], item[1].collected_at)):
        post = info.get(post_id)
        if post is None:
            continue
        previous = latest.get(post_id)
        in_order = previous is None or metrics.collected_at > previous[0]
        values: dict[str, int | None] = {m: getattr(metrics, m) for m in _METRICS}
        row: dict[str, Any] = {
            "post_id": post_id,
            "collected_at": metrics.collected_at,
            "day": local_day(metrics.collected_at, post.zone),
            "raw": dict(metrics.raw),
            **values,
        }
        for name, value in values.items():
            before = (previous[1][name] if previous is not None else 0) or 0
            row[f"d_{name}"] = value - before if in_order and value is not None else 0
        if in_order:
            latest[post_id] = (metrics.collected_at, values)
        rows.append(row)
        keys.add((post.community_id, post.channel, row["day"]))
    if not rows:
        return keys
    stmt = _insert(session, MetricSnapshot).on_conflict_do_nothing(
        index_elements=["post_id", "collected_at"]
    )
    session.execute(stmt, rows)
    return keys


_ARRIVING_COLUMNS = ("post_id", "collected_at", *_METRICS, "raw")


def _prior(name: str) -> str:
    """SQL for the value ``name`` of the snapshot before an arriving one: the one just before
    it in the same batch if that one is newer than the newest stored, else the newest stored."""
    return (
        "CASE WHEN b_at IS NOT NULL AND (s_at IS NULL OR b_at > s_at) "
        f"THEN b_{name} ELSE s_{name} END"
    )


_IN_ORDER = (
    "(CASE WHEN b_at IS NOT NULL AND (s_at IS NULL OR b_at > s_at) THEN b_at ELSE s_at END) "
    "IS NULL OR collected_at > "
    "(CASE WHEN b_at IS NOT NULL AND (s_at IS NULL OR b_at > s_at) THEN b_at ELSE s_at END)"
)

# The arriving snapshots (the temporary table, emptied as it is read) with their post's
# community, channel and local day (one primary-key probe each), the snapshot before each in
# the same batch (b_*) and the newest stored one (s_*, one index probe per snapshot through a
# LATERAL ... LIMIT 1); their
# changes computed as store_snapshots computes them in Python on SQLite; inserted with ON
# CONFLICT DO NOTHING; answered with the keys to roll up.
_STORE_ARRIVING = f"""
WITH arriving AS (
    DELETE FROM metric_snapshot_arriving RETURNING seq, {", ".join(_ARRIVING_COLUMNS)}
), firsts AS (
    -- The same moment twice: the first to arrive counts, as store_snapshots sorts stably.
    SELECT DISTINCT ON (post_id, collected_at) {", ".join(_ARRIVING_COLUMNS)}
    FROM arriving ORDER BY post_id, collected_at, seq
), placed AS (
    SELECT a.*, p.community_id, p.channel,
           (a.collected_at AT TIME ZONE p.timezone)::date AS day,
           lag(a.collected_at) OVER w AS b_at,
           {", ".join(f"lag(a.{m}) OVER w AS b_{m}" for m in _METRICS)}
    FROM firsts AS a
    -- LATERAL: one primary-key probe per snapshot (a hash join would read every post).
    JOIN LATERAL (
        SELECT post.community_id, post.channel, community.timezone
        FROM post JOIN community ON community.id = post.community_id
        WHERE post.id = a.post_id
        LIMIT 1  -- keeps the planner from flattening it into a join
    ) AS p ON true
    WINDOW w AS (PARTITION BY a.post_id ORDER BY a.collected_at)
), compared AS (
    SELECT placed.*, s.collected_at AS s_at, {", ".join(f"s.{m} AS s_{m}" for m in _METRICS)}
    FROM placed
    LEFT JOIN LATERAL (
        SELECT m.collected_at, {", ".join(f"m.{m}" for m in _METRICS)}
        FROM metric_snapshot AS m WHERE m.post_id = placed.post_id
        ORDER BY m.collected_at DESC LIMIT 1
    ) AS s ON true
), stored AS (
    INSERT INTO metric_snapshot ({", ".join(_ARRIVING_COLUMNS)}, day,
                                 {", ".join(f"d_{m}" for m in _METRICS)})
    SELECT {", ".join(_ARRIVING_COLUMNS)}, day,
           {
    ", ".join(
        f"CASE WHEN ({_IN_ORDER}) AND {m} IS NOT NULL "
        f"THEN {m} - COALESCE({_prior(m)}, 0) ELSE 0 END"
        for m in _METRICS
    )
}
    FROM compared ORDER BY post_id, collected_at
    ON CONFLICT (post_id, collected_at) DO NOTHING
)
SELECT DISTINCT community_id, channel, day FROM placed
"""


def _store_snapshots_in_sql(session: Session, items: Sequence[tuple[int, Metrics]]) -> set[Key]:
    """:func:`store_snapshots` on PostgreSQL: the snapshots go through ``COPY`` into a
    temporary table as they arrive (post, time, values, raw JSON), and one statement
    computes each one's day and changes, inserts them (``ON CONFLICT DO NOTHING``, the same
    idempotency) and answers the keys to roll up -- no Python per row but the ``COPY``."""
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        # One per connection, emptied at every commit; same column types as the table.
        # Asked for every time (not remembered per connection): made inside a transaction
        # or savepoint that is then rolled back, it is gone again.
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS metric_snapshot_arriving ON COMMIT "
            f"DELETE ROWS AS SELECT 0 AS seq, {', '.join(_ARRIVING_COLUMNS)} "
            "FROM metric_snapshot "
            "WITH NO DATA"
        )
        columns = ", ".join(_ARRIVING_COLUMNS)
        with cursor.copy(f"COPY metric_snapshot_arriving (seq, {columns}) FROM STDIN") as copy:
            write, dumps = copy.write_row, json.dumps
            for seq, (post_id, m) in enumerate(items):
                write(
                    (
                        seq,
                        post_id,
                        m.collected_at,
                        m.views,
                        m.reactions,
                        m.comments,
                        m.shares,
                        m.clicks,
                        dumps(m.raw),
                    )
                )
        cursor.execute(_STORE_ARRIVING)
        return {(c, ChannelKind(k), d) for c, k, d in cursor.fetchall()}


def store_collection(
    *, session: Session, batches: Mapping[A, Sequence[tuple[int, Metrics]]]
) -> tuple[set[Key], dict[A, Exception]]:
    """Store a whole collection -- the snapshots of several accounts, ``batches`` by
    account -- in the session's transaction; return the keys to roll up and the accounts
    whose snapshots could not be stored, with why.  The caller commits.

    First every account at once, in a savepoint: one :func:`store_snapshots` (on PostgreSQL
    one ``COPY`` and one statement for the whole collection, where storing each account in
    a transaction of its own took a ``COPY``, a statement and a commit per account).  If that
    fails, its savepoint is rolled back and each account is stored in a savepoint of its
    own: an account whose snapshots cannot be stored loses only its own (rolled back to its
    savepoint, reported in the answer) and the others' are kept, each once.
    """
    everything = [item for items in batches.values() for item in items]
    try:
        with session.begin_nested():
            return store_snapshots(session=session, items=everything), {}
    except Exception:
        pass  # which account it was is found below, one savepoint each
    keys: set[Key] = set()
    failed: dict[A, Exception] = {}
    for account, items in batches.items():
        try:
            with session.begin_nested():
                keys |= store_snapshots(session=session, items=items)
        except Exception as error:  # that account's problem only: reported, not raised
            failed[account] = error
    return keys, failed


def record_email_event(
    *,
    session: Session,
    post_id: int,
    subscriber_id: int,
    kind: EmailEventKind,
    url: str | None = None,
    occurred_at: datetime | None = None,
) -> set[Key]:
    """Record an open, click or unsubscribe from the tracking endpoints; return the keys to
    roll up.  An unsubscribe also withdraws the subscriber's consent, at once."""
    occurred_at = occurred_at or utcnow()
    info = _post_info(session, [post_id]).get(post_id)
    if info is None:
        return set()
    day = local_day(occurred_at, info.zone)
    session.add(
        EmailEvent(
            post_id=post_id,
            subscriber_id=subscriber_id,
            kind=kind,
            url=url,
            occurred_at=occurred_at,
            day=day,
        )
    )
    if kind == EmailEventKind.UNSUBSCRIBE:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber_id, Subscriber.unsubscribed_at.is_(None))
            .values(unsubscribed_at=occurred_at)
        )
    session.flush()
    return {(info.community_id, info.channel, day)}


def keys_for_post(*, session: Session, post_id: int) -> set[Key]:
    """The key a post's publication counts in (its community, channel and local day)."""
    row = session.execute(
        select(Post.community_id, Post.channel, Post.published_at, Community.timezone)
        .join(Community, Community.id == Post.community_id)
        .where(Post.id == post_id)
    ).one_or_none()
    if row is None or row.published_at is None:
        return set()
    return {(row.community_id, row.channel, local_day(row.published_at, row.timezone))}


def recent_keys(*, session: Session, since: datetime) -> set[Key]:
    """Keys of posts published (or email posts still sending) since ``since``: what a
    periodic rollup refreshes so post and email counts appear without waiting for metrics."""
    rows = session.execute(
        select(Post.community_id, Post.channel, Post.published_at, Community.timezone)
        .join(Community, Community.id == Post.community_id)
        .where(Post.published_at >= since)
    ).all()
    keys = {(r.community_id, r.channel, local_day(r.published_at, r.timezone)) for r in rows}
    sending = session.execute(
        select(Post.community_id, Community.timezone)
        .join(Community, Community.id == Post.community_id)
        .where(Post.channel == ChannelKind.EMAIL, Post.state == PostState.PUBLISHING)
    ).all()
    today = utcnow()
    keys |= {(r.community_id, ChannelKind.EMAIL, local_day(today, r.timezone)) for r in sending}
    return keys


def rollup(*, session: Session, keys: Iterable[Key]) -> int:
    """Recompute the performance rows for ``keys`` from the source records; return how many.

    Idempotent: the rows are computed, not incremented.
    """
    keys = set(keys)
    if not keys:
        return 0
    community_ids = {k[0] for k in keys}
    days = {k[2] for k in keys}
    zones = dict(
        session.execute(
            select(Community.id, Community.timezone).where(Community.id.in_(community_ids))
        ).all()
    )
    totals: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    # Facebook and YouTube growth, summed from the snapshots' precomputed changes.
    for row in session.execute(
        select(
            Post.community_id,
            Post.channel,
            MetricSnapshot.day,
            *(
                func.coalesce(func.sum(getattr(MetricSnapshot, f"d_{m}")), 0).label(m)
                for m in _METRICS
            ),
        )
        .select_from(MetricSnapshot)
        .join(Post, Post.id == MetricSnapshot.post_id)
        .where(Post.community_id.in_(community_ids), MetricSnapshot.day.in_(days))
        .group_by(Post.community_id, Post.channel, MetricSnapshot.day)
    ):
        key = (row.community_id, row.channel, row.day)
        if key in keys:
            for m in _METRICS:
                totals[key][m] += int(getattr(row, m))

    # Email events, counted by people: a subscriber who opens (or clicks) a message five times
    # counts once, on the day of their first open (click) -- so an email's rates stay within
    # 100 %.  Unsubscribes are one per person anyway and count as events.
    for kind, name in ((EmailEventKind.OPEN, "opens"), (EmailEventKind.CLICK, "clicks")):
        first_events = (
            select(
                EmailEvent.post_id,
                EmailEvent.subscriber_id,
                func.min(EmailEvent.day).label("day"),
            )
            .where(EmailEvent.kind == kind)
            .group_by(EmailEvent.post_id, EmailEvent.subscriber_id)
            .subquery()
        )
        for row in session.execute(
            select(Post.community_id, Post.channel, first_events.c.day, func.count().label("n"))
            .select_from(first_events)
            .join(Post, Post.id == first_events.c.post_id)
            .where(Post.community_id.in_(community_ids), first_events.c.day.in_(days))
            .group_by(Post.community_id, Post.channel, first_events.c.day)
        ):
            key = (row.community_id, row.channel, row.day)
            if key in keys:
                totals[key][name] += int(row.n)
    for row in session.execute(
        select(
            Post.community_id,
            Post.channel,
            EmailEvent.day,
            func.count().label("n"),
        )
        .select_from(EmailEvent)
        .join(Post, Post.id == EmailEvent.post_id)
        .where(
            Post.community_id.in_(community_ids),
            EmailEvent.day.in_(days),
            EmailEvent.kind == EmailEventKind.UNSUBSCRIBE,
        )
        .group_by(Post.community_id, Post.channel, EmailEvent.day)
    ):
        key = (row.community_id, row.channel, row.day)
        if key in keys:
            totals[key]["unsubscribes"] += int(row.n)

    # Events purged after the retention time left their counts behind (marketing.privacy).
    for tally in session.scalars(
        select(EmailEventTally).where(
            EmailEventTally.community_id.in_(community_ids), EmailEventTally.day.in_(days)
        )
    ):
        key = (tally.community_id, tally.channel, tally.day)
        if key in keys:
            totals[key]["opens"] += tally.opens
            totals[key]["clicks"] += tally.clicks
            totals[key]["unsubscribes"] += tally.unsubscribes

    # Posts published and emails sent count by local day: query per (zone, day) range.
    by_zone_day: dict[tuple[str, date], set[int]] = defaultdict(set)
    for community_id, _channel, day in keys:
        by_zone_day[(zones.get(community_id, DEFAULT_TIMEZONE), day)].add(community_id)
    for (zone, day), ids in by_zone_day.items():
        start, end = day_bounds(day, zone)
        for row in session.execute(
            select(Post.community_id, Post.channel, func.count().label("n"))
            .where(
                Post.community_id.in_(ids),
                Post.state == PostState.PUBLISHED,
                Post.published_at >= start,
                Post.published_at < end,
            )
            .group_by(Post.community_id, Post.channel)
        ):
            key = (row.community_id, row.channel, day)
            if key in keys:
                totals[key]["posts"] += int(row.n)
        for row in session.execute(
            select(Post.community_id, func.count().label("n"))
            .select_from(Delivery)
            .join(Post, Post.id == Delivery.post_id)
            .where(
                Post.community_id.in_(ids),
                Delivery.state == DeliveryState.SENT,
                Delivery.sent_at >= start,
                Delivery.sent_at < end,
            )
            .group_by(Post.community_id)
        ):
            key = (row.community_id, ChannelKind.EMAIL, day)
            if key in keys:
                totals[key]["emails_sent"] += int(row.n)

    now = utcnow()
    rows = []
    for key in keys:
        values = {
            name: totals[key][name]
            for name in (*_METRICS, "posts", "opens", "unsubscribes", "emails_sent")
        }
        rows.append(
            {
                "community_id": key[0],
                "channel": key[1],
                "day": key[2],
                **values,
                "engagement_rate": engagement_rate(key[1], values),
                "updated_at": now,
            }
        )
    stmt = _insert(session, CommunityPerformance)
    stmt = stmt.on_conflict_do_update(
        index_elements=["community_id", "channel", "day"],
        set_={c: stmt.excluded[c] for c in rows[0] if c not in ("community_id", "channel", "day")},
    )
    session.execute(stmt, rows)
    summarise(session=session, keys=keys)
    return len(rows)


def month_of(day: date) -> date:
    """The first day of ``day``'s month: the key of :class:`CommunityMonthPerformance`."""
    return day.replace(day=1)


def month_end(month: date) -> date:
    """The last day of the month that starts on ``month``."""
    return (month + timedelta(days=31)).replace(day=1) - timedelta(days=1)


def summarise(*, session: Session, keys: Iterable[Key]) -> None:
    """Recompute the summaries the performance rows ``keys`` belong to: their communities'
    months (:class:`CommunityMonthPerformance`) and the programme's days
    (:class:`ProgrammeDayPerformance`), from ``CommunityPerformance``, in the caller's
    transaction.

    Computed, not incremented, like the rows themselves: running it twice changes nothing.
    """
    months: dict[date, set[int]] = defaultdict(set)
    days: set[date] = set()
    for community_id, _channel, day in keys:
        months[month_of(day)].add(community_id)
        days.add(day)
    sums = [func.sum(getattr(CommunityPerformance, name)) for name in PERFORMANCE_SUMS]
    for month, community_ids in months.items():
        rows = (
            select(
                CommunityPerformance.community_id,
                CommunityPerformance.channel,
                literal(month, Date()),
                *sums,
            )
            .where(
                CommunityPerformance.community_id.in_(community_ids),
                CommunityPerformance.day.between(month, month_end(month)),
            )
            .group_by(CommunityPerformance.community_id, CommunityPerformance.channel)
        )
        _upsert_from(
            session,
            CommunityMonthPerformance,
            ("community_id", "channel", "month"),
            rows,
        )
    if days:
        rows = (
            select(CommunityPerformance.day, CommunityPerformance.channel, *sums)
            .where(CommunityPerformance.day.in_(days))
            .group_by(CommunityPerformance.day, CommunityPerformance.channel)
        )
        _upsert_from(session, ProgrammeDayPerformance, ("day", "channel"), rows)
    summaries_changed(session=session)


def summaries_changed(*, session: Session) -> None:
    """Raise the summaries' change counter (:class:`ReportGeneration`) in the caller's
    transaction: every web process's cached overview built before this commit is then stale
    (#19).  Last in :func:`summarise`, so the row is locked only until the commit."""
    stmt = _insert(session, ReportGeneration).values(id=1, generation=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"], set_={"generation": ReportGeneration.generation + 1}
    )
    session.execute(stmt)


def report_generation(*, session: Session) -> int:
    """The summaries' change counter: it differs after every rollup that committed."""
    return session.scalar(select(ReportGeneration.generation).where(ReportGeneration.id == 1)) or 0


def summarise_all(*, session: Session) -> None:
    """Recompute every summary from ``CommunityPerformance`` (after loading records some other
    way than :func:`rollup`)."""
    cp = CommunityPerformance
    keys = session.execute(select(cp.community_id, cp.channel, cp.day)).all()
    summarise(session=session, keys=[(k[0], k[1], k[2]) for k in keys])


def _upsert_from(
    session: Session, model: type[Any], key: tuple[str, ...], rows: Select[Any]
) -> None:
    """``INSERT INTO model (key..., sums...) rows ON CONFLICT (key) DO UPDATE`` the sums."""
    columns = [*key, *PERFORMANCE_SUMS]
    stmt = _insert(session, model).from_select(columns, rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={name: stmt.excluded[name] for name in PERFORMANCE_SUMS},
    )
    session.execute(stmt)


def all_keys(*, session: Session) -> set[Key]:
    """Every key that has source records (to rebuild the whole table)."""
    keys: set[Key] = set()
    for row in session.execute(
        select(Post.community_id, Post.channel, MetricSnapshot.day)
        .select_from(MetricSnapshot)
        .join(Post, Post.id == MetricSnapshot.post_id)
        .distinct()
    ):
        keys.add((row.community_id, row.channel, row.day))
    for row in session.execute(
        select(Post.community_id, Post.channel, EmailEvent.day)
        .select_from(EmailEvent)
        .join(Post, Post.id == EmailEvent.post_id)
        .distinct()
    ):
        keys.add((row.community_id, row.channel, row.day))
    for row in session.execute(
        select(EmailEventTally.community_id, EmailEventTally.channel, EmailEventTally.day)
    ):
        keys.add((row.community_id, row.channel, row.day))
    published = session.execute(
        select(Post.id).where(Post.state == PostState.PUBLISHED, Post.published_at.is_not(None))
    ).scalars()
    for post_id in published:
        keys |= keys_for_post(session=session, post_id=post_id)
    return keys


def rebuild(*, engine: Engine | None = None) -> int:
    """Recompute every performance row from the source records; return how many."""
    with session_scope(engine) as session:
        return rollup(session=session, keys=all_keys(session=session))


# --- collection schedule --------------------------------------------------------------------


@dataclass(frozen=True)
class DueMetrics:
    """Published posts of one account whose metrics are due."""

    account_id: int
    channel: ChannelKind
    posts: dict[str, int]  # external id -> post id


def due_for_metrics(
    *, engine: Engine, now: datetime | None = None, limit: int = 5000, force: bool = False
) -> list[DueMetrics]:
    """Published posts of the channels that report METRICS whose next collection time has
    come (``force``: every published post that still has one), grouped by account."""
    now = now or utcnow()
    with write_session(engine) as session:
        query = select(Post.id, Post.external_id, Post.channel_account_id, Post.channel).where(
            Post.state == PostState.PUBLISHED,
            Post.channel.in_(channels_that(Capability.METRICS)),
            Post.external_id.is_not(None),
            Post.metrics_due_at.is_not(None),
        )
        if not force:
            query = query.where(Post.metrics_due_at <= now)
        rows = session.execute(query.order_by(Post.metrics_due_at).limit(limit)).all()
    grouped: dict[int, DueMetrics] = {}
    for row in rows:
        due = grouped.setdefault(
            row.channel_account_id, DueMetrics(row.channel_account_id, row.channel, {})
        )
        due.posts[row.external_id] = row.id
    return list(grouped.values())


def advance_schedule(
    *, session: Session, post_ids: Iterable[int], now: datetime | None = None
) -> None:
    """Set each post's next collection time after a collection."""
    from marketing.publishing import next_metrics_due

    now = now or utcnow()
    ids = list(post_ids)
    if not ids:
        return
    rows = session.execute(select(Post.id, Post.published_at).where(Post.id.in_(ids))).all()
    if not rows:
        return
    # One UPDATE by primary key for all (executemany), not a statement per post.
    session.execute(
        update(Post),
        [
            {
                "id": post_id,
                "metrics_due_at": next_metrics_due(published, now) if published else None,
            }
            for post_id, published in rows
        ],
    )


__all__ = [
    "Key",
    "all_keys",
    "advance_schedule",
    "due_for_metrics",
    "engagement_rate",
    "keys_for_post",
    "rebuild",
    "recent_keys",
    "record_email_event",
    "rollup",
    "store_collection",
    "store_snapshots",
]
