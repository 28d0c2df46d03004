"""The Celery application, configured only from ``celeryconfig.py``."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from marketing.db import dispose_engines
from marketing.settings import (
    WORKER_SECRETS,
    DevelopmentSecretRefused,
    check_development_secrets,
    get_settings,
)

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


@worker_init.connect
def _refuse_development_secrets(**_kwargs: Any) -> None:
    # A worker with a public URL and the development tracking secret would send e-mail whose
    # links anyone can forge (clicks to any site, unsubscribes): it does not start at all,
    # rather than fail each e-mail post later.  (Celery logs and swallows an Exception from
    # a signal handler; SystemExit is not one, so the worker stops with the message.)
    try:
        check_development_secrets(get_settings(), uses=WORKER_SECRETS)
    except DevelopmentSecretRefused as refused:
        raise SystemExit(f"Refused to start the worker: {refused}") from None
