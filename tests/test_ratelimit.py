"""Token buckets and usage stores, in memory and on a real (private) Redis server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from channels.ratelimit import (
    CachedUsageStore,
    MemoryTokenBucket,
    MemoryUsageStore,
    RedisTokenBucket,
    RedisUsageStore,
    Usage,
)
from tests.support.services import RedisServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clients(redis_server: RedisServer) -> Iterator[tuple[redis.Redis, redis.Redis]]:
    """Two independent connections to one Redis, as two workers would have."""
    a = redis.Redis.from_url(redis_server.url)
    b = redis.Redis.from_url(redis_server.url)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


# -- in memory ------------------------------------------------------------------------------


def test_memory_bucket_lets_capacity_through_then_says_how_long_to_wait() -> None:
    clock = FakeClock()
    bucket = MemoryTokenBucket(rate=0.5, capacity=2, clock=clock)
    assert bucket.acquire("facebook:1") == 0.0
    assert bucket.acquire("facebook:1") == 0.0
    assert bucket.acquire("facebook:1") == pytest.approx(2.0)
    assert bucket.acquire("facebook:2") == 0.0  # another account has its own bucket
    clock.now += 1.0
    assert bucket.acquire("facebook:1") == pytest.approx(1.0)  # half a token so far
    clock.now += 1.0
    assert bucket.acquire("facebook:1") == 0.0
    assert bucket.acquire("facebook:1") == pytest.approx(2.0)


def test_memory_bucket_never_fills_beyond_capacity() -> None:
    clock = FakeClock()
    bucket = MemoryTokenBucket(rate=1.0, capacity=2, clock=clock)
    clock.now += 3600
    assert [bucket.acquire("k") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_bucket_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        MemoryTokenBucket(rate=0, capacity=1)


def test_memory_usage_store_keeps_the_latest_and_forgets_after_ttl() -> None:
    clock = FakeClock()
    store = MemoryUsageStore(ttl=timedelta(seconds=60), clock=clock)
    assert store.latest("1") is None
    store.record("1", Usage(call_count=10))
    store.record("1", Usage(call_count=42, total_time=50))
    latest = store.latest("1")
    assert latest is not None and latest.percent == 50
    assert store.latest("2") is None
    clock.now += 61
    assert store.latest("1") is None


def test_usage_worst_takes_each_figure_at_its_maximum() -> None:
    early = datetime(2026, 1, 1, tzinfo=UTC)
    a = Usage(call_count=95, total_cputime=10, regain_after=0, reported_at=early)
    b = Usage(call_count=20, total_time=30, regain_after=120, reported_at=early.replace(hour=1))
    worst = a.worst(b)
    assert (worst.call_count, worst.total_cputime, worst.total_time) == (95, 10, 30)
    assert worst.regain_after == 120 and worst.reported_at == b.reported_at
    assert Usage.from_json(worst.to_json()) == worst


# -- on Redis -------------------------------------------------------------------------------


def test_redis_bucket_is_shared_by_two_clients(
    clients: tuple[redis.Redis, redis.Redis], prefix: str
) -> None:
    a, b = clients
    hourly = 1 / 3600
    worker_a = RedisTokenBucket(a, rate=hourly, capacity=3, prefix=prefix)
    worker_b = RedisTokenBucket(b, rate=hourly, capacity=3, prefix=prefix)
    assert worker_a.acquire("facebook:1") == 0.0
    assert worker_b.acquire("facebook:1") == 0.0
    assert worker_a.acquire("facebook:1") == 0.0
    wait = worker_b.acquire("facebook:1")  # the bucket both draw from is empty now
    assert 0 < wait <= 3600, f"expected a wait of up to an hour (one token an hour), got {wait}"
    assert worker_b.acquire("facebook:2") == 0.0


def test_redis_bucket_refills_after_the_wait_it_gave(
    clients: tuple[redis.Redis, redis.Redis], prefix: str
) -> None:
    bucket = RedisTokenBucket(clients[0], rate=5, capacity=1, prefix=prefix)
    assert bucket.acquire("k") == 0.0
    # Ask until refused: an ask that comes after the bucket refilled (a slow machine) just
    # takes the new token and empties it again.  A refusal takes nothing.
    waits = [bucket.acquire("k") for _ in range(1)]
    while waits[-1] == 0.0 and len(waits) < 100:
        waits.append(bucket.acquire("k"))
    wait = waits[-1]
    assert 0 < wait <= 0.2, f"expected a refusal with a wait of at most 1/5 s, saw {waits}"
    time.sleep(wait)
    assert bucket.acquire("k") == 0.0, "no token after the wait the bucket gave"


def test_redis_bucket_is_atomic_under_concurrent_workers(
    clients: tuple[redis.Redis, redis.Redis], prefix: str
) -> None:
    buckets = [RedisTokenBucket(c, rate=1 / 3600, capacity=5, prefix=prefix) for c in clients]
    results: list[float] = []
    lock = threading.Lock()

    def worker(bucket: RedisTokenBucket) -> None:
        for _ in range(10):
            wait = bucket.acquire("shared")
            with lock:
                results.append(wait)

    threads = [threading.Thread(target=worker, args=(buckets[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 40
    assert results.count(0.0) == 5


def test_redis_bucket_key_expires_once_it_would_be_full_again(
    clients: tuple[redis.Redis, redis.Redis], prefix: str
) -> None:
    bucket = RedisTokenBucket(clients[0], rate=1, capacity=10, prefix=prefix)
    bucket.acquire("k")
    ttl_ms = clients[0].pttl(prefix + "k")
    assert isinstance(ttl_ms, int) and 10_000 < ttl_ms <= 11_000


def test_redis_usage_store_is_shared_by_two_clients(
    clients: tuple[redis.Redis, redis.Redis], prefix: str
) -> None:
    a, b = clients
    writer = RedisUsageStore(a, prefix=prefix, ttl=timedelta(minutes=30))
    reader = RedisUsageStore(b, prefix=prefix, ttl=timedelta(minutes=30))
    usage = Usage(
        call_count=91,
        total_cputime=12.5,
        total_time=40,
        regain_after=300,
        reported_at=datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
    )
    assert reader.latest("page-1") is None
    writer.record("page-1", usage)
    assert reader.latest("page-1") == usage
    assert reader.latest("page-2") is None
    ttl_ms = b.pttl(prefix + "page-1")
    assert isinstance(ttl_ms, int) and 0 < ttl_ms <= 30 * 60 * 1000


def test_cached_usage_store_writes_what_is_new_and_reads_at_most_once_a_second(
    clients: tuple[redis.Redis, redis.Redis], prefix: str
) -> None:
    a, b = clients
    clock = FakeClock()
    worker = CachedUsageStore(RedisUsageStore(a, prefix=prefix), clock=clock)
    other = RedisUsageStore(b, prefix=prefix)  # another worker, writing straight to Redis
    worker.record("page-1", Usage(call_count=40))
    assert other.latest("page-1") == Usage(call_count=40)  # the first report is written

    # Under a whole point more, and the same time to regain access: not written again.
    other.record("page-1", Usage(call_count=45))
    worker.record("page-1", Usage(call_count=40.5))
    assert other.latest("page-1") == Usage(call_count=45)
    # Trusted for a second: the worker's own report, not the other's.
    assert worker.latest("page-1") == Usage(call_count=40.5)
    clock.now += 1.0
    assert worker.latest("page-1") == Usage(call_count=45)

    # A whole point more is news, and so is throttling: both written at once.
    worker.record("page-1", Usage(call_count=41.5))
    assert other.latest("page-1") == Usage(call_count=41.5)
    worker.record("page-1", Usage(call_count=41.5, regain_after=60))
    assert other.latest("page-1") == Usage(call_count=41.5, regain_after=60)

    # The same report once more after rewrite_every: written, so the shared one stays fresh.
    other.record("page-1", Usage(call_count=10))
    worker.record("page-1", Usage(call_count=41.5, regain_after=60))
    assert other.latest("page-1") == Usage(call_count=10)
    clock.now += worker.rewrite_every
    worker.record("page-1", Usage(call_count=41.5, regain_after=60))
    assert other.latest("page-1") == Usage(call_count=41.5, regain_after=60)

    # An account nobody reported on is asked again after a second, not remembered for long.
    assert worker.latest("page-2") is None
    other.record("page-2", Usage(call_count=95))
    assert worker.latest("page-2") is None
    clock.now += 1.0
    assert worker.latest("page-2") == Usage(call_count=95)
