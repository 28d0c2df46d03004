"""The web app for the marketing staff: pages in Thai (English per user), the email tracking
endpoints and a JSON API, on the same database and functions as the command line.

:func:`create_app` builds it; ``marketing serve`` runs it.  See docs/web.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketing.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that the command line's `marketing users ...` (which uses
    # marketing.web.staff) starts without loading the web framework.
    if name == "create_app":
        from marketing.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
