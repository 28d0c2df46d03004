"""Report periods: whole local days, the period before, and how dates are shown to people.

A period is a closed range of the communities' *local* days (``CommunityPerformance.day`` is
already a local day), so "1-28 November" means the same days for every community.  The
previous period is the same number of days immediately before, which is what every
"change" in a report compares against.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from marketing.thai import BUDDHIST_ERA_OFFSET
from marketing.thai import MONTHS_SHORT as THAI_MONTHS

DEFAULT_DAYS = 28
# A year this large can only be a Buddhist-era year typed by a person (2400 BE = 1857 CE).
_BUDDHIST_YEAR_FLOOR = 2400


class Period(BaseModel):
    """A closed range of local days, ``start`` to ``end`` inclusive."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(
                f"the period ends ({self.end}) before it starts ({self.start}): "
                "give --from on or before --to"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def days(self) -> int:
        """How many days the period has."""
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(start=end - timedelta(days=self.days - 1), end=end)

    def each_day(self) -> list[date]:
        """Every day of the period, in order."""
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def utc_bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The period as a half-open range of aware times: [start 00:00, day after end 00:00)."""
        begin = datetime.combine(self.start, time.min, tzinfo=zone)
        after = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone)
        return begin, after


def last_days(*, today: date, days: int = DEFAULT_DAYS) -> Period:
    """The ``days`` days that end with ``today`` (today included: it is partly over)."""
    return Period(start=today - timedelta(days=days - 1), end=today)


def today_in(zone: ZoneInfo) -> date:
    """Today's date in ``zone``."""
    return datetime.now(zone).date()


def resolve_period(
    *,
    start: date | None,
    end: date | None,
    zone: ZoneInfo,
    days: int = DEFAULT_DAYS,
    today: date | None = None,
) -> Period:
    """The period a person asked for: both ends, one end and ``days``, or the last ``days``
    up to ``today`` (default: today in ``zone``)."""
    if start is not None and end is not None:
        return Period(start=start, end=end)
    if start is not None:
        return Period(start=start, end=start + timedelta(days=days - 1))
    return last_days(today=end or today or today_in(zone), days=days)


def parse_day(text: str) -> date:
    """A day typed by a person: ``YYYY-MM-DD`` or ``DD/MM/YYYY`` (as Thai staff write it,
    ``25/12/2569``); a Buddhist-era year (2400 or more) is read as such in either form."""
    iso = re.fullmatch(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*", text)
    thai = re.fullmatch(r"\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*", text)
    if iso is not None:
        year, month, day = (int(part) for part in iso.groups())
    elif thai is not None:
        day, month, year = (int(part) for part in thai.groups())
    else:
        raise ValueError(
            f"{text!r} is not a date: write it as DD/MM/YYYY or YYYY-MM-DD, "
            "e.g. 28/11/2569 or 2026-11-28"
        )
    if year >= _BUDDHIST_YEAR_FLOOR:
        year -= BUDDHIST_ERA_OFFSET
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date on the calendar ({exc})") from None


def thai_date(value: date, *, buddhist_era: bool) -> str:
    """``value`` as Thai staff write it: ``28 พ.ย. 2569`` (BE) or ``28 พ.ย. 2026``."""
    year = value.year + BUDDHIST_ERA_OFFSET if buddhist_era else value.year
    return f"{value.day} {THAI_MONTHS[value.month - 1]} {year}"


def short_date(value: date, *, buddhist_era: bool) -> str:
    """``value`` as ``28/11/2569`` (BE) or ``2026-11-28``, for tables and chart axes."""
    if buddhist_era:
        return f"{value.day:02d}/{value.month:02d}/{value.year + BUDDHIST_ERA_OFFSET}"
    return value.isoformat()
