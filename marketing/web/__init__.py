"""The web app for the marketing staff: pages in Thai (English per user), the email tracking
endpoints and a JSON API, on the same database and functions as the command line.

:func:`create_app` builds it; ``marketing serve`` runs it (through :func:`serving_app`).
See docs/web.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from marketing.web.app import create_app

__all__ = ["create_app", "serving_app"]


def serving_app() -> Any:
    """The app as ``marketing serve`` runs it: :func:`create_app`, then every object made
    while starting (modules, routes, templates, the ORM's mappers) moved out of the garbage
    collector's sight with :func:`gc.freeze`.  Without it a full collection walks those
    hundreds of thousands of objects again and again; the report builders, which make many
    short-lived objects, paid about 100 ms for one in every second request (#19).  Only for
    the served process: the tests build many apps, and frozen objects are never collected."""
    import gc

    from marketing.web.app import create_app

    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def __getattr__(name: str) -> Any:
    # Imported on first use, so that the command line's `marketing users ...` (which uses
    # marketing.web.staff) starts without loading the web framework.
    if name == "create_app":
        from marketing.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
