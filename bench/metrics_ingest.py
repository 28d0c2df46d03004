"""Metrics ingest and rollup: a million snapshots stored and rolled up the way
``collect_metrics`` does it, beside PostgreSQL ``COPY`` of the same rows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine, insert, select, text

from bench.base import Benchmark
from bench.results import Figure, Target
from bench.services import PostgresDatabase
from channels.base import Metrics
from marketing import migrate
from marketing.db import get_engine, session_scope
from marketing.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    Post,
    PostState,
)
from marketing.performance import local_day, rollup, store_collection

COLUMNS = (
    "post_id",
    "collected_at",
    "day",
    *("views", "reactions", "comments", "shares", "clicks"),
    *("d_views", "d_reactions", "d_comments", "d_shares", "d_clicks"),
    "raw",
)
BASE = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def metrics_for(post: int, round_: int, external_id: str, at: datetime) -> Metrics:
    """Cumulative engagement of ``post`` at collection ``round_`` (grows every round)."""
    grow = round_ + 1
    views = 40 * grow + post % 97
    return Metrics(
        external_id=external_id,
        collected_at=at,
        views=views,
        reactions=3 * grow + post % 7,
        comments=grow + post % 3,
        shares=grow // 2,
        clicks=2 * grow,
        raw={"metrics": {"views": views, "clicks": 2 * grow}, "insights": [{"name": "views"}]},
    )


class MetricsIngest(Benchmark):
    name = "metrics"
    findings = """\
*Profiled* with pyinstrument. First run: 320 rows/s (ratio 0.006) -- `collect_metrics`
rolled up after every account, recomputing the same community days once per account, and
each rollup is six queries. *Fixed* (`tasks/metrics.py`, `marketing/performance.py`): one
rollup per collection pass; `store_snapshots` reads each post's zone and newest snapshot in
one query of only the needed columns (no raw JSON), through one index probe per post (a
`LATERAL ... LIMIT 1` on PostgreSQL: with statistics lagging behind the growing table the
planner scanned it once per batch), and inserts through `COPY` into a temporary table and
one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (the same idempotency). *Remains*: the
work `COPY` does not do -- reading each post's previous snapshot to compute the changes, the
`ON CONFLICT` check, the rollup -- and Python's per-row cost (building the row, JSON, the
SQLAlchemy result rows): about 220 us a row in all, against about 27 us for COPY.

*Changed again* (#19, `marketing/performance.py`): on PostgreSQL the changes are computed in
SQL as the snapshots arrive -- each batch goes through `COPY` as it came (post, time, the
five values, raw JSON; no query first, no Python per row but `write_row`) into a temporary
table, and one statement finds each snapshot's post and zone, its local day, the snapshot
before it (the previous one in the same batch if newer than the newest stored, else the
newest stored, through the `(post_id, collected_at)` index), computes the changes exactly as
the Python path does on SQLite (a test pins both on out-of-order, repeated and unreported
values), inserts with `ON CONFLICT DO NOTHING` and answers the keys to roll up. The first
version of that statement was no faster (0.114 in a run of two): with no statistics for the
temporary table the planner hashed all 33,334 posts for every account's batch of 166
(`EXPLAIN ANALYZE`: 18 of 34 ms); a `LATERAL` primary-key probe brought the statement to
13 ms. Measured (`--only metrics --runs 2`, load average about 10): 0.168 (0.163-0.173), from
0.139 in the last full run and 0.114 with the first version in the same hour. *Remains*: the
transaction per account that `collect_metrics` keeps (200 commits a collection, against one
`COPY` and one commit): storing a whole collection in one transaction took about 0.65 of the
time in a direct trial (5.4-6.2 s against 8.1-9.4 s a collection on the loaded machine),
which would bring the ratio to about 0.25.

*Changed* (#19, `marketing/performance.py`, `tasks/metrics.py`): `collect_metrics` fetches
every due account's metrics first (the network), then stores the whole collection in one
transaction through `store_collection`: all accounts at once in a savepoint -- one `COPY` and
one statement for the collection's 33,334 snapshots instead of 200 of each and 200 commits --
and, only if that fails, again account by account, each in a savepoint of its own, so an
account whose snapshots cannot be stored is rolled back alone and reported (its collection
times not advanced, so it is tried again), the others' kept once
(`tests/test_performance.py`, both databases, with a value no integer column takes). The
temporary table the snapshots are copied into is now made (`IF NOT EXISTS`) at every use: one
made inside a savepoint that is rolled back is gone. The next collection times are one
`executemany` by primary key, not an `UPDATE` per post (not in this benchmark). Measured
(`--only metrics --runs 2`, 2026-12-01 16:40-16:47, this branch and main's code side by side
on the same machine, load average 6-9 on 2 cores): 0.373 (0.354-0.392) against main's 0.165
(0.154-0.177) in the same minutes. Per collection (8 collections timed directly, load
about 6): storing 2.29 s (the one statement: reading each post's previous snapshot, the
changes, the index and `ON CONFLICT` checks, about 69 us a snapshot), commit 0.01 s, rollup
0.25 s; `COPY` of the same rows 0.90 s."""
    full_runs = 2  # about 4 minutes each
    note = """\
**Metrics ingest and rollup.** 33,334 published posts (Facebook and YouTube, 100
communities, 200 accounts; quick: 1,000 posts of 10 communities) collected 30 times, a day
apart (quick: 5): 1,000,000 snapshots (quick: 5,000). Each collection is stored as
`collect_metrics` stores it -- every account in one transaction, through `store_collection`
(`store_snapshots`: changes since each post's previous snapshot, `ON CONFLICT DO NOTHING`);
then one `rollup` of the (community, channel, day) keys the pass touched -- on PostgreSQL.
The metric values are made before the clock starts (they come from the adapters). Baseline,
in the same run: PostgreSQL `COPY` of the very same rows (the deltas precomputed, raw JSON as
text), one `COPY` per collection, into a table made `LIKE metric_snapshot INCLUDING ALL` plus
its foreign key
(same columns, indexes, unique constraint and foreign key). Both tables are emptied before
each run. Not included: `advance_schedule` (next collection times)."""

    def __init__(self, *, quick: bool) -> None:
        super().__init__(quick=quick)
        # Communities, each with a Facebook Page and a YouTube channel.
        self.communities = 10 if quick else 100
        self.posts, self.rounds = (1_000, 5) if quick else (33_334, 30)
        self.rate = Figure(
            "metrics",
            f"{self.posts * self.rounds:,} snapshots stored + rolled up, PostgreSQL",
            "rows/s",
            higher_is_better=True,
            baseline_name="COPY",
            target=Target("ratio_at_least", 0.25, "ratio >= 0.25"),
        )
        self.database: PostgresDatabase | None = None
        self.engine: Engine | None = None
        # account id -> [(post id, external id, community zone)]
        self.by_account: dict[int, list[tuple[int, str, str]]] = {}

    def figures(self) -> list[Figure]:
        return [self.rate]

    def setup(self) -> None:
        self.database = PostgresDatabase(prefix="mkt_bench").create()
        self.engine = engine = get_engine(self.database.url)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                text("CREATE TABLE metric_snapshot_copy (LIKE metric_snapshot INCLUDING ALL)")
            )
            # LIKE copies no foreign key; the real table checks every row's post.
            conn.execute(
                text(
                    "ALTER TABLE metric_snapshot_copy ADD FOREIGN KEY (post_id) "
                    "REFERENCES post (id) ON DELETE CASCADE"
                )
            )
        with session_scope(engine) as session:
            campaign = Campaign(
                slug="metrics",
                name="เมตริก",
                source_text="-",
                source_hash="-",
                status=CampaignStatus.APPROVED,
            )
            session.add(campaign)
            accounts: list[ChannelAccount] = []
            for c in range(self.communities):
                community = Community(
                    slug=f"c{c:04d}", name_th=f"ชุมชน {c}", name_en=f"c{c}", province="น่าน"
                )
                session.add(community)
                for kind in (ChannelKind.FACEBOOK, ChannelKind.YOUTUBE):
                    accounts.append(
                        ChannelAccount(
                            slug=f"{kind.value}-{c}",
                            kind=kind,
                            external_id=f"{kind.value}-{c}",
                            display_name=f"{kind.value} {c}",
                            community=community,
                        )
                    )
            session.add_all(accounts)
            session.flush()
            rows: list[dict[str, Any]] = []
            for i in range(self.posts):
                account = accounts[i % len(accounts)]
                rows.append(
                    {
                        "campaign_id": campaign.id,
                        "community_id": account.community_id,
                        "channel_account_id": account.id,
                        "channel": account.kind,
                        "idempotency_key": f"metrics-{i:06d}",
                        "occurrence_key": str(i),
                        "scheduled_at": BASE - timedelta(hours=2),
                        "next_try_at": BASE - timedelta(hours=2),
                        "content": {},
                        "content_hash": "-",
                        "state": PostState.PUBLISHED,
                        "external_id": f"ext-{i}",
                        "published_at": BASE - timedelta(hours=1),
                    }
                )
            session.execute(insert(Post), rows)
        with session_scope(engine) as session:
            for post_id, external_id, account_id, zone in session.execute(
                select(Post.id, Post.external_id, Post.channel_account_id, Community.timezone)
                .join(Community, Community.id == Post.community_id)
                .order_by(Post.id)
            ):
                self.by_account.setdefault(account_id, []).append((post_id, str(external_id), zone))

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        if self.database is not None:
            self.database.drop()

    def run_once(self, run: int) -> None:
        engine, database = self.engine, self.database
        assert engine is not None and database is not None
        with engine.begin() as conn:
            conn.execute(
                text("TRUNCATE metric_snapshot, metric_snapshot_copy, community_performance")
            )
        total = self.posts * self.rounds
        ours = copy = 0.0
        with psycopg.connect(database.libpq_url) as conn:
            for round_ in range(self.rounds):
                at = BASE + timedelta(days=round_)
                batches = {
                    account_id: [(p, metrics_for(p, round_, e, at)) for p, e, _ in posts]
                    for account_id, posts in self.by_account.items()
                }
                ours += self.store(batches)
                copy += self.copy(conn, self.copy_rows(round_, at))
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM metric_snapshot")).scalar_one()
            copied = conn.execute(text("SELECT count(*) FROM metric_snapshot_copy")).scalar_one()
        if stored != total or copied != total:
            raise RuntimeError(f"stored {stored} and copied {copied} of {total} snapshots")
        self.rate.add(total / ours, total / copy)

    def store(self, batches: dict[int, list[tuple[int, Metrics]]]) -> float:
        """Seconds to store one collection as ``collect_metrics`` does (every account in one
        transaction, through ``store_collection``) and roll it up."""
        engine = self.engine
        assert engine is not None
        started = time.perf_counter()
        with session_scope(engine) as session:
            touched, failed = store_collection(session=session, batches=batches)
        if failed:
            raise RuntimeError(f"accounts not stored: {sorted(failed)}")
        with session_scope(engine) as session:
            rollup(session=session, keys=touched)
        return time.perf_counter() - started

    def copy_rows(self, round_: int, at: datetime) -> list[tuple[Any, ...]]:
        """The rows ``store_snapshots`` writes for collection ``round_``, ready for COPY."""
        rows = []
        for posts in self.by_account.values():
            for post_id, external_id, zone in posts:
                now = metrics_for(post_id, round_, external_id, at)
                before = metrics_for(post_id, round_ - 1, external_id, at) if round_ else None
                values = [now.views, now.reactions, now.comments, now.shares, now.clicks]
                olds = (
                    [before.views, before.reactions, before.comments, before.shares, before.clicks]
                    if before
                    else [0] * 5
                )
                deltas = [(v or 0) - (o or 0) for v, o in zip(values, olds, strict=True)]
                rows.append(
                    (post_id, at, local_day(at, zone), *values, *deltas, json.dumps(now.raw))
                )
        return rows

    def copy(self, conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> float:
        """Seconds to COPY ``rows`` into the copy table and commit."""
        started = time.perf_counter()
        with conn.cursor() as cursor:
            statement = f"COPY metric_snapshot_copy ({', '.join(COLUMNS)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started
