"""Database engine, sessions and the column types every model shares.

SQLite is the embedded default and PostgreSQL the production database; the code is the same
for both.  Two things differ and are handled here, once:

* SQLite keeps no time zone, so :class:`UTCDateTime` stores naive UTC and hands back aware UTC.
* SQLAlchemy emits no ``FOR UPDATE`` on SQLite, so a claim there must take the write lock at
  ``BEGIN``: :func:`write_session` opens ``BEGIN IMMEDIATE`` on SQLite and an ordinary
  transaction (in which the caller uses ``with_for_update(skip_locked=True)``) on PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from marketing.settings import get_settings

_IMMEDIATE = "marketing_sqlite_immediate"

log = logging.getLogger(__name__)
T = TypeVar("T")


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give it a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN is ours to emit.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A new engine for ``url`` with the SQLite behaviour described above.  Statement
    parameters are kept out of error messages and logs (``hide_parameters``): they are
    subscribers' names and addresses, and errors end up in tracebacks and log files."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
    else:
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


_engines: dict[tuple[str, bool], Engine] = {}
_lock = threading.Lock()


def get_engine(url: str | None = None, *, pre_ping: bool = True) -> Engine:
    """The process's engine for ``url`` (default: the configured database), made once.

    ``pre_ping=False`` (a server database only; SQLite has one engine): a second pool whose
    checkouts do not first ask the server whether the connection is still alive -- one round
    trip less each time.  Its callers must expect a statement to fail on a connection the
    server dropped, and repeat what can be repeated (:func:`retry_on_disconnect`).
    """
    url = url or get_settings().effective_database_url
    key = (url, pre_ping or url.startswith("sqlite"))
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
                from pathlib import Path

                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            options = {} if url.startswith("sqlite") else {"pool_pre_ping": pre_ping}
            engine = _engines[key] = make_engine(url, **options)
        return engine


def retry_on_disconnect(call: Callable[[], T]) -> T:
    """``call()``, and once more if it failed because the server had dropped the connection
    (SQLAlchemy then drops every pooled connection older than that, so the second try runs
    on a new one).  Only for work that is safe to repeat after a transaction whose COMMIT
    may or may not have reached the server."""
    try:
        return call()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("the database connection was dropped; trying once more on a new one")
        return call()


def dispose_engines(*, close: bool = False) -> None:
    """Forget every engine.  In a child after fork (the default) pooled connections are
    dropped without closing them, since they belong to the parent; ``close=True`` closes
    them (at the end of a process)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=close)
        _engines.clear()


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """A session maker bound to ``engine`` (default: :func:`get_engine`)."""
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success, rolls back on error and always closes."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def write_session(engine: Engine | None = None) -> Iterator[Session]:
    """Like :func:`session_scope`, but holds the write lock from the first statement.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time, so two
    claimers never read the same free row); on PostgreSQL callers lock rows with
    ``select(...).with_for_update(skip_locked=True)``.
    """
    with session_scope(engine) as session:
        if session.get_bind().dialect.name == "sqlite":
            session.connection(execution_options={_IMMEDIATE: True})
        yield session
