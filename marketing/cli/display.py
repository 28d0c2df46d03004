"""How the command line speaks to one person: language, calendar era and terminal width.

Thai with Buddhist-era years (2569) by default; English and the Common era (2026) by choice,
with ``marketing --lang en --era ce ...`` or ``MARKETING_LANGUAGE`` / ``MARKETING_ERA``.  The
era follows the language unless it is chosen too.  Words go through the same gettext catalogs
as the web app (:mod:`marketing.web.i18n`, domain ``cli``), dates through its :class:`Clock`.

Tables adapt to the terminal: below :data:`NARROW` columns a listing becomes one "card" per
row (label, value), so slugs -- what one types next -- are never cut, and Thai names wrap
between words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

import click
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from marketing.web.i18n import Clock

# Below this many columns a listing is drawn as cards instead of a table.
NARROW = 100
LANGUAGES = ("th", "en")
ERAS = ("be", "ce")


@dataclass(frozen=True)
class Display:
    """One person's choices: ``language`` (th/en) and ``buddhist_era``."""

    language: str
    buddhist_era: bool

    @cached_property
    def _catalog(self) -> object:
        from marketing.web.i18n import translations

        return translations(self.language, domain="cli")

    def _(self, message: str) -> str:
        """``message`` (English, the msgid) in the chosen language."""
        return str(self._catalog.gettext(message))  # type: ignore[attr-defined]

    @cached_property
    def clock(self) -> Clock:
        from marketing.settings import get_settings
        from marketing.web.i18n import Clock

        return Clock(
            language=self.language, buddhist_era=self.buddhist_era, zone=get_settings().zone
        )

    def when(self, moment: datetime | None) -> str:
        """A time as staff read it, in the configured zone to the minute; ``—`` for None."""
        return self.clock.when(moment) if moment is not None else "—"

    @property
    def en(self) -> bool:
        return self.language == "en"


def resolve(language: str | None, era: str | None) -> Display:
    """The choices given on the command line, else in the settings (environment), else Thai."""
    if language is None or era is None:
        from marketing.settings import get_settings

        settings = get_settings()
        language = language or settings.language
        era = era or settings.era
    buddhist = era == "be" if era else language == "th"
    return Display(language=language, buddhist_era=buddhist)


def current() -> Display:
    """The :class:`Display` of the running command (Thai, Buddhist era outside one)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return resolve(None, None)
    root = ctx.find_root()
    found = root.meta.get("marketing.display")
    if not isinstance(found, Display):
        found = resolve(root.params.get("language"), root.params.get("era"))
        root.meta["marketing.display"] = found
    return found


def listing(
    console: Console,
    *,
    title: str,
    headings: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    keys: Sequence[int] = (0,),
    numeric: Sequence[int] = (),
) -> RenderableType:
    """``rows`` under ``headings`` as a table when the terminal is wide enough, else as one
    card per row.  Columns ``keys`` (slugs, ids) never wrap or shrink; ``numeric`` ones are
    right-aligned and never cut; the others wrap between words (``fold`` for a long URL)."""
    if console.width >= NARROW:
        table = Table(title=title, title_justify="left")
        for index, heading in enumerate(headings):
            if index in keys or index in numeric:
                table.add_column(
                    heading,
                    no_wrap=True,
                    justify="right" if index in numeric else "left",
                    min_width=max((_cells(row[index]) for row in rows), default=1),
                )
            else:
                table.add_column(heading, overflow="fold", ratio=1)
        for row in rows:
            table.add_row(*row)
        return table
    cards: list[RenderableType] = [Text(title, style="bold")]
    width = max(_cells(Text(h)) for h in headings)
    for row in rows:
        card = Table(
            box=box.SIMPLE, show_header=False, pad_edge=False, padding=(0, 1), expand=False
        )
        card.add_column(style="dim", no_wrap=True, min_width=min(width, console.width // 3))
        card.add_column(overflow="fold")
        for index, (heading, value) in enumerate(zip(headings, row, strict=True)):
            if index not in keys and not (value.plain if isinstance(value, Text) else value):
                continue
            card.add_row(heading, value)
        cards.append(card)
    return Group(*cards)


def _cells(value: str | Text) -> int:
    return Text.from_markup(value).cell_len if isinstance(value, str) else value.cell_len
