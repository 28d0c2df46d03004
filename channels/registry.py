"""The one place that lists the channels.  Adding a channel: one module, one entry here."""

from __future__ import annotations

from channels.base import Adapter
from channels.email import EmailLimits
from channels.facebook import FacebookLimits
from channels.youtube import YouTubeLimits

LIMITS: dict[str, type[Adapter]] = {
    cls.kind: cls for cls in (FacebookLimits, YouTubeLimits, EmailLimits)
}


def limits_for(kind: str) -> type[Adapter]:
    """The class that declares ``kind``'s limits and checks content against them."""
    try:
        return LIMITS[kind]
    except KeyError:
        raise KeyError(f"unknown channel {kind!r}; known: {', '.join(sorted(LIMITS))}") from None
