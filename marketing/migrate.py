"""Database migrations (Alembic), shipped inside the package and run by ``marketing db``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from marketing.db import get_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs the packaged migrations on ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return config


def upgrade(engine: Engine | None = None, revision: str = "head") -> None:
    """Create or upgrade the database to ``revision``."""
    engine = engine or get_engine()
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if connection.dialect.name == "sqlite" and revision == "head":
            # A later migration that rebuilt a table (SQLite's batch mode) dropped its
            # search triggers: made again, and that table's index filled afresh.
            from marketing.search import install_sqlite_index

            install_sqlite_index(connection)


def current_revision(engine: Engine | None = None) -> str | None:
    """The revision the database is at (None: never migrated)."""
    engine = engine or get_engine()
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of the code."""
    script = ScriptDirectory.from_config(alembic_config(get_engine("sqlite://")))
    return script.get_current_head()


def revision(message: str) -> None:
    """Write a new migration with what the models have and the migrations lack (development).

    Compares against a scratch SQLite database built from the existing migrations.
    """
    import tempfile

    from marketing.db import make_engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scratch.sqlite3")
        upgrade(engine)
        config = alembic_config(engine)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.revision(config, message=message, autogenerate=True)
        engine.dispose()
