"""YouTube's daily quota, counted on our side so we stop before the API has to refuse.

Google's rules (developers.google.com/youtube/v3/determine_quota_cost):

- ``videos.insert`` and ``search.list`` have buckets of their own, 100 calls a day each by
  default, 1 per call;
- every other method draws on one bucket of 10,000 units a day: ``videos.list``,
  ``channels.list``, ``playlistItems.list`` cost 1, most writes 50; every request, even an
  invalid one, costs at least 1;
- the day resets at midnight Pacific time (America/Los_Angeles, so 23 or 25 hours long on
  the days the clocks change).

A :class:`QuotaLedger` keeps, per account and per bucket, what was spent today.
:meth:`QuotaLedger.reserve` takes units *before* a call and raises
:class:`~channels.errors.QuotaExhausted` (``retry_after`` = seconds to the reset) when the
call would take the bucket over its limit, so the API is never asked to refuse.  Spent units
are never given back: Google charges failed requests too.

Two ledgers: :class:`InMemoryQuotaLedger` (one process: tests, the demo) and
:class:`RedisQuotaLedger` (atomic, shared by every worker on every machine; its keys expire
after their day).  :func:`ledger_from_settings` picks one.

Redis keeps no copy on disk, so a restart forgets the day's spend.  A ledger given a
``seed`` (a :data:`QuotaSeed`: ``seed(account, bucket, day)`` -> units the durable record
says were spent that quota day) rebuilds a counter from it whenever the day's counter is
missing: after a restart, and at the start of each quota day.  The seeded value is written
only if the counter is still missing (inside the same Lua script that takes the units), so
two workers rebuilding at once never add their counts together nor overwrite units already
taken.  The seed must err on the side of "spent": calls whose outcome is unknown count.
This module knows no database; the composition root (``tasks/wiring.py``) passes the seed.

Google counts quota per Cloud project, not per channel: the ``account`` a ledger is keyed by
is whatever the caller passes (the adapter passes the channel id, or a project name when
several channels share one project).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from channels.errors import QuotaExhausted

if TYPE_CHECKING:
    import redis

PACIFIC = ZoneInfo("America/Los_Angeles")

UNITS = "units"
UPLOADS = "videos.insert"
SEARCHES = "search.list"

DEFAULT_LIMITS: Mapping[str, int] = {UNITS: 10_000, UPLOADS: 100, SEARCHES: 100}

#: The ``code`` of a ledger's own refusal starts with this (``quota:videos.insert``): a call
#: refused so was never made and spent nothing.
REFUSAL_CODE_PREFIX = "quota:"

#: ``seed(account, bucket, day)``: units of ``bucket`` that ``account`` spent on the quota
#: ``day`` (a Pacific date) according to a record that outlives the ledger, counting calls
#: whose outcome is unknown as spent.
QuotaSeed = Callable[[str, str, date], int]

# method -> (bucket, cost); the methods this service calls, and the writes it might call.
METHOD_COSTS: Mapping[str, tuple[str, int]] = {
    "videos.insert": (UPLOADS, 1),
    "search.list": (SEARCHES, 1),
    "videos.list": (UNITS, 1),
    "channels.list": (UNITS, 1),
    "playlistItems.list": (UNITS, 1),
    "playlists.list": (UNITS, 1),
    "videos.update": (UNITS, 50),
    "videos.delete": (UNITS, 50),
    "videos.rate": (UNITS, 50),
    "thumbnails.set": (UNITS, 50),
    "playlistItems.insert": (UNITS, 50),
    "playlistItems.delete": (UNITS, 50),
    "comments.insert": (UNITS, 50),
    "commentThreads.insert": (UNITS, 50),
}


def cost_of(method: str) -> tuple[str, int]:
    """The bucket ``method`` (``"videos.list"``) draws on and what one call costs there."""
    if method in METHOD_COSTS:
        return METHOD_COSTS[method]
    # Not in our table: list methods cost 1, writes mostly 50 (the page above).
    return (UNITS, 1) if method.endswith(".list") else (UNITS, 50)


def quota_day(moment: datetime) -> date:
    """The quota day (a date in Pacific time) that ``moment`` falls in."""
    return moment.astimezone(PACIFIC).date()


def next_reset(moment: datetime) -> datetime:
    """The next midnight in Pacific time after ``moment``, in UTC."""
    following = quota_day(moment) + timedelta(days=1)
    return datetime.combine(following, time(0), tzinfo=PACIFIC).astimezone(UTC)


def seconds_until_reset(moment: datetime) -> float:
    """Seconds from ``moment`` until the quota resets (next midnight Pacific time)."""
    return (next_reset(moment) - moment).total_seconds()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class QuotaLedger(ABC):
    """Units spent today per (account, bucket); refuses before a bucket would go over.

    ``seed``: rebuilds a day's counter that is missing (see the module's docstring); without
    one a missing counter starts from 0."""

    def __init__(
        self,
        *,
        limits: Mapping[str, int] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        seed: QuotaSeed | None = None,
    ) -> None:
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.clock = clock
        self.seed = seed

    def _seed_value(self, account: str, bucket: str, day: date) -> int:
        return max(int(self.seed(account, bucket, day)), 0) if self.seed else 0

    def limit(self, bucket: str) -> int:
        """The daily limit of ``bucket``."""
        try:
            return self.limits[bucket]
        except KeyError:
            raise KeyError(
                f"unknown quota bucket {bucket!r}; known: {', '.join(sorted(self.limits))}"
            ) from None

    def reserve(self, account: str, bucket: str, units: int = 1) -> int:
        """Units used in ``bucket`` today after taking ``units``; raises QuotaExhausted
        (nothing taken) when they would take the bucket over its daily limit."""
        if units < 1:
            raise ValueError(f"every request costs at least 1 unit, not {units}")
        limit = self.limit(bucket)
        now = self.clock()
        taken, used = self._take(account, bucket, quota_day(now), units, limit, now)
        if not taken:
            raise self._refusal(account, bucket, now, used=used, units=units, limit=limit)
        return used

    def reserve_call(self, account: str, method: str) -> int:
        """:meth:`reserve` what one call of ``method`` costs; units used afterwards."""
        bucket, units = cost_of(method)
        return self.reserve(account, bucket, units)

    def used(self, account: str, bucket: str) -> int:
        """Units spent in ``bucket`` today."""
        return self._used(account, bucket, quota_day(self.clock()))

    def remaining(self, account: str, bucket: str) -> int:
        """Units still available in ``bucket`` today."""
        return max(self.limit(bucket) - self.used(account, bucket), 0)

    def exhaust(self, account: str, bucket: str) -> None:
        """Record that the API itself said ``bucket`` is used up: refuse until the reset."""
        now = self.clock()
        self._fill(account, bucket, quota_day(now), self.limit(bucket), now)

    def _refusal(
        self, account: str, bucket: str, now: datetime, *, used: int, units: int, limit: int
    ) -> QuotaExhausted:
        reset = next_reset(now)
        return QuotaExhausted(
            f"YouTube quota {bucket!r} of {account} is spent for today: {used:,} of "
            f"{limit:,} used, {units:,} more needed",
            code=f"{REFUSAL_CODE_PREFIX}{bucket}",
            hint=f"it resets at midnight Pacific time ({reset:%Y-%m-%d %H:%M} UTC); the post "
            "is tried again then. Ask Google for more quota if this happens often.",
            retry_after=seconds_until_reset(now),
        )

    @staticmethod
    def _expiry(now: datetime) -> datetime:
        # A day's counter is kept an hour past its reset so a late reader still sees it.
        return next_reset(now) + timedelta(hours=1)

    @abstractmethod
    def _take(
        self, account: str, bucket: str, day: date, units: int, limit: int, now: datetime
    ) -> tuple[bool, int]:
        """Atomically add ``units`` unless that goes over ``limit``: (taken, used now)."""

    @abstractmethod
    def _used(self, account: str, bucket: str, day: date) -> int: ...

    @abstractmethod
    def _fill(self, account: str, bucket: str, day: date, limit: int, now: datetime) -> None:
        """Raise the day's counter to ``limit`` (never lower it)."""


class InMemoryQuotaLedger(QuotaLedger):
    """A ledger in this process's memory: for tests, the demo and a single worker (with a
    ``seed``, a restarted worker starts from the day's record, not from 0)."""

    def __init__(
        self,
        *,
        limits: Mapping[str, int] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        seed: QuotaSeed | None = None,
    ) -> None:
        super().__init__(limits=limits, clock=clock, seed=seed)
        self._counts: dict[tuple[str, str, date], int] = {}
        self._lock = threading.Lock()

    def _forget_old_days(self, day: date) -> None:
        for key in [k for k in self._counts if k[2] < day]:
            del self._counts[key]

    def _seeded(self, account: str, bucket: str, day: date) -> None:
        """Rebuild the day's counter unless it exists (the seed runs outside the lock; the
        first value stored wins, as with SET NX)."""
        key = (account, bucket, day)
        with self._lock:
            if key in self._counts:
                return
        value = self._seed_value(account, bucket, day)
        with self._lock:
            self._counts.setdefault(key, value)

    def _take(
        self, account: str, bucket: str, day: date, units: int, limit: int, now: datetime
    ) -> tuple[bool, int]:
        self._seeded(account, bucket, day)
        with self._lock:
            self._forget_old_days(day)
            used = self._counts.get((account, bucket, day), 0)
            if used + units > limit:
                return False, used
            self._counts[(account, bucket, day)] = used + units
            return True, used + units

    def _used(self, account: str, bucket: str, day: date) -> int:
        self._seeded(account, bucket, day)
        with self._lock:
            return self._counts.get((account, bucket, day), 0)

    def _fill(self, account: str, bucket: str, day: date, limit: int, now: datetime) -> None:
        with self._lock:
            key = (account, bucket, day)
            self._counts[key] = max(self._counts.get(key, 0), limit)


# KEYS[1] = the day's counter; ARGV = units, limit, expiry (UNIX seconds), seed.
# Read, compare and add in one script so two workers can never both take the last units.
# A missing counter starts from the seed, stored only because it is missing (SET NX in
# effect); an empty seed means "not computed yet": the script answers {-1, 0}, takes
# nothing, and the caller asks the seed and runs the script again with its value.
_TAKE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if not current then
  if ARGV[4] == '' then
    return {-1, 0}
  end
  current = ARGV[4]
  redis.call('SET', KEYS[1], current)
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
local used = tonumber(current)
local units = tonumber(ARGV[1])
if used + units > tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], units)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return {1, used}
"""

# KEYS[1] = the day's counter; ARGV = seed, expiry.  Store the seed if the counter is
# missing; answer the counter.
_SEED_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
  current = ARGV[1]
end
return tonumber(current)
"""

_FILL_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
"""


class RedisQuotaLedger(QuotaLedger):
    """A ledger in Redis, shared by every worker: one counter per account, bucket and day,
    changed only by Lua scripts (atomic), expiring an hour after its day is over, rebuilt
    from ``seed`` when missing (a Redis restart, a new day)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "marketing:youtube-quota",
        limits: Mapping[str, int] | None = None,
        clock: Callable[[], datetime] = _utcnow,
        seed: QuotaSeed | None = None,
    ) -> None:
        super().__init__(limits=limits, clock=clock, seed=seed)
        self.client = client
        self.prefix = prefix
        self._take_script = client.register_script(_TAKE_SCRIPT)
        self._fill_script = client.register_script(_FILL_SCRIPT)
        self._seed_script = client.register_script(_SEED_SCRIPT)

    def key(self, account: str, bucket: str, day: date) -> str:
        """The Redis key of one day's counter."""
        return f"{self.prefix}:{day.isoformat()}:{bucket}:{account}"

    def _take(
        self, account: str, bucket: str, day: date, units: int, limit: int, now: datetime
    ) -> tuple[bool, int]:
        expiry = int(self._expiry(now).timestamp())
        keys = [self.key(account, bucket, day)]
        # Without a seed a missing counter starts from 0 at once; with one, the database is
        # asked only when the script found the counter missing.
        seed = "" if self.seed else "0"
        result: Any = self._take_script(keys=keys, args=[units, limit, expiry, seed])
        if int(result[0]) == -1:
            seed = str(self._seed_value(account, bucket, day))
            result = self._take_script(keys=keys, args=[units, limit, expiry, seed])
        return int(result[0]) == 1, int(result[1])

    def _used(self, account: str, bucket: str, day: date) -> int:
        key = self.key(account, bucket, day)
        value: Any = self.client.get(key)
        if value is not None or self.seed is None:
            return int(value or 0)
        expiry = int(self._expiry(self.clock()).timestamp())
        stored: Any = self._seed_script(
            keys=[key], args=[self._seed_value(account, bucket, day), expiry]
        )
        return int(stored)

    def _fill(self, account: str, bucket: str, day: date, limit: int, now: datetime) -> None:
        expiry = int(self._expiry(now).timestamp())
        self._fill_script(keys=[self.key(account, bucket, day)], args=[limit, expiry])


class RedisSettings(Protocol):
    """Settings that may name a Redis (the service's settings are such)."""

    @property
    def effective_redis_url(self) -> str | None: ...


def ledger_from_settings(settings: RedisSettings, *, seed: QuotaSeed | None = None) -> QuotaLedger:
    """A Redis ledger when the settings name a Redis (``effective_redis_url``), otherwise an
    in-memory one (which only one process can respect: use Redis with several workers);
    either rebuilds a missing day from ``seed``."""
    url = settings.effective_redis_url
    if url is None:
        return InMemoryQuotaLedger(seed=seed)
    import redis as redis_lib

    return RedisQuotaLedger(redis_lib.Redis.from_url(url), seed=seed)
