"""Shared database behaviour: UTC times everywhere, and write locks for claims."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import StatementError

from marketing.db import session_scope, write_session
from marketing.models import Community, Heartbeat

BANGKOK = timezone(timedelta(hours=7))


def test_times_come_back_aware_utc(engine: Engine) -> None:
    local = datetime(2026, 12, 1, 10, 0, tzinfo=BANGKOK)
    with session_scope(engine) as s:
        s.add(Heartbeat(component="x", beat_at=local))
    with session_scope(engine) as s:
        row = s.get(Heartbeat, "x")
        assert row is not None
        assert row.beat_at.tzinfo is not None
        assert row.beat_at.utcoffset() == timedelta(0)
        assert row.beat_at == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_naive_times_are_refused(engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_scope(engine) as s:
        s.add(Heartbeat(component="x", beat_at=datetime(2026, 12, 1, 10, 0)))
        s.flush()


def test_thai_text_round_trips(engine: Engine) -> None:
    name = "ชุมชนผ้าทอบ้านดอยเงิน"
    with session_scope(engine) as s:
        s.add(Community(slug="c", name_th=name, name_en="C", province="น่าน", tags=["ผ้าทอ"]))
    with session_scope(engine) as s:
        c = s.scalars(select(Community)).one()
        assert (c.name_th, c.tags) == (name, ["ผ้าทอ"])


def test_write_sessions_are_serialised(engine: Engine) -> None:
    """Two claimers never both read a free row: the second waits for the first to commit."""
    with session_scope(engine) as s:
        s.add(Heartbeat(component="claim", detail={"owner": None}))
    winners: list[str] = []

    def claim(name: str) -> None:
        with write_session(engine) as s:
            query = select(Heartbeat).where(Heartbeat.component == "claim")
            if engine.dialect.name != "sqlite":
                query = query.with_for_update()
            row = s.scalars(query).one()
            if row.detail.get("owner") is None:
                time.sleep(0.3)  # widen the race window
                row.detail = {"owner": name}
                winners.append(name)

    threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
