"""The YouTube quota ledger: costs, the Pacific-time day, refusing before a bucket would go
over, in memory and on a private Redis shared by two clients."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib

from channels.errors import QuotaExhausted, RateLimited
from channels.quota import (
    SEARCHES,
    UNITS,
    UPLOADS,
    InMemoryQuotaLedger,
    QuotaLedger,
    RedisQuotaLedger,
    cost_of,
    ledger_from_settings,
    next_reset,
    quota_day,
    seconds_until_reset,
)
from marketing.settings import Settings
from tests.support.services import RedisServer


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_costs_follow_googles_table() -> None:
    assert cost_of("videos.insert") == (UPLOADS, 1)
    assert cost_of("search.list") == (SEARCHES, 1)
    assert cost_of("videos.list") == (UNITS, 1)
    assert cost_of("channels.list") == (UNITS, 1)
    assert cost_of("playlistItems.list") == (UNITS, 1)
    assert cost_of("videos.update") == (UNITS, 50)
    # not in the table: lists cost 1, anything else is assumed to be a 50-unit write
    assert cost_of("captions.list") == (UNITS, 1)
    assert cost_of("channelSections.insert") == (UNITS, 50)


def test_the_quota_day_is_a_pacific_day() -> None:
    # 07:59 UTC on 2 June is 00:59 PDT on 2 June; 06:59 UTC is still 1 June in California.
    assert quota_day(datetime(2026, 6, 2, 7, 59, tzinfo=UTC)).isoformat() == "2026-06-02"
    assert quota_day(datetime(2026, 6, 2, 6, 59, tzinfo=UTC)).isoformat() == "2026-06-01"
    # Bangkok morning is still yesterday in Pacific time
    bangkok_9am = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)
    assert next_reset(bangkok_9am) == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
    assert seconds_until_reset(bangkok_9am) == 5 * 3600


def test_the_day_is_23_or_25_hours_when_the_clocks_change() -> None:
    spring = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 00:00 PST, the day DST begins
    assert seconds_until_reset(spring) == 23 * 3600
    autumn = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 00:00 PDT, the day DST ends
    assert seconds_until_reset(autumn) == 25 * 3600


def test_reserve_refuses_before_the_bucket_would_go_over() -> None:
    clock = FakeClock(datetime(2026, 6, 2, 3, 0, tzinfo=UTC))
    ledger = InMemoryQuotaLedger(clock=clock)
    assert ledger.reserve("UCa", UNITS, 9_940) == 9_940
    assert ledger.reserve("UCa", UNITS, 50) == 9_990
    with pytest.raises(QuotaExhausted) as refused:
        ledger.reserve("UCa", UNITS, 50)  # 10,040 would be over 10,000
    # nothing was taken by the refused call: the last 10 units are still there
    assert ledger.used("UCa", UNITS) == 9_990
    assert ledger.reserve("UCa", UNITS, 10) == 10_000
    with pytest.raises(QuotaExhausted):
        ledger.reserve("UCa", UNITS, 1)
    error = refused.value
    assert isinstance(error, RateLimited) and error.retryable
    assert error.retry_after == seconds_until_reset(clock.now) == 4 * 3600
    assert "midnight Pacific" in (error.hint or "")
    assert error.code == "quota:units"


def test_buckets_and_accounts_are_counted_apart() -> None:
    ledger = InMemoryQuotaLedger(limits={UPLOADS: 2})
    ledger.reserve_call("UCa", "videos.insert")
    ledger.reserve_call("UCa", "videos.insert")
    with pytest.raises(QuotaExhausted):
        ledger.reserve_call("UCa", "videos.insert")
    assert ledger.reserve_call("UCa", "videos.list") == 1  # the units bucket is untouched
    assert ledger.reserve_call("UCb", "videos.insert") == 1  # another account
    assert ledger.remaining("UCa", UNITS) == 9_999


def test_a_new_pacific_day_starts_from_zero() -> None:
    clock = FakeClock(datetime(2026, 6, 2, 6, 30, tzinfo=UTC))  # 23:30 PDT
    ledger = InMemoryQuotaLedger(limits={UPLOADS: 1}, clock=clock)
    ledger.reserve("UCa", UPLOADS)
    with pytest.raises(QuotaExhausted) as refused:
        ledger.reserve("UCa", UPLOADS)
    assert refused.value.retry_after == 30 * 60
    clock.now += timedelta(minutes=31)
    assert ledger.reserve("UCa", UPLOADS) == 1


def test_exhaust_records_the_apis_own_refusal() -> None:
    ledger = InMemoryQuotaLedger()
    ledger.reserve("UCa", UNITS, 3)
    ledger.exhaust("UCa", UNITS)
    assert ledger.remaining("UCa", UNITS) == 0
    with pytest.raises(QuotaExhausted):
        ledger.reserve("UCa", UNITS, 1)


def test_bad_arguments_are_refused_clearly() -> None:
    ledger = InMemoryQuotaLedger()
    with pytest.raises(ValueError, match="at least 1"):
        ledger.reserve("UCa", UNITS, 0)
    with pytest.raises(KeyError, match="unknown quota bucket 'nope'"):
        ledger.reserve("UCa", "nope")


@pytest.fixture
def redis_clients(redis_server: RedisServer) -> Iterator[list[redis_lib.Redis]]:
    """Two separate clients of the private Redis, closed afterwards."""
    clients = [redis_lib.Redis.from_url(redis_server.url) for _ in range(2)]
    yield clients
    for client in clients:
        client.close()


def test_redis_ledger_shared_by_two_clients_never_double_spends(
    redis_clients: list[redis_lib.Redis],
) -> None:
    prefix = f"test-quota-{uuid.uuid4().hex[:8]}"
    ledgers: list[QuotaLedger] = [
        RedisQuotaLedger(client, prefix=prefix, limits={UPLOADS: 100}) for client in redis_clients
    ]
    taken: list[int] = []
    refused: list[QuotaExhausted] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def spend(ledger: QuotaLedger) -> None:
        start.wait()
        for _ in range(40):
            try:
                used = ledger.reserve("UCshared", UPLOADS)
            except QuotaExhausted as exc:
                with lock:
                    refused.append(exc)
            else:
                with lock:
                    taken.append(used)

    threads = [threading.Thread(target=spend, args=(ledgers[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # 8 threads x 40 attempts = 320 against a limit of 100: exactly 100 succeed, each one
    # seeing a different count, and both clients agree on the total.
    assert sorted(taken) == list(range(1, 101))
    assert len(refused) == 220
    assert ledgers[0].used("UCshared", UPLOADS) == ledgers[1].used("UCshared", UPLOADS) == 100


def test_redis_counter_expires_an_hour_after_its_pacific_day(
    redis_clients: list[redis_lib.Redis],
) -> None:
    prefix = f"test-quota-{uuid.uuid4().hex[:8]}"
    # One instant for the ledger and the test: near midnight Pacific time, two readings of
    # the system clock can fall on two quota days.  (Real time: Redis expires keys by it.)
    now = datetime.now(UTC)
    ledger = RedisQuotaLedger(redis_clients[0], prefix=prefix, clock=lambda: now)
    ledger.reserve("UCa", UNITS, 7)
    key = ledger.key("UCa", UNITS, quota_day(now))
    expires_at = ledger.client.expiretime(key)
    assert expires_at == int((next_reset(now) + timedelta(hours=1)).timestamp())
    ledger.exhaust("UCa", UNITS)
    assert int(ledger.client.get(key) or 0) == 10_000
    with pytest.raises(QuotaExhausted):
        ledger.reserve("UCa", UNITS, 1)


def test_ledger_from_settings_uses_redis_when_configured(redis_server: RedisServer) -> None:
    assert isinstance(ledger_from_settings(Settings()), InMemoryQuotaLedger)
    shared = ledger_from_settings(Settings(redis_url=redis_server.url))
    assert isinstance(shared, RedisQuotaLedger)
    assert shared.client.ping()
    shared.client.close()
