"""Fixtures shared by every test.

Database tests take the ``engine`` or ``session`` fixture and run twice: on SQLite and on
PostgreSQL (a database of its own per test run, dropped at the end).  Tests that need Celery
take ``redis_server`` (a private Redis on a free port) and start real workers with
``tests.support.services.CeleryWorker``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from marketing import migrate
from marketing.db import dispose_engines, get_engine, session_factory
from marketing.models import Base
from marketing.settings import reset_settings
from tests.support.media import install_shipped_media
from tests.support.services import PostgresDatabase, RedisServer

# No test reaches another machine: see tests/support/socket_guard.py.
pytest_plugins = ("tests.support.socket_guard",)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data folder (with the shipped media in its media folder) and
    no stray MARKETING_* settings."""
    for name in list(os.environ):
        if name.startswith("MARKETING_") and not name.startswith("MARKETING_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MARKETING_DATA_DIR", str(tmp_path / "data"))
    install_shipped_media(tmp_path / "data" / "media")
    reset_settings()
    yield
    reset_settings()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PostgresDatabase]:
    """One PostgreSQL database for the whole run, migrated once, dropped at the end."""
    database = PostgresDatabase().create()
    try:
        migrate.upgrade(get_engine(database.url))
        yield database
    finally:
        dispose_engines(close=True)
        database.drop()


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated, empty database on each backend; also set as MARKETING_DATABASE_URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.sqlite3'}"
        migrate.upgrade(get_engine(url))
    else:
        database: PostgresDatabase = request.getfixturevalue("pg_database")
        url = database.url
        _truncate_all(get_engine(url))
    monkeypatch.setenv("MARKETING_DATABASE_URL", url)
    reset_settings()
    yield url
    if request.param == "sqlite":
        get_engine(url).dispose()


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine)() as s:
        yield s


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()
