"""Thai calendar names and numerals, and days as people type them, in one place for campaigns,
reports and the web app."""

from __future__ import annotations

import re
from datetime import date

MONTHS = (
    "มกราคม",
    "กุมภาพันธ์",
    "มีนาคม",
    "เมษายน",
    "พฤษภาคม",
    "มิถุนายน",
    "กรกฎาคม",
    "สิงหาคม",
    "กันยายน",
    "ตุลาคม",
    "พฤศจิกายน",
    "ธันวาคม",
)
MONTHS_SHORT = (
    "ม.ค.",
    "ก.พ.",
    "มี.ค.",
    "เม.ย.",
    "พ.ค.",
    "มิ.ย.",
    "ก.ค.",
    "ส.ค.",
    "ก.ย.",
    "ต.ค.",
    "พ.ย.",
    "ธ.ค.",
)
WEEKDAYS = ("จันทร์", "อังคาร", "พุธ", "พฤหัสบดี", "ศุกร์", "เสาร์", "อาทิตย์")
WEEKDAYS_SHORT = ("จ.", "อ.", "พ.", "พฤ.", "ศ.", "ส.", "อา.")
BUDDHIST_ERA_OFFSET = 543  # 2026 CE is 2569 BE
DIGITS = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
_ARABIC = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")

_DAY = re.compile(r"^\s*(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})\s*$")
_ISO_DAY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def typed_day(value: date, *, buddhist_era: bool) -> str:
    """``value`` as a person types it: ``25/12/2569`` (Buddhist era) or ``25/12/2026``."""
    year = value.year + BUDDHIST_ERA_OFFSET if buddhist_era else value.year
    return f"{value.day:02d}/{value.month:02d}/{year}"


def parse_typed_day(text: str, *, buddhist_era: bool) -> date:
    """A day typed as ``dd/mm/yyyy`` in the reader's era (``25/12/2569`` or ``25/12/2026``;
    ``-`` or ``.`` also separate, Thai digits are read); an ISO ``2026-12-25`` (the app's
    own links) is read as it is.  ValueError if it is not a day of 1900-2100."""
    text = text.translate(_ARABIC)
    if _ISO_DAY.match(text):
        value = date.fromisoformat(text.strip())
    else:
        found = _DAY.match(text)
        if found is None:
            raise ValueError(f"{text!r} is not a day written dd/mm/yyyy")
        day, month, year = (int(part) for part in found.groups())
        if buddhist_era:
            year -= BUDDHIST_ERA_OFFSET
        value = date(year, month, day)  # ValueError for 31/04 and the like
    if not date(1900, 1, 1) <= value <= date(2100, 12, 31):
        raise ValueError(f"{text!r} is outside 1900-2100 (Common era)")
    return value
