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


@app.task(name="marketing.refresh_creators", time_limit=600, soft_time_limit=540)
def refresh_creators() -> dict[str, int]:
    """Read creators' videos' public statistics with the API key (nothing without one)."""
    from marketing.creators import refresh_creator_videos

    settings = get_settings()
    if settings.youtube_api_key is None:
        return {"videos": 0, "missing": 0, "calls": 0}
    with session_scope() as session:
        done = refresh_creator_videos(
            session=session,
            api_key=settings.youtube_api_key,
            root_url=settings.youtube_root_url,
            now=utcnow(),
        )
    return {"videos": done.videos, "missing": done.missing, "calls": done.calls}
