"""The ``marketing`` command: one group, one module per area (db, communities, ...)."""

from __future__ import annotations

from marketing.cli import communities, db
from marketing.cli.base import main

main.add_command(db.db)
main.add_command(communities.communities)

__all__ = ["main"]
