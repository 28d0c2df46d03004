"""Rate-limit state that every worker shares: channel usage reports and a token bucket per
channel account.

Two mechanisms keep publishing under a channel's limits.  Both mean something only when all
workers (processes and machines) see the same state, so each comes in-memory (tests, the
single-process demo) and Redis-backed (production; the Redis client is injected):

- :class:`UsageStore` keeps the latest :class:`Usage` a channel reported per account (for
  Facebook: the ``X-App-Usage``, ``X-Page-Usage`` and ``X-Business-Use-Case-Usage``
  headers), so an adapter can refuse *before* the channel has to.
- :class:`TokenBucket` spaces calls per account: ``acquire(key)`` takes a token and returns
  ``0.0``, or takes nothing and returns the seconds to wait before a token is free.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis


@dataclass(frozen=True)
class Usage:
    """One usage report: percentages of the allowance used (100 means throttled), and the
    seconds the channel says it will take to regain access (0: not throttled)."""

    call_count: float = 0.0
    total_cputime: float = 0.0
    total_time: float = 0.0
    regain_after: float = 0.0
    reported_at: datetime = datetime(1970, 1, 1, tzinfo=UTC)

    @property
    def percent(self) -> float:
        """The highest of the three percentages: the one that throttles first."""
        return max(self.call_count, self.total_cputime, self.total_time)

    def worst(self, other: Usage) -> Usage:
        """The usage that is closer to the limit, each figure taken at its maximum."""
        return Usage(
            call_count=max(self.call_count, other.call_count),
            total_cputime=max(self.total_cputime, other.total_cputime),
            total_time=max(self.total_time, other.total_time),
            regain_after=max(self.regain_after, other.regain_after),
            reported_at=max(self.reported_at, other.reported_at),
        )

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["reported_at"] = self.reported_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Usage:
        data = json.loads(text)
        data["reported_at"] = datetime.fromisoformat(data["reported_at"])
        return cls(**data)


class UsageStore(ABC):
    """The latest usage per account key; a report older than ``ttl`` is forgotten (the
    channel's window has moved on, and the next call brings a fresh report)."""

    def __init__(self, *, ttl: timedelta = timedelta(hours=1)) -> None:
        self.ttl = ttl

    @abstractmethod
    def record(self, key: str, usage: Usage) -> None:
        """Remember ``usage`` as the latest for ``key``."""

    @abstractmethod
    def latest(self, key: str) -> Usage | None:
        """The latest usage recorded for ``key`` within ``ttl``, or None."""


class MemoryUsageStore(UsageStore):
    """A usage store for one process."""

    def __init__(
        self,
        *,
        ttl: timedelta = timedelta(hours=1),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl=ttl)
        self._clock = clock
        self._items: dict[str, tuple[float, Usage]] = {}
        self._lock = threading.Lock()

    def record(self, key: str, usage: Usage) -> None:
        with self._lock:
            self._items[key] = (self._clock() + self.ttl.total_seconds(), usage)

    def latest(self, key: str) -> Usage | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, usage = item
            if self._clock() >= expires:
                del self._items[key]
                return None
            return usage


class RedisUsageStore(UsageStore):
    """A usage store in Redis, shared by every worker (one JSON string per key, with TTL)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "marketing:usage:",
        ttl: timedelta = timedelta(hours=1),
    ) -> None:
        super().__init__(ttl=ttl)
        self.client = client
        self.prefix = prefix

    def record(self, key: str, usage: Usage) -> None:
        milliseconds = max(int(self.ttl.total_seconds() * 1000), 1)
        self.client.set(self.prefix + key, usage.to_json(), px=milliseconds)

    def latest(self, key: str) -> Usage | None:
        raw = self.client.get(self.prefix + key)
        if raw is None:
            return None
        assert isinstance(raw, str | bytes)
        return Usage.from_json(raw)


class CachedUsageStore(UsageStore):
    """One process's window on a shared usage store, costing no round trip on most calls.

    A report read from ``shared`` (or recorded here) is trusted for ``fresh_for`` seconds;
    a report recorded here is written to ``shared`` only when it says something new -- its
    percentage moved by a whole point or more, or its time to regain access changed -- or
    when this process last wrote for that key ``rewrite_every`` seconds ago.  So another
    worker's report reaches this one at most ``fresh_for`` seconds late: usage moves over
    a channel's hour-long window, and the channel itself still refuses past its limit.
    """

    def __init__(
        self,
        shared: UsageStore,
        *,
        fresh_for: float = 1.0,
        rewrite_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl=shared.ttl)
        self.shared = shared
        self.fresh_for = fresh_for
        self.rewrite_every = rewrite_every
        self._clock = clock
        self._seen: dict[str, tuple[float, Usage | None]] = {}  # key -> (when, usage)
        self._written: dict[str, tuple[float, Usage]] = {}
        self._lock = threading.Lock()

    def record(self, key: str, usage: Usage) -> None:
        now = self._clock()
        with self._lock:
            self._seen[key] = (now, usage)
            written = self._written.get(key)
            if written is not None and now - written[0] < self.rewrite_every:
                before = written[1]
                if (
                    abs(usage.percent - before.percent) < 1
                    and usage.regain_after == before.regain_after
                ):
                    return
            self._written[key] = (now, usage)
        self.shared.record(key, usage)

    def latest(self, key: str) -> Usage | None:
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.fresh_for:
            return seen[1]
        usage = self.shared.latest(key)
        with self._lock:
            self._seen[key] = (now, usage)
        return usage


class TokenBucket(ABC):
    """A token bucket per key: ``capacity`` tokens, refilled at ``rate`` tokens a second.

    A full bucket lets ``capacity`` calls through at once; after that one call every
    ``1 / rate`` seconds.
    """

    def __init__(self, *, rate: float, capacity: float) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity

    @abstractmethod
    def acquire(self, key: str, tokens: float = 1.0) -> float:
        """Take ``tokens`` from ``key``'s bucket and return 0.0; or, when there are not
        enough, take nothing and return the seconds until there will be."""


# Refill is computed in floating point (and stored to the microsecond in Redis): a caller
# who waited exactly the time it was told must not be told to wait a further microsecond.
_EPSILON = 1e-6


class MemoryTokenBucket(TokenBucket):
    """A token bucket for one process; ``clock`` is injectable so tests need no sleeping."""

    def __init__(
        self,
        *,
        rate: float,
        capacity: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(rate=rate, capacity=capacity)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, key: str, tokens: float = 1.0) -> float:
        with self._lock:
            now = self._clock()
            level, at = self._buckets.get(key, (self.capacity, now))
            level = min(self.capacity, level + max(now - at, 0.0) * self.rate)
            if level >= tokens - _EPSILON:
                self._buckets[key] = (max(level - tokens, 0.0), now)
                return 0.0
            self._buckets[key] = (level, now)
            return (tokens - level) / self.rate


# Runs atomically in Redis, so workers on many machines draw from one bucket.  Time comes
# from the Redis server (TIME), not from the workers, whose clocks may disagree.  A Lua
# number returned to Redis is truncated to an integer, hence the string result.
_ACQUIRE_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local level = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
level = math.min(capacity, level + math.max(now - at, 0) * rate)
local wait = 0
if level >= wanted - 1e-6 then
  level = math.max(level - wanted, 0)
else
  wait = (wanted - level) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', level),
           'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return string.format('%.6f', wait)
"""


class RedisTokenBucket(TokenBucket):
    """A token bucket per key in Redis, updated by one atomic Lua script."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        rate: float,
        capacity: float,
        prefix: str = "marketing:bucket:",
    ) -> None:
        super().__init__(rate=rate, capacity=capacity)
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_ACQUIRE_LUA)

    def acquire(self, key: str, tokens: float = 1.0) -> float:
        result = self._script(keys=[self.prefix + key], args=[self.rate, self.capacity, tokens])
        if isinstance(result, bytes):
            result = result.decode()
        return float(result)
