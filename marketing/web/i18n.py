"""The interface language (Thai by default, English per user) and how times are shown.

Messages are written in English in the code and templates (gettext's convention) and
translated to Thai in ``translations/th/LC_MESSAGES/messages.po``, a catalog kept with Babel
(``babel.cfg`` beside this file says what is extracted; docs/web.md shows the commands).
The catalog is compiled in memory when first used, so no ``.mo`` file is shipped.
English needs no catalog: its messages are the msgids themselves.

Times are stored in UTC and shown in the configured zone (Asia/Bangkok); a user may prefer
Buddhist-era years (2569) or Common-era ones (2026).
"""

from __future__ import annotations

import gettext
from datetime import date, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from marketing.thai import BUDDHIST_ERA_OFFSET, parse_typed_day, typed_day
from marketing.thai import MONTHS as THAI_MONTHS_LONG
from marketing.thai import MONTHS_SHORT as THAI_MONTHS
from marketing.thai import WEEKDAYS_SHORT as THAI_WEEKDAYS

DEFAULT_LANGUAGE = "th"
LANGUAGES = {"th": "ไทย", "en": "English"}
CATALOGS = Path(__file__).with_name("translations")
ENGLISH_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
ENGLISH_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ENGLISH_MONTHS_LONG = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@cache
def translations(language: str, domain: str = "messages") -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (English and unknown languages: the msgids);
    ``domain`` ``messages`` is the web app's, ``cli`` the command line's."""
    po = CATALOGS / language / "LC_MESSAGES" / f"{domain}.po"
    if language == "en" or not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def language_of(preferred: str | None) -> str:
    """``preferred`` if the app speaks it, else Thai."""
    return preferred if preferred in LANGUAGES else DEFAULT_LANGUAGE


class Clock:
    """Shows dates and times to one person: their language, era and the service's zone."""

    def __init__(self, *, language: str, buddhist_era: bool, zone: ZoneInfo) -> None:
        self.language = language
        self.buddhist_era = buddhist_era
        self.zone = zone

    def year(self, value: int) -> int:
        return value + BUDDHIST_ERA_OFFSET if self.buddhist_era else value

    def day(self, value: date | None) -> str:
        """``28 พ.ย. 2569`` / ``28 Nov 2026``; empty for None."""
        if value is None:
            return ""
        months = THAI_MONTHS if self.language == "th" else ENGLISH_MONTHS
        return f"{value.day} {months[value.month - 1]} {self.year(value.year)}"

    def typed(self, value: date) -> str:
        """``value`` as this person types a day into a form: ``25/12/2569``."""
        return typed_day(value, buddhist_era=self.buddhist_era)

    def parse_typed(self, text: str) -> date:
        """A day this person typed (``dd/mm/yyyy`` in their era); ValueError if none."""
        return parse_typed_day(text, buddhist_era=self.buddhist_era)

    def weekday_day(self, value: date) -> str:
        """``จ. 28 พ.ย. 2569``."""
        names = THAI_WEEKDAYS if self.language == "th" else ENGLISH_WEEKDAYS
        return f"{names[value.weekday()]} {self.day(value)}"

    def month(self, value: date) -> str:
        """``พฤศจิกายน 2569`` / ``November 2026``."""
        months = THAI_MONTHS_LONG if self.language == "th" else ENGLISH_MONTHS_LONG
        return f"{months[value.month - 1]} {self.year(value.year)}"

    def weekdays(self) -> tuple[str, ...]:
        return THAI_WEEKDAYS if self.language == "th" else ENGLISH_WEEKDAYS

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.zone)

    def when(self, value: datetime | None) -> str:
        """An aware time in the zone, to the minute: ``28 พ.ย. 2569 10:00``; empty for None."""
        if value is None:
            return ""
        local = value.astimezone(self.zone)
        return f"{self.day(local.date())} {local:%H:%M}"

    def clock(self, value: datetime) -> str:
        """Just the local time of day: ``10:00``."""
        return f"{value.astimezone(self.zone):%H:%M}"
