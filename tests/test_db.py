"""Shared database behaviour: UTC times everywhere, and write locks for claims."""

from __future__ import annotations

import threading
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
    """Two claimers never both read a free row: the second waits for the first to commit.

    The first claimer keeps its transaction open until the second has started and, had
    nothing serialised them, read the row too (a bounded wait: with serialisation that read
    cannot happen, so the bound is what ends the wait)."""
    with session_scope(engine) as s:
        s.add(Heartbeat(component="claim", detail={"owner": None}))
    winners: list[str] = []
    first_inside, second_started, second_read = (threading.Event() for _ in range(3))

    def claim(name: str) -> None:
        if name == "second":
            second_started.set()
        with write_session(engine) as s:
            query = select(Heartbeat).where(Heartbeat.component == "claim")
            if engine.dialect.name != "sqlite":
                query = query.with_for_update()
            row = s.scalars(query).one()
            if name == "first":
                first_inside.set()
                assert second_started.wait(30), "the second claimer never started"
                second_read.wait(2)
            else:
                second_read.set()
            if row.detail.get("owner") is None:
                row.detail = {"owner": name}
                winners.append(name)

    first = threading.Thread(target=claim, args=("first",))
    first.start()
    assert first_inside.wait(30), "the first claimer never got the row"
    second = threading.Thread(target=claim, args=("second",))
    second.start()
    for thread in (first, second):
        thread.join(60)
    assert winners == ["first"], f"expected only the first claimer to win, saw {winners}"
