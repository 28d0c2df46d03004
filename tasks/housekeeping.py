"""Small tasks that keep the pipeline tidy: signs of life, and tracking kept no longer than
the retention time."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from marketing.db import get_engine, session_scope, utcnow
from marketing.models import Community, Heartbeat
from marketing.settings import get_settings
from tasks.app import app


def record_heartbeat(component: str, **detail: Any) -> None:
    """Note that ``component`` is alive now (an upsert of one row)."""
    with session_scope() as session:
        row = session.get(Heartbeat, component)
        if row is None:
            row = Heartbeat(component=component)
            session.add(row)
        row.beat_at = utcnow()
        row.detail = {"host": socket.gethostname(), **detail}


@app.task(name="marketing.ping", time_limit=30, soft_time_limit=20)
def ping() -> dict[str, int]:
    """Prove a worker can reach the database: record a heartbeat with the community count."""
    with session_scope() as session:
        count = session.scalar(select(func.count()).select_from(Community)) or 0
    record_heartbeat("worker", communities=count)
    return {"communities": count}


@app.task(name="marketing.purge_tracking", time_limit=1800, soft_time_limit=1700)
def purge_tracking() -> dict[str, int]:
    """Count e-mail events older than the retention time into the daily tallies, then delete
    them (:func:`marketing.privacy.purge_tracking_events`)."""
    from marketing.privacy import purge_tracking_events

    days = get_settings().tracking_retention_days
    deleted = purge_tracking_events(engine=get_engine(), older_than=timedelta(days=days))
    return {"deleted": deleted}
