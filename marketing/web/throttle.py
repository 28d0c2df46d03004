"""Sign-in throttling: failed sign-ins are counted per account and per client address, and
too many lock the account (or the address) out for a window that grows with the failures.

The counting is the ``limits`` library's fixed-window strategy on its storage: Redis when
``MARKETING_REDIS_URL`` (or a Redis broker) is configured, so every web process and machine
shares the counts, else memory (one process).  Each tier is a limit in ``limits``' notation::

    account: 5 per 5 minutes; 10 per hour; 20 per day
    address: 20 per 5 minutes; 60 per hour; 200 per day

so the fifth wrong password for a name locks that name until its 5-minute window ends, the
tenth until the hour's ends, the twentieth until the day's (UTC) ends -- from any address.
One address that tries many names is locked out the same way.  Unknown names are counted
like real ones, so a lockout tells nothing about which names exist.

Contract
    :meth:`SignInThrottle.begin` is called *before* the password is checked.  It refuses
    (:class:`SignInThrottled`, with the time to try again) without hashing anything while a
    tier is spent, and otherwise reserves one failure in every tier, atomically, so
    concurrent guesses cannot all slip through one remaining try.  A sign-in that then
    succeeds gives its reservation back (:meth:`Attempt.succeeded`); a failed one keeps it.

Time
    Windows are numbered from the injected clock (``floor(now / window)``) and the number
    is part of the key, so a test moves the clock instead of sleeping; the storage's own
    expiry (wall time, as long as a window) only clears old keys away.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from marketing.db import utcnow
from marketing.settings import Settings

ACCOUNT_LIMITS = "5 per 5 minutes; 10 per hour; 20 per day"
ADDRESS_LIMITS = "20 per 5 minutes; 60 per hour; 200 per day"
KEY_PREFIX = "marketing-sign-in"


class SignInThrottled(Exception):
    """Too many failed sign-ins for this name or from this address: try again at ``until``."""

    def __init__(self, until: datetime, scope: str) -> None:
        super().__init__(f"too many failed sign-ins ({scope}); try again at {until:%H:%M} UTC")
        self.until = until
        self.scope = scope


def address_key(host: str | None) -> str:
    """The client address as counted: an IPv4 address, or an IPv6 address's /64 network
    (one home or office gets a whole /64, so counting single IPv6 addresses counts nothing)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return (host or "unknown")[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def account_key(name: str) -> str:
    """The name tried, as counted: normalised like a user name, hashed to a bounded key."""
    return hashlib.sha256(name.strip().lower().encode("utf-8")).hexdigest()[:32]


@dataclass
class Attempt:
    """One sign-in under way, holding the failure it reserved in every tier."""

    throttle: SignInThrottle
    now: float
    keys: list[tuple[RateLimitItem, tuple[str, ...]]] = field(default_factory=list)

    def succeeded(self) -> None:
        """The password was right: give the reserved failures back."""
        self.throttle._give_back(self.keys)
        self.keys = []

    def failed(self) -> datetime | None:
        """The password was wrong: the reservation stands.  Returns when the lockout this
        failure started ends, or None if there is still a try left."""
        return self.throttle._locked_until(self.keys, self.now)


class SignInThrottle:
    """Counts failed sign-ins per name and per address; see the module's docstring."""

    def __init__(
        self,
        *,
        storage_uri: str = "memory://",
        clock: Callable[[], datetime] = utcnow,
        account_limits: str = ACCOUNT_LIMITS,
        address_limits: str = ADDRESS_LIMITS,
    ) -> None:
        options: dict[str, str | bool] = {"wrap_exceptions": True}
        if not storage_uri.startswith("memory"):
            options["key_prefix"] = KEY_PREFIX
        storage = storage_from_string(storage_uri, **options)
        if not isinstance(storage, Storage):  # an asyncio storage (async+redis://...)
            raise ValueError(f"{storage_uri!r}: the sign-in throttle needs a synchronous storage")
        self.storage = storage
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.clock = clock
        self.tiers = {"account": parse_many(account_limits), "address": parse_many(address_limits)}

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> SignInThrottle:
        """Redis when the settings name one (shared by every web process), else memory."""
        return cls(storage_uri=settings.effective_redis_url or "memory://", clock=clock)

    def _windows(
        self, *, name: str, address: str, now: float
    ) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        """Every (tier, key) this attempt counts against, in the windows ``now`` is in."""
        subjects = {"account": account_key(name), "address": address_key(address)}
        return [
            (item, ("sign-in", scope, subjects[scope], str(int(now // item.get_expiry()))))
            for scope, items in self.tiers.items()
            for item in items
        ]

    def _window_end(self, item: RateLimitItem, now: float) -> datetime:
        window = item.get_expiry()
        return datetime.fromtimestamp((now // window + 1) * window, tz=UTC)

    def _locked_until(
        self, keys: list[tuple[RateLimitItem, tuple[str, ...]]], now: float
    ) -> datetime | None:
        ends = [
            self._window_end(item, now) for item, ids in keys if not self.limiter.test(item, *ids)
        ]
        return max(ends) if ends else None

    def _give_back(self, keys: list[tuple[RateLimitItem, tuple[str, ...]]]) -> None:
        for item, ids in keys:
            self.storage.incr(item.key_for(*ids), item.get_expiry(), amount=-1)

    def begin(self, *, name: str, address: str) -> Attempt:
        """Reserve a failure for this attempt, or raise SignInThrottled (see the contract)."""
        now = self.clock().timestamp()
        windows = self._windows(name=name, address=address, now=now)
        spent = [(item, ids) for item, ids in windows if not self.limiter.test(item, *ids)]
        if not spent:
            attempt = Attempt(self, now)
            for item, ids in windows:
                attempt.keys.append((item, ids))
                if not self.limiter.hit(item, *ids):
                    # Stop at once: an increment that is given back later would still
                    # crowd a concurrent attempt out of the next tier meanwhile.
                    spent.append((item, ids))
                    break
            if not spent:
                return attempt
            attempt.succeeded()  # another attempt took the last try first: nothing counted
        until = max(self._window_end(item, now) for item, _ in spent)
        scope = "account" if any(ids[1] == "account" for _, ids in spent) else "address"
        raise SignInThrottled(until, scope)
