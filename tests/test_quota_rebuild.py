"""The YouTube quota ledger survives Redis forgetting it (#18): a missing day's counter is
rebuilt from the day's upload attempts in the database, on SQLite and PostgreSQL, with a
private Redis that is restarted or flushed."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import Engine, select

from channels.errors import QuotaExhausted
from channels.quota import UNITS, UPLOADS, InMemoryQuotaLedger, RedisQuotaLedger, quota_day
from marketing.db import session_scope
from marketing.models import (
    Attempt,
    AttemptOutcome,
    ChannelAccount,
    ChannelKind,
    Post,
    PostState,
)
from marketing.publishing import FINAL_STATES
from marketing.quota_record import quota_seed, uploads_attempted
from marketing.settings import reset_settings
from tasks import wiring
from tests.support.pipeline import PipelineStack
from tests.support.services import PostgresDatabase, RedisServer, running, wait_until
from tests.test_publishing_states import make_posts

# 10:00 in California (PST, UTC-8): the quota day 2026-12-01 began at 08:00 UTC.
NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
TODAY = quota_day(NOW)
# Same UTC date and same Bangkok date, but still 30 November in California.
LAST_PACIFIC_DAY = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)
PROJECT = "default"


def record_attempts(
    engine: Engine, post_id: int, attempts: list[tuple[datetime, AttemptOutcome, str | None]]
) -> None:
    """Write attempts of ``post_id`` as the publishing worker would have."""
    with session_scope(engine) as s:
        for number, (started_at, outcome, error_code) in enumerate(attempts, start=1):
            s.add(
                Attempt(
                    post_id=post_id,
                    number=number,
                    started_at=started_at,
                    heartbeat_at=started_at,
                    outcome=outcome,
                    error_code=error_code,
                )
            )


def channel_of(engine: Engine, post_id: int) -> str:
    with session_scope(engine) as s:
        return s.scalars(
            select(ChannelAccount.external_id)
            .join(Post, Post.channel_account_id == ChannelAccount.id)
            .where(Post.id == post_id)
        ).one()


def todays_uploads(engine: Engine) -> tuple[int, int]:
    """Two YouTube posts on two channels: 3 upload attempts today on the first (one of them
    still in flight) and 1 on the second, plus attempts that spent nothing today; returns
    the post ids."""
    first, second = make_posts(engine, 2, channel=ChannelKind.YOUTUBE)
    record_attempts(
        engine,
        first,
        [
            (LAST_PACIFIC_DAY, AttemptOutcome.TRANSIENT, "network"),  # yesterday in California
            (NOW - timedelta(hours=3), AttemptOutcome.TRANSIENT, "upload_interrupted"),
            (NOW - timedelta(hours=2), AttemptOutcome.RATE_LIMITED, "quota:videos.insert"),
            (NOW - timedelta(hours=1), AttemptOutcome.UNCONFIRMED, None),
            (NOW - timedelta(minutes=1), AttemptOutcome.UNKNOWN, None),  # in flight
        ],
    )
    record_attempts(engine, second, [(NOW - timedelta(hours=4), AttemptOutcome.PUBLISHED, None)])
    # A Facebook post's attempts are not YouTube's quota.
    (facebook,) = make_posts(engine, 1, channel=ChannelKind.FACEBOOK)
    record_attempts(engine, facebook, [(NOW, AttemptOutcome.PUBLISHED, None)])
    return first, second


def test_the_record_counts_todays_youtube_upload_attempts_in_flight_ones_included(
    engine: Engine,
) -> None:
    first, second = todays_uploads(engine)
    channel = channel_of(engine, first)
    # Per project (all channels of the Google project): 3 + 1.  Not counted: the attempt of
    # the previous Pacific day, the one our own ledger refused, and Facebook's.
    assert uploads_attempted(engine=engine, account=PROJECT, day=TODAY, quota_project=PROJECT) == 4
    # Per channel, when each channel is its own project.
    assert uploads_attempted(engine=engine, account=channel, day=TODAY, quota_project=None) == 3
    assert uploads_attempted(engine=engine, account=channel, day=TODAY, quota_project="x") == 3
    yesterday = TODAY - timedelta(days=1)
    assert uploads_attempted(engine=engine, account=channel, day=yesterday, quota_project="x") == 1
    seed = quota_seed(engine=engine, quota_project=PROJECT)
    assert seed(PROJECT, UPLOADS, TODAY) == 4
    assert seed(PROJECT, UNITS, TODAY) == 0  # unit-costing calls leave no row


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    client = redis_lib.Redis.from_url(redis_server.url)
    yield client
    client.close()


def test_after_a_redis_restart_the_ledger_reports_the_days_uploads_and_refuses_the_rest(
    engine: Engine, redis_server: RedisServer, redis_client: redis_lib.Redis
) -> None:
    prefix = f"test-rebuild-{uuid.uuid4().hex[:8]}"
    limit = 6
    todays_uploads(engine)
    seed = quota_seed(engine=engine, quota_project=PROJECT)

    def ledger() -> RedisQuotaLedger:
        return RedisQuotaLedger(
            redis_client, prefix=prefix, limits={UPLOADS: limit}, clock=lambda: NOW, seed=seed
        )

    before = ledger()
    assert before.reserve(PROJECT, UPLOADS) == 5  # 4 attempts on record, then this one
    redis_server.restart()  # Redis keeps nothing on disk: the counter is gone
    assert redis_client.keys(f"{prefix}:*") == []

    after = ledger()
    # The reservation made just before the restart had no attempt row yet: it is lost, but
    # every attempt the database knows of is spent.
    assert after.used(PROJECT, UPLOADS) == 4
    assert after.remaining(PROJECT, UPLOADS) == limit - 4
    assert after.reserve(PROJECT, UPLOADS) == 5
    assert after.reserve(PROJECT, UPLOADS) == 6
    with pytest.raises(QuotaExhausted) as refused:
        after.reserve(PROJECT, UPLOADS)  # the (limit - N + 1)th upload
    assert refused.value.code == "quota:videos.insert"
    assert after.used(PROJECT, UPLOADS) == limit


def test_a_flushed_ledger_refuses_at_once_when_the_record_is_over_the_limit(
    engine: Engine, redis_client: redis_lib.Redis
) -> None:
    prefix = f"test-rebuild-{uuid.uuid4().hex[:8]}"
    todays_uploads(engine)
    ledger = RedisQuotaLedger(
        redis_client,
        prefix=prefix,
        limits={UPLOADS: 4},
        clock=lambda: NOW,
        seed=quota_seed(engine=engine, quota_project=PROJECT),
    )
    redis_client.flushall()
    with pytest.raises(QuotaExhausted):
        ledger.reserve(PROJECT, UPLOADS)  # 4 of 4 already attempted today
    # The rebuilt counter is stored: expiring with its day like any other.
    key = ledger.key(PROJECT, UPLOADS, TODAY)
    assert int(redis_client.get(key) or 0) == 4
    assert redis_client.ttl(key) > 0


def test_a_new_pacific_day_is_rebuilt_from_that_days_attempts_only(
    engine: Engine, redis_client: redis_lib.Redis
) -> None:
    prefix = f"test-rebuild-{uuid.uuid4().hex[:8]}"
    todays_uploads(engine)
    clock_now = [LAST_PACIFIC_DAY]
    ledger = RedisQuotaLedger(
        redis_client,
        prefix=prefix,
        limits={UPLOADS: 100},
        clock=lambda: clock_now[0],
        seed=quota_seed(engine=engine, quota_project=PROJECT),
    )
    assert ledger.used(PROJECT, UPLOADS) == 1  # 30 November: the one attempt of that day
    clock_now[0] = NOW
    assert ledger.used(PROJECT, UPLOADS) == 4


def test_two_workers_rebuilding_at_once_neither_add_up_nor_overwrite(
    redis_client: redis_lib.Redis,
) -> None:
    """Worker A counts the record (3) while worker B rebuilds the same counter and takes a
    unit: A's count must not overwrite B's unit, nor be added to B's count."""
    prefix = f"test-rebuild-{uuid.uuid4().hex[:8]}"
    day = quota_day(NOW)
    calls: list[str] = []

    def seed_b(account: str, bucket: str, on: date) -> int:
        calls.append("b")
        return 3

    worker_b = RedisQuotaLedger(redis_client, prefix=prefix, clock=lambda: NOW, seed=seed_b)

    def seed_a(account: str, bucket: str, on: date) -> int:
        calls.append("a")
        assert on == day
        assert worker_b.reserve("UCa", UPLOADS) == 4  # B rebuilds (3) and takes one meanwhile
        return 3

    worker_a = RedisQuotaLedger(redis_client, prefix=prefix, clock=lambda: NOW, seed=seed_a)
    assert worker_a.reserve("UCa", UPLOADS) == 5
    assert calls == ["a", "b"]
    # Once the counter exists nobody asks the database again.
    assert worker_b.reserve("UCa", UPLOADS) == 6
    assert worker_a.used("UCa", UPLOADS) == 6
    assert calls == ["a", "b"]


def test_a_restarted_single_worker_rebuilds_its_in_memory_ledger(engine: Engine) -> None:
    todays_uploads(engine)
    seed = quota_seed(engine=engine, quota_project=PROJECT)
    restarted = InMemoryQuotaLedger(limits={UPLOADS: 5}, clock=lambda: NOW, seed=seed)
    assert restarted.reserve(PROJECT, UPLOADS) == 5
    with pytest.raises(QuotaExhausted):
        restarted.reserve(PROJECT, UPLOADS)


def test_the_workers_ledger_is_rebuilt_from_the_database_it_is_configured_with(
    engine: Engine,
    redis_server: RedisServer,
    redis_client: redis_lib.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARKETING_REDIS_URL", redis_server.url)
    monkeypatch.setenv("MARKETING_YOUTUBE_DAILY_UPLOADS", "5")
    reset_settings()
    wiring.reset()
    try:
        todays_uploads(engine)
        ledger = wiring.quota_ledger()
        assert isinstance(ledger, RedisQuotaLedger)
        ledger.clock = lambda: NOW
        redis_client.delete(ledger.key(PROJECT, UPLOADS, TODAY))
        assert ledger.reserve(PROJECT, UPLOADS) == 5
        with pytest.raises(QuotaExhausted):
            ledger.reserve(PROJECT, UPLOADS)
    finally:
        wiring.reset()


@pytest.mark.slow
def test_a_real_worker_after_a_redis_restart_stays_within_the_days_uploads(
    tmp_path: Path,
) -> None:
    """A worker uploads 3 videos (limit 5), Redis restarts, 4 more posts come due: the
    worker uploads at most 2 of them and leaves the rest for the next quota day."""
    from marketing import migrate
    from marketing.db import get_engine

    limit = 5
    database = PostgresDatabase().create()
    redis = RedisServer().start()
    migrate.upgrade(get_engine(database.url))
    stack = PipelineStack(
        db_url=database.url, redis=redis, tmp_path=tmp_path, youtube_daily_uploads=limit
    )

    def settled() -> bool:
        with session_scope(stack.engine) as s:
            return all(
                post.state in FINAL_STATES
                or (
                    post.state == PostState.SCHEDULED
                    and (post.last_error_code or "").startswith("quota:")
                )
                for post in s.scalars(select(Post))
            )

    try:
        stack.make_posts(3, slug="before")
        with running(stack.worker("a")):
            stack.wait_all_final(3 * len(ChannelKind), timeout=120)
        redis.restart()  # the ledger's counters are gone
        stack.make_posts(4, slug="after")
        with running(stack.worker("b")):
            wait_until(settled, timeout=120, interval=0.5, what="the posts to settle")
        with session_scope(stack.engine) as s:
            youtube = s.scalars(select(Post).where(Post.channel == ChannelKind.YOUTUBE)).all()
            published = [p for p in youtube if p.state == PostState.PUBLISHED]
            waiting = [p for p in youtube if p.state == PostState.SCHEDULED]
            days = Counter(
                quota_day(a.started_at)
                for a in s.scalars(
                    select(Attempt)
                    .join(Post, Post.id == Attempt.post_id)
                    .where(
                        Post.channel == ChannelKind.YOUTUBE,
                        Attempt.outcome == AttemptOutcome.PUBLISHED,
                    )
                )
            )
        # Every upload YouTube holds is a published post, and no quota day took more than
        # the limit (whatever day the test runs on: attempts are grouped by their own day).
        assert len(stack.youtube.videos) == len(published) >= 3
        assert max(days.values()) <= limit
        assert waiting and all(p.last_error_code == "quota:videos.insert" for p in waiting)
    finally:
        stack.close()
        redis.close()
        get_engine(database.url).dispose()
        database.drop()
