"""The Celery application, configured only from ``celeryconfig.py``."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init

from marketing.db import dispose_engines

app = Celery("marketing")
app.config_from_object("celeryconfig")

if str(app.conf.broker_url).startswith("sqla+"):
    # The embedded broker polls its table; the default second makes every hop a second late.
    # (Set on the class: transport options would be passed on to create_engine.)
    from kombu.transport.sqlalchemy import Transport

    Transport.polling_interval = 0.1


@worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs: Any) -> None:
    # A forked child must never reuse the parent's pooled database connections.
    dispose_engines()
