"""Schedules: when a campaign's posts go out.

A schedule is one of

* one-off times (``at``): aware datetimes, each optionally named by a key;
* a recurrence in the campaign's zone: an RFC 5545 ``RRULE`` or the simple ``every`` form
  (``weekly on monday 10:00``, ``daily at 09:00, 18:30``, ``monthly on 1, 15 at 10:00``);

optionally with quiet hours (``22:00``-``07:00``) whose occurrences are postponed to the end of
the quiet hours or skipped.  Recurrences are expanded in *local wall time* (10:00 stays 10:00
across a daylight-saving change) and every resulting time is converted to aware UTC and kept
only if it lies inside the campaign window.  :func:`expand` never returns a naive time or a
time outside the window.

Each occurrence has a key that stays the same when the time of day is edited: the local date
(``2027-04-13``, then ``2027-04-13#2`` for a second one that day), or the key a one-off time was
given.  Re-planning an edited campaign therefore *moves* a post instead of cancelling it and
creating another.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from channels.campaign_input import duration

MAX_OCCURRENCES = 10_000
"""More occurrences than this in one schedule is an error (a rule that runs away)."""

WEEKDAYS: dict[str, str] = {
    "monday": "MO",
    "mon": "MO",
    "tuesday": "TU",
    "tue": "TU",
    "wednesday": "WE",
    "wed": "WE",
    "thursday": "TH",
    "thu": "TH",
    "friday": "FR",
    "fri": "FR",
    "saturday": "SA",
    "sat": "SA",
    "sunday": "SU",
    "sun": "SU",
    "จันทร์": "MO",
    "อังคาร": "TU",
    "พุธ": "WE",
    "พฤหัส": "TH",
    "พฤหัสบดี": "TH",
    "ศุกร์": "FR",
    "เสาร์": "SA",
    "อาทิตย์": "SU",
}

_UNITS = {
    "day": "DAILY",
    "days": "DAILY",
    "daily": "DAILY",
    "week": "WEEKLY",
    "weeks": "WEEKLY",
    "weekly": "WEEKLY",
    "month": "MONTHLY",
    "months": "MONTHLY",
    "monthly": "MONTHLY",
    "วัน": "DAILY",
    "สัปดาห์": "WEEKLY",
    "เดือน": "MONTHLY",
}

_CLOCK = r"\d{1,2}:\d{2}"
_EVERY = re.compile(
    rf"""^(?:every\s+)?(?:(?P<interval>\d{{1,3}})\s+)?(?P<unit>[^\s\d,]+(?:(?:\s*,\s*|\s+and\s+)[^\s\d,]+)*)?
         (?:\s*\bon\s+(?P<on>.+?))?
         (?:\s+at)?\s+(?P<times>{_CLOCK}(?:\s*(?:,|\band\b)\s*{_CLOCK})*)$""",
    re.IGNORECASE | re.VERBOSE,
)
_FORBIDDEN_RRULE_PARTS = {
    "DTSTART": "the campaign window's start anchors the rule; remove DTSTART",
    "UNTIL": "the campaign window's end bounds the rule; remove UNTIL (or change the window)",
}
_TOO_FINE = {"SECONDLY", "MINUTELY"}


class ScheduleError(ValueError):
    """A schedule that cannot be read or expanded; the message says what to change."""


def parse_clock(text: str) -> time:
    """``"10:00"`` -> ``time(10, 0)``; raise ScheduleError for anything else."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ScheduleError(f"{text!r} is not a time of day; write it as HH:MM, e.g. 10:00")
    return time(int(match[1]), int(match[2]))


def _weekday(name: str) -> str | None:
    return WEEKDAYS.get(name.strip().removeprefix("วัน").strip())


def parse_every(text: str) -> tuple[str, ...]:
    """The RRULEs (one per time of day) that the simple ``every`` form ``text`` means."""
    match = _EVERY.match(text.strip())
    if not match:
        raise ScheduleError(
            f"cannot read every: {text!r}; write e.g. 'weekly on monday 10:00', "
            "'daily at 09:00, 18:30' or 'monthly on 1, 15 at 10:00'"
        )
    unit = (match["unit"] or "").lower().removeprefix("ทุก")  # ทุก: every
    on = [p.strip().lower() for p in re.split(r",|\band\b", match["on"] or "") if p.strip()]
    named = [p.strip() for p in re.split(r",|\band\b", unit) if p.strip()]
    if not unit and on:
        unit = "weekly"
    elif unit not in _UNITS and named and all(map(_weekday, named)):
        on, unit = [*named, *on], "weekly"  # "monday, thursday 10:00": weekly on those days
    freq = _UNITS.get(unit)
    if freq is None:
        raise ScheduleError(f"unknown unit {unit!r} in every: {text!r}; use day, week or month")
    interval = int(match["interval"] or 1)
    if interval < 1:
        raise ScheduleError("the interval must be 1 or more")
    by = ""
    if freq == "WEEKLY" and on:
        days = []
        for name in on:
            code = _weekday(name)
            if code is None:
                raise ScheduleError(f"{name!r} is not a day of the week")
            days.append(code)
        by = ";BYDAY=" + ",".join(dict.fromkeys(days))
    elif freq == "MONTHLY" and on:
        numbers = []
        for part in on:
            day = part.removeprefix("day").strip()
            if not day.isdigit() or not 1 <= int(day) <= 31:
                raise ScheduleError(f"{part!r} is not a day of the month (1-31)")
            numbers.append(day)
        by = ";BYMONTHDAY=" + ",".join(dict.fromkeys(numbers))
    elif on:
        raise ScheduleError(f"'on' works with weekly or monthly, not with {unit!r}")
    clocks = sorted({parse_clock(t) for t in re.split(r",|\band\b", match["times"])})
    return tuple(
        f"FREQ={freq};INTERVAL={interval}{by};BYHOUR={c.hour};BYMINUTE={c.minute};BYSECOND=0"
        for c in clocks
    )


def check_rrule(text: str) -> tuple[str, int | None]:
    """A single RRULE as written, checked: (rule without COUNT, COUNT or None)."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if "\n" in body or "\r" in body:
        raise ScheduleError(
            "write one RRULE on one line (a second rule or DTSTART line is not used)"
        )
    parts: list[str] = []
    count: int | None = None
    freq = None
    for part in body.split(";"):
        name, _, value = part.partition("=")
        name = name.partition(":")[0].strip().upper()  # DTSTART:2027... is written with ':'
        if name in _FORBIDDEN_RRULE_PARTS:
            raise ScheduleError(_FORBIDDEN_RRULE_PARTS[name])
        if name == "COUNT":
            if not value.strip().isdigit() or int(value) < 1:
                raise ScheduleError(f"COUNT={value} is not a positive number")
            count = min(int(value), MAX_OCCURRENCES + 1)
            continue
        if name == "FREQ":
            freq = value.strip().upper()
        parts.append(part)
    if freq in _TOO_FINE:
        raise ScheduleError(f"FREQ={freq} is too frequent for posts; the finest is HOURLY")
    rule = ";".join(parts)
    try:
        parsed = rrulestr(rule, dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ScheduleError(
            f"not a valid RRULE ({exc}); see RFC 5545, "
            "e.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0"
        ) from exc
    if not isinstance(parsed, rrule):
        raise ScheduleError("write one RRULE (no RDATE or EXDATE)")
    return rule, count


@dataclass(frozen=True)
class QuietHours:
    """Local times in which nothing is posted: ``start`` up to (not including) ``end``.
    ``start`` after ``end`` spans midnight (22:00-07:00)."""

    start: time
    end: time
    postpone: bool = True  # False: an occurrence in quiet hours is skipped

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ScheduleError("quiet hours start and end at the same time")

    def contains(self, clock: time) -> bool:
        """True if ``clock`` falls inside the quiet hours."""
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def release(self, local: datetime) -> datetime:
        """The first local time after ``local`` (which is inside) when posting may resume."""
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end)


@dataclass(frozen=True)
class Occurrence:
    """One time a campaign publishes."""

    key: str  # stable across edits of the time of day: the local date or the given key
    at: datetime  # aware UTC: when to publish (after quiet hours)
    nominal: datetime  # aware UTC: the time the schedule itself gives
    index: int  # 1-based position in the campaign's schedule
    # A best-time period's end (aware UTC, exclusive): ``at`` is then the period's start and
    # each community's own time inside it is chosen by :mod:`campaigns.besttime`.
    until: datetime | None = None


@dataclass(frozen=True)
class Schedule:
    """A campaign's schedule, ready to expand.  ``start``/``end`` bound it (inclusive)."""

    zone: ZoneInfo
    start: datetime
    end: datetime
    times: tuple[tuple[str | None, datetime], ...] = ()
    rules: tuple[str, ...] = ()
    count: int | None = None
    quiet: QuietHours | None = None

    def __post_init__(self) -> None:
        for moment in (self.start, self.end, *(t for _k, t in self.times)):
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise ScheduleError(f"{moment.isoformat()} has no time zone")


@dataclass(frozen=True)
class Expansion:
    """What a schedule expanded to, and what it left out."""

    occurrences: list[Occurrence]
    outside_window: list[int]  # indices of one-off times outside the window
    quiet_skipped: int  # occurrences dropped by quiet hours (skipped or postponed past the end)


def _localize(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def _rule_times(schedule: Schedule) -> Iterator[datetime]:
    start_local = schedule.start.astimezone(schedule.zone).replace(tzinfo=None)
    end_local = schedule.end.astimezone(schedule.zone).replace(tzinfo=None)
    # A day of slack on either side: the local wall clock and UTC disagree by the zone's
    # offset, and the exact window test is done in UTC below.
    anchor = start_local.replace(second=0, microsecond=0)
    bound = end_local + timedelta(days=1)
    iterators = []
    for body in schedule.rules:
        rule = rrulestr(body, dtstart=anchor)
        assert isinstance(rule, rrule)
        iterators.append(iter(rule.replace(until=bound)))
    merged = sorted({t for it in iterators for t in islice(it, MAX_OCCURRENCES + 2)})
    if schedule.count is not None:
        merged = merged[: schedule.count]
    for local in merged:
        yield _localize(local, schedule.zone)


def expand(schedule: Schedule) -> Expansion:
    """Every occurrence of ``schedule`` inside its window, in time order, in aware UTC."""
    zone = schedule.zone
    outside: list[int] = []
    nominal: list[tuple[str | None, datetime]] = []
    if schedule.times:
        for index, (key, moment) in enumerate(schedule.times):
            utc = moment.astimezone(UTC)
            if schedule.start <= utc <= schedule.end:
                nominal.append((key, utc))
            else:
                outside.append(index)
    else:
        nominal = [(None, t) for t in _rule_times(schedule) if schedule.start <= t <= schedule.end]
    if len(nominal) > MAX_OCCURRENCES:
        raise ScheduleError(
            f"the schedule has more than {MAX_OCCURRENCES:,} occurrences in the window; "
            "post less often or shorten the window"
        )
    nominal.sort(key=lambda item: item[1])
    per_day: dict[str, int] = {}
    occurrences: list[Occurrence] = []
    skipped = 0
    for position, (key, utc) in enumerate(nominal, start=1):
        local = utc.astimezone(zone)
        if key is None:
            day = local.date().isoformat()
            per_day[day] = per_day.get(day, 0) + 1
            key = day if per_day[day] == 1 else f"{day}#{per_day[day]}"
        at = utc
        if schedule.quiet is not None and schedule.quiet.contains(local.time()):
            if not schedule.quiet.postpone:
                skipped += 1
                continue
            at = _localize(schedule.quiet.release(local.replace(tzinfo=None)), zone)
            if at > schedule.end:
                skipped += 1
                continue
        occurrences.append(Occurrence(key=key, at=at, nominal=utc, index=position))
    return Expansion(occurrences, outside, skipped)


def parse_duration(text: str) -> timedelta:
    """``"90m"``, ``"2h"``, ``"1d"`` -> a timedelta; raise ScheduleError otherwise."""
    try:
        return duration(text)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from None
