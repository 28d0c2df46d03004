"""Best-time schedules: each community's post goes out in the hour block its own figures say
works best, within the campaign window and outside quiet hours -- and the choice keeps
exploring.

A campaign asks for it with ``schedule: {best_time: {per: week, min_gap: 2h}}``.  The window
is cut into periods (local days or Monday-to-Sunday weeks); each community gets one post per
channel per period, whose occurrence key is the period's (``week-2027-03-01``, or the date),
so re-planning finds the same post again.

How a slot is chosen (pure; the figures arrive as a :class:`BestTimeSnapshot`, built by the
caller -- ``marketing.besttimes.schedule_snapshot`` -- so this package reads no model):

1. The candidate times of a period are every :data:`SLOT_STEP` of local wall time inside the
   period and the window, not before ``now`` and not in quiet hours, grouped by the
   two-hour block of the week they fall in.
2. One draw from each allowed block's posterior (Thompson sampling, :func:`draw_order`), best
   draw first: mostly the block the community does best in, sometimes one the model is
   unsure of, so the model keeps learning instead of locking onto its first guess.
3. In that order, the first candidate at least ``min_gap`` away from every other post on the
   same social account (a programme-wide Page carries many communities' posts; posts of
   other campaigns count too) is taken.  E-mail has no gap: each community's letter goes to
   its own subscribers.

Determinism: each draw uses its own generator seeded from ``(seed, campaign, community,
channel, period)``, so the plan does not depend on the order of the work, and the same seed
and figures give the same plan.  Re-planning keeps a post's time when the post can no longer
change (claimed, published...) and also while it is still waiting and its time is still
allowed; so an approver sees what was applied, and posts already claimed never move.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BLOCK_HOURS = 2
BLOCKS_PER_DAY = 24 // BLOCK_HOURS
BLOCKS = 7 * BLOCKS_PER_DAY
SLOT_STEP = timedelta(minutes=15)
PERIODS = ("day", "week")

Posterior = tuple[float, float]
"""A block's engagement rate as the model believes it: (mean, standard deviation)."""

UNIFORM: tuple[Posterior, ...] = ((1.0, 1.0),) * BLOCKS
"""No figure anywhere: every block alike, drawn evenly."""


def block_of(moment: datetime, zone: str | ZoneInfo) -> int:
    """The hour-of-week block ``moment`` falls in, in ``zone`` (0 = Monday 00:00-02:00)."""
    local = moment.astimezone(zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone))
    return local.weekday() * BLOCKS_PER_DAY + local.hour // BLOCK_HOURS


def draw_order(
    blocks: Sequence[Posterior], allowed: Iterable[int], rng: random.Random
) -> list[int]:
    """``allowed`` blocks by one draw from each one's posterior, best draw first (Thompson
    sampling: the first is the block to try)."""
    draws = [(b, rng.gauss(*blocks[b])) for b in allowed]
    return [b for b, _ in sorted(draws, key=lambda item: -item[1])]


@dataclass(frozen=True)
class ChannelTimes:
    """One community's posterior per block on one channel."""

    blocks: tuple[Posterior, ...]  # BLOCKS entries, Monday 00:00 first
    source: str = "own"  # "own" figures, the "programme" pattern, or "none" (drawn evenly)


@dataclass(frozen=True)
class BestTimeSnapshot:
    """The figures a best-time schedule draws from, taken once before planning."""

    communities: Mapping[tuple[int, str], ChannelTimes] = field(default_factory=dict)
    programme: Mapping[str, ChannelTimes] = field(default_factory=dict)  # by channel kind

    def times_for(self, community_id: int, channel: str) -> ChannelTimes:
        """The community's own figures, else the programme's pattern, else even draws."""
        found = self.communities.get((community_id, channel))
        if found is not None:
            return found
        pattern = self.programme.get(channel)
        if pattern is not None:
            return ChannelTimes(pattern.blocks, source="programme")
        return ChannelTimes(UNIFORM, source="none")


BestTimeSource = Callable[[], BestTimeSnapshot]
"""Gives the snapshot when (and only when) a campaign asks for best times."""


@dataclass(frozen=True)
class BestTimeRule:
    """What ``schedule.best_time`` asks for."""

    per: str  # "day" or "week"
    min_gap: timedelta
    quiet_start: time | None = None  # quiet hours, local (start after end spans midnight)
    quiet_end: time | None = None

    def quiet(self, clock: time) -> bool:
        if self.quiet_start is None or self.quiet_end is None:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= clock < self.quiet_end
        return clock >= self.quiet_start or clock < self.quiet_end


@dataclass(frozen=True)
class Period:
    """One day or week of the window: a community's post of a channel goes in it."""

    key: str
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive: the next period's start, or the window's end
    index: int


def periods(start: datetime, end: datetime, zone: ZoneInfo, per: str) -> list[Period]:
    """The days or weeks (Monday to Sunday, local) of the window ``start``..``end``."""
    first = start.astimezone(zone).date()
    if per == "week":
        first -= timedelta(days=first.weekday())
    step = timedelta(days=7 if per == "week" else 1)
    out: list[Period] = []
    day = first
    while True:
        begin = _at(day, time(0), zone)
        if begin > end:
            return out
        finish = _at(day + step, time(0), zone)
        key = f"week-{day.isoformat()}" if per == "week" else day.isoformat()
        out.append(Period(key, max(begin, start), min(finish, end), len(out) + 1))
        day += step


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock).replace(tzinfo=zone).astimezone(UTC)


def candidates(
    period: Period, *, zone: ZoneInfo, rule: BestTimeRule, not_before: datetime
) -> dict[int, list[datetime]]:
    """The period's allowed times by block, each block's in time order."""
    local = period.start.astimezone(zone).replace(tzinfo=None)
    step = SLOT_STEP.total_seconds()
    seconds = (local - datetime.combine(local.date(), time(0))).total_seconds()
    clock = local + timedelta(seconds=(-seconds) % step)
    out: dict[int, list[datetime]] = {}
    seen: set[datetime] = set()
    while True:
        moment = clock.replace(tzinfo=zone).astimezone(UTC)
        if moment >= period.end:
            break
        clock += SLOT_STEP
        if moment < period.start or moment < not_before or moment in seen:
            continue
        if rule.quiet(moment.astimezone(zone).time()):
            continue
        seen.add(moment)
        out.setdefault(block_of(moment, zone), []).append(moment)
    return out


def draw_seed(seed: int, *parts: str) -> random.Random:
    """The generator of one draw: seeded from ``seed`` and the draw's coordinates."""
    text = "\x1f".join((str(seed), *parts))
    return random.Random(int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8]))


class SlotBook:
    """Times already taken on each social account, to keep ``gap`` between posts."""

    def __init__(self, gap: timedelta) -> None:
        self.gap = gap
        self.taken: dict[int, list[datetime]] = {}

    def free(self, account: int, moment: datetime) -> bool:
        return all(abs(moment - other) >= self.gap for other in self.taken.get(account, ()))

    def take(self, account: int, moment: datetime) -> None:
        self.taken.setdefault(account, []).append(moment)


def choose_slot(
    times: ChannelTimes,
    allowed: Mapping[int, list[datetime]],
    *,
    rng: random.Random,
    free: Callable[[datetime], bool],
) -> datetime | None:
    """The first free time in the blocks in Thompson order; None if every one is taken."""
    for block in draw_order(times.blocks, sorted(allowed), rng):
        for moment in allowed[block]:
            if free(moment):
                return moment
    return None
