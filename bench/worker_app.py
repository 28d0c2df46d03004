"""The Celery app the benchmark workers run: the production app (``tasks``, configured only by
``celeryconfig.py``) with one more task that does nothing, so Celery's own ceiling is
measured on the very worker, broker and settings that publish."""

from __future__ import annotations

import tasks
from tasks.app import app

__all__ = ["app", "noop", "tasks"]


@app.task(name="bench.noop", time_limit=30, soft_time_limit=20)  # type: ignore[untyped-decorator]
def noop() -> None:
    """Nothing: a message in, an acknowledgement out."""
