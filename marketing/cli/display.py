"""How the command line speaks to one person: language, calendar era and terminal width.

Thai with Buddhist-era years (2569) by default; English and the Common era (2026) by choice,
with ``marketing --lang en --era ce ...`` or ``MARKETING_LANGUAGE`` / ``MARKETING_ERA``.  The
era follows the language unless it is chosen too.  Words go through the same gettext catalogs
as the web app (:mod:`marketing.web.i18n`, domain ``cli``), dates through its :class:`Clock`.

Listings adapt to the terminal's width (:func:`marketing.tables.listing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from marketing.web.i18n import Clock

from marketing.tables import listing

__all__ = ["Display", "channel_word", "current", "listing", "resolve", "state_word"]

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


def state_word(state: str) -> str:
    """A post's state in the chosen language."""
    return current()._(STATES.get(state, state))


def N_(message: str) -> str:
    """Mark ``message`` for the catalog where it is translated later (``d._(message)``)."""
    return message


# Post states and account health as English msgids of the ``cli`` catalog.
STATES = {
    "scheduled": N_("scheduled"),
    "queued": N_("queued"),
    "publishing": N_("publishing"),
    "published": N_("published"),
    "failed": N_("failed"),
    "unconfirmed": N_("unconfirmed"),
    "needs_reconnect": N_("needs reconnecting"),
    "cancelled": N_("cancelled"),
    "ok": N_("ok"),
    "permission_lost": N_("permission lost"),
    "unknown": N_("unknown"),
}


def channel_word(channel: str) -> str:
    """A channel's name in the chosen language (from its spec)."""
    from channels import registry

    return registry.labels(current().language).get(channel, channel)
