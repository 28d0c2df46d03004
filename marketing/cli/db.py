"""``marketing db``: create, upgrade and inspect the database."""

from __future__ import annotations

import click

from marketing.cli.base import console, friendly_errors
from marketing.db import get_engine
from marketing.settings import get_settings


@click.group()
def db() -> None:
    """Create, upgrade and inspect the database."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@friendly_errors
def upgrade(revision: str) -> None:
    """Create the database or upgrade it to the newest schema."""
    from marketing import migrate  # Alembic: only in these commands

    settings = get_settings()
    settings.ensure_data_dir()
    engine = get_engine()
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"Database {where} is already at revision {after}.")
    else:
        console.print(f"Database {where} upgraded from {before or 'empty'} to {after}.")


@db.command("current")
@friendly_errors
def current() -> None:
    """Show the database's revision and the newest one this code knows."""
    from marketing import migrate

    engine = get_engine()
    console.print(f"database: {migrate.current_revision(engine) or 'empty'}")
    console.print(f"code:     {migrate.head_revision()}")
