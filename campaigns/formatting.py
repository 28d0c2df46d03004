"""Formatting helpers that campaign templates call: Thai dates, numbers and tracked links.

Thai month and weekday names are data (below), so no locale has to be installed on the
machine.  The Buddhist-era year is the Gregorian year plus 543.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from channels import registry
from marketing.thai import BUDDHIST_ERA_OFFSET
from marketing.thai import DIGITS as _THAI_DIGITS
from marketing.thai import MONTHS as THAI_MONTHS
from marketing.thai import MONTHS_SHORT as THAI_MONTHS_SHORT
from marketing.thai import WEEKDAYS as THAI_WEEKDAYS

DATE_STYLES = ("long", "short", "full")


@lru_cache(maxsize=4096)
def thai_date(
    value: date | datetime,
    style: str = "long",
    *,
    be: bool = True,
    time: bool = False,
    zone: ZoneInfo | None = None,
    thai_digits: bool = False,
) -> str:
    """A date in Thai: ``long`` 13 เมษายน 2570, ``short`` 13 เม.ย. 2570, ``full``
    วันอังคารที่ 13 เมษายน พ.ศ. 2570; ``be=False`` gives the Gregorian year (ค.ศ.), ``time``
    appends เวลา 10:00 น.  An aware datetime is shown in ``zone`` when one is given."""
    if style not in DATE_STYLES:
        raise ValueError(f"unknown date style {style!r}; use one of {', '.join(DATE_STYLES)}")
    if isinstance(value, datetime) and zone is not None and value.tzinfo is not None:
        value = value.astimezone(zone)
    day = value.date() if isinstance(value, datetime) else value
    year = day.year + BUDDHIST_ERA_OFFSET if be else day.year
    if style == "short":
        text = f"{day.day} {THAI_MONTHS_SHORT[day.month - 1]} {year}"
    elif style == "full":
        era = "พ.ศ." if be else "ค.ศ."
        text = (
            f"วัน{THAI_WEEKDAYS[day.weekday()]}ที่ {day.day} {THAI_MONTHS[day.month - 1]} {era} {year}"
        )
    else:
        text = f"{day.day} {THAI_MONTHS[day.month - 1]} {year}"
    if time:
        if not isinstance(value, datetime):
            raise ValueError("time=true needs a date with a time of day")
        text += f" เวลา {value:%H:%M} น."
    return text.translate(_THAI_DIGITS) if thai_digits else text


def number(
    value: int | float | Decimal | str, decimals: int = 0, *, thai_digits: bool = False
) -> str:
    """``1234567`` -> ``1,234,567``; ``decimals`` places after the point; Thai digits on request."""
    if isinstance(value, str):
        value = Decimal(value.replace(",", "").strip())
    if not 0 <= decimals <= 10:
        raise ValueError("decimals must be between 0 and 10")
    text = f"{value:,.{decimals}f}"
    return text.translate(_THAI_DIGITS) if thai_digits else text


@lru_cache(maxsize=65536)
def tracked_url(url: str, *, channel: str, campaign: str, community: str) -> str:
    """``url`` with the UTM parameters of ``channel`` (replacing any it had); links that are not
    http(s) -- mailto:, tel: -- come back unchanged."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return url
    spec = registry.spec_for(channel)
    ours = {
        "utm_source": spec.utm_source,
        "utm_medium": spec.utm_medium,
        "utm_campaign": campaign,
        "utm_content": community,
    }
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    query = urlencode([*kept, *ours.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))
