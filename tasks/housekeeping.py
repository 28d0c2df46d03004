"""Small tasks that tell whether the pipeline is alive."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import func, select

from marketing.db import session_scope, utcnow
from marketing.models import Community, Heartbeat
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
