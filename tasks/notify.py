"""Notifications: every minute, notice what needs staff and send the digests that are due
(the rules are in :mod:`marketing.notifications`)."""

from __future__ import annotations

from marketing.db import get_engine
from marketing.notifications import run
from tasks.app import app
from tasks.housekeeping import record_heartbeat


@app.task(name="marketing.send_notifications", time_limit=300, soft_time_limit=280)
def send_notifications() -> dict[str, int]:
    """Notice new events; claim and send every digest whose hour has ended."""
    result = run(engine=get_engine())
    record_heartbeat("notifications", sent=result.sent, failed=result.failed)
    return {
        "noticed": result.noticed,
        "sent": result.sent,
        "failed": result.failed,
        "unconfirmed": result.unconfirmed,
        "released": result.released,
    }
