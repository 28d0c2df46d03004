"""The web app for the marketing staff: pages in Thai (English per user), the email tracking
endpoints and a JSON API, on the same database and functions as the command line.

:func:`create_app` builds it; ``marketing serve`` runs it.  See docs/web.md.
"""

from __future__ import annotations

from marketing.web.app import create_app

__all__ = ["create_app"]
