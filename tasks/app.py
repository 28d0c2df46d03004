"""The Celery application, configured only from ``celeryconfig.py``."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from marketing.db import dispose_engines

app = Celery("marketing")
app.config_from_object("celeryconfig")


@worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs: Any) -> None:
    # A forked child must never reuse the parent's pooled database connections.
    dispose_engines()
