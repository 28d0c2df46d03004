"""Reports at scale: the programme overview and one community's report over a year of
performance records of 1,000 communities, on PostgreSQL and SQLite."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from bench.base import Benchmark
from bench.results import Figure, Target
from bench.services import PostgresDatabase
from channels.base import Capability
from marketing import migrate
from marketing.db import get_engine, session_factory
from marketing.models import ChannelKind, Community, CommunityPerformance, channels_that
from marketing.performance import summarise_all
from marketing.reports.queries import community_report, programme_overview
from marketing.reports.rows import RAW_FIELDS

LAST_DAY = date(2026, 10, 31)
CHANNELS = tuple(ChannelKind)
BULK = channels_that(Capability.SEND_TO_MANY)  # reach is messages sent, not views
COLUMNS = (
    "community_id",
    "channel",
    "day",
    *("posts", "views", "reactions", "comments", "shares", "clicks"),
    *("opens", "unsubscribes", "emails_sent", "engagement_rate", "updated_at"),
)


def records(
    communities: list[int], days: int, last_day: date = LAST_DAY
) -> Iterator[tuple[Any, ...]]:
    """One performance record per community, channel and day up to ``last_day``, with
    varied figures."""
    now = datetime.now(UTC)
    for index, community_id in enumerate(communities):
        for offset in range(days):
            day = last_day - timedelta(days=offset)
            for channel in CHANNELS:
                seed = (index * 7919 + offset * 104729 + len(channel.value)) % 1000
                email = channel in BULK
                views = 0 if email else 50 + seed
                sent = 200 + seed if email else 0
                clicks = seed % 23
                yield (
                    community_id,
                    channel.value,
                    day,
                    seed % 3,
                    views,
                    0 if email else seed % 41,
                    0 if email else seed % 13,
                    0 if email else seed % 7,
                    clicks,
                    seed % 97 if email else 0,
                    seed % 3 if email else 0,
                    sent,
                    round(clicks / sent if email else (clicks + seed % 61) / views, 6),
                    now,
                )


class ReportsAtScale(Benchmark):
    name = "reports"
    findings = """\
*Profiled* with pyinstrument before the summaries (2026-11-28): a community over a year
(about 0.4 s) was 65 % its rank -- `RANK()` over every community's sums for the period, so
all 1.1 million records were aggregated to rank one community -- and 30 % the daily trend;
the overview over a year (about 1.3 s) was the period sums (30 %), the daily trend (25 %) and
Python building rows. *Changed* (#19): the rollup now keeps two summaries beside the records,
per community, channel and month (`community_month_performance`) and per programme day and
channel (`programme_day_performance`), recomputed for the months and days it touches in the
same transaction (`marketing.performance.summarise`). A report reads whole months from the
first (12 rows a community for a year instead of 365) and only the days left over at the
period's edges from the records; the programme's daily trend reads the second (365 x 3 rows).
`tests/test_report_summaries.py` checks the sums, ranks and trend against the records added
up in Python for periods with and without whole months, on both databases. Measured
(`python -m bench --only reports`, 2026-12-01, on a machine loaded by eight other test runs,
load average about 11 on 2 cores, so only the ratios mean much): the year-long overview went
from 0.38 to 0.70 of the plain `GROUP BY` on PostgreSQL and from 0.44 to 4.6 on SQLite (now
faster than summing the records once); one community over a year from 0.015 to 0.076 on
PostgreSQL and 0.005 to 0.043 on SQLite. Timed directly on the same loaded machine: one
community over a year 86 ms (rank 31 ms, trend 39 ms), the overview 0.44 s. Left: the 28-day
reports have no whole month, so they read the records as before; the overview's Python
(about 7,000 `Metrics` built with `model_construct`, 0.24 s of 0.7 s under cProfile) is next.

*Changed again* (#19, `marketing/reports/rows.py`, `queries.py`), after measuring main's code
directly on a kept copy of the benchmark's data (2026-12-01 16:51, load average 5-6): the
year-long targets held there -- PostgreSQL overview 130 ms (median of 3: 244 ms), one
community 39 ms (52); SQLite 329 ms (427) and 99 ms (100), within 2.5x of PostgreSQL -- and
the 28-day ones too (412 ms and 46 ms; SQLite 655 and 70 ms). Under load they do not: in
`--only reports --runs 2` at load average 21-25 (17:00-17:05, main and this branch side by
side) every PostgreSQL figure of both was over its target (the plain `GROUP BY` took 1.0 s
instead of 0.3), so Python's share was measured as CPU time of the calling process, which
the load moves little (PostgreSQL's own time not in it), and profiled with cProfile on
process time: the 28-day overview spent it on pydantic's `model_construct` (11 us a
`Metrics`, about 10,000 of them), on every `ChannelLine` validated again from `Metrics`
already built, on `engagement.interactions` checking `Mapping` for each of 8,000 channel
sums, and, in about every second call, on a full (generation 2) garbage collection walking
the whole heap (about 100 ms; `gc.freeze()` after start-up made it disappear). *Changed*:
`Metrics`, `DayPoint` and `ChannelLine` are built with `trusted` (fields set directly, no
validation: 2 us a `Metrics`; a test checks they equal validated ones) and `of_channel`
sums the engagement fields directly. CPU time, main -> this branch, least of 5 in two
interleaved rounds at load 10-12: PostgreSQL overview 28 days 249-252 -> 181-214 ms, 365
days 131-133 -> 81-105 ms, a community over 365 days 25-26 -> 16-21 ms; SQLite overview 28
days 384-414 -> 363-387 ms (mostly SQLite summing 224,000 records). Measured
(`--only reports --runs 3`, 2026-12-01 17:16, load average 7-12): over a year both
PostgreSQL targets met (overview 0.89 s median, 0.10-0.98; a community 33 ms) and SQLite
within 3x (0.83 s; 93 ms, 2.8x); over 28 days missed on the loaded machine (overview 1.03 s
median, 0.35-2.41; a community 125 ms, 78-220), where the reports still read the daily
records (no whole month): the overview's sums of 224,000 records (about 0.1 s alone at load
5) and Python's 0.2 s CPU, the community's rank over every community's 112,000 records
(50-55 ms). Left: a summary for 28-day periods (or per community and day across channels)
for those two, and `gc.freeze()` in the web and worker processes (not the reports' code)."""
    note = """\
**Reports at scale.** 1,000 communities x 365 days x 3 channels = 1,095,000 performance
records (quick: 50 x 60 x 3), loaded once into a PostgreSQL database of its own and into a
SQLite file, then analysed (`ANALYZE`). Timed: `programme_overview` and `community_report`
(the functions behind `marketing report overview` and `marketing report community`, with
their ranks, previous-period comparison and daily trend), each called on a fresh session,
for the default period (the last 28 days) and for the whole year. Baseline: the single
`GROUP BY` a report cannot do without -- the period's and the previous period's sums per
community and channel (overview) or for the one community (community report) -- as plain SQL
on the same connection. The targets (overview under 1 s, a community under 100 ms) are for
PostgreSQL; they are applied to both periods."""

    def __init__(self, *, quick: bool) -> None:
        super().__init__(quick=quick)
        self.communities, self.days = (50, 60) if quick else (1000, 365)
        self.last_day = LAST_DAY
        self.dir = Path(tempfile.mkdtemp(prefix="mkt-bench-reports-"))
        self.database: PostgresDatabase | None = None
        self.engines: dict[str, Engine] = {}
        self.figures_by_key: dict[tuple[str, str, int], Figure] = {}
        for backend in ("PostgreSQL", "SQLite"):
            for period in (28, self.days):
                for kind in ("overview", "community"):
                    target = None
                    if backend == "PostgreSQL":
                        target = (
                            Target("at_most", 1.0, "< 1 s")
                            if kind == "overview"
                            else Target("at_most", 0.1, "< 100 ms")
                        )
                    what = (
                        f"{self.communities:,} communities"
                        if kind == "overview"
                        else "one community"
                    )
                    self.figures_by_key[(backend, kind, period)] = Figure(
                        "reports",
                        f"{kind}, {what}, {period} days, {backend}",
                        "s",
                        higher_is_better=False,
                        baseline_name="plain GROUP BY",
                        target=target,
                    )

    def figures(self) -> list[Figure]:
        return list(self.figures_by_key.values())

    def setup(self) -> None:
        self.database = PostgresDatabase(prefix="mkt_bench").create()
        self.engines["PostgreSQL"] = get_engine(self.database.url)
        self.engines["SQLite"] = get_engine(f"sqlite:///{self.dir / 'reports.sqlite3'}")
        for backend, engine in self.engines.items():
            migrate.upgrade(engine)
            ids = self.load_communities(engine)
            if backend == "PostgreSQL":
                self.copy_records(ids)
            else:
                self.insert_records(engine, ids)
            with session_factory(engine)() as session, session.begin():
                # What the rollup keeps beside the records it writes (loaded here by COPY).
                summarise_all(session=session)
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))

    def load_communities(self, engine: Engine) -> list[int]:
        with session_factory(engine)() as session, session.begin():
            session.execute(
                insert(Community),
                [
                    {
                        "slug": f"community-{i:04d}",
                        "name_th": f"ชุมชนที่ {i}",
                        "name_en": f"Community {i}",
                        "province": "น่าน",
                    }
                    for i in range(self.communities)
                ],
            )
            return list(session.scalars(select(Community.id).order_by(Community.id)))

    def copy_records(self, ids: list[int]) -> None:
        assert self.database is not None
        import psycopg

        with psycopg.connect(self.database.libpq_url) as conn, conn.cursor() as cursor:
            statement = f"COPY community_performance ({', '.join(COLUMNS)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for record in records(ids, self.days, self.last_day):
                    copy.write_row(record)

    def insert_records(self, engine: Engine, ids: list[int]) -> None:
        names = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("BEGIN")
            cursor.executemany(
                f"INSERT INTO community_performance ({names}) VALUES ({marks})",
                [
                    (*r[:2], r[2].isoformat(), *r[3:-1], r[-1].replace(tzinfo=None).isoformat())
                    for r in records(ids, self.days)
                ],
            )
            cursor.execute("COMMIT")
        finally:
            connection.close()

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        if self.database is not None:
            self.database.drop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_once(self, run: int) -> None:
        slug = f"community-{self.communities // 2:04d}"
        for backend, engine in self.engines.items():
            with session_factory(engine)() as session:
                community_id = session.scalar(select(Community.id).where(Community.slug == slug))
            for period in (28, self.days):
                start = LAST_DAY - timedelta(days=period - 1)

                def overview(session: Session, start: date = start) -> object:
                    return programme_overview(session=session, start=start, end=LAST_DAY)

                def community(session: Session, start: date = start) -> object:
                    return community_report(
                        session=session, community_slug=slug, start=start, end=LAST_DAY
                    )

                for kind, report, only in (
                    ("overview", overview, None),
                    ("community", community, community_id),
                ):

                    def floor(session: Session, p: int = period, c: int | None = only) -> object:
                        return plain_sums(session, p, c)

                    if run == 0:  # warm the caches (PostgreSQL's and SQLAlchemy's) first
                        timed(engine, report)
                        timed(engine, floor)
                    ours, baseline = timed(engine, report), timed(engine, floor)
                    self.figures_by_key[(backend, kind, period)].add(ours, baseline)


def timed(engine: Engine, call: Callable[[Session], object]) -> float:
    """Seconds ``call`` takes on a fresh session (the pool's connection is warm)."""
    with session_factory(engine)() as session:
        started = time.perf_counter()
        call(session)
        return time.perf_counter() - started


def plain_sums(session: Session, period: int, community_id: int | None) -> object:
    """The period's and the previous period's raw sums per community and channel."""
    start = LAST_DAY - timedelta(days=period - 1)
    before = start - timedelta(days=period)
    cp = CommunityPerformance
    rows = select(
        cp.community_id,
        cp.channel,
        (cp.day >= start).label("current"),
        *(getattr(cp, name) for name in RAW_FIELDS),
    ).where(cp.day.between(before, LAST_DAY))
    if community_id is not None:
        rows = rows.where(cp.community_id == community_id)
    inner = rows.subquery()  # so GROUP BY names the comparison once
    query = select(
        inner.c.community_id,
        inner.c.channel,
        inner.c.current,
        *(func.sum(inner.c[name]) for name in RAW_FIELDS),
    ).group_by(inner.c.community_id, inner.c.channel, inner.c.current)
    return session.execute(query).all()
