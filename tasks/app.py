"""The Celery application, configured only from ``celeryconfig.py``."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

from marketing import observability
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


@worker_init.connect
def _import_channel_sdks(**_kwargs: Any) -> None:
    # worker_init is sent in the worker's main process before its pool starts: a module
    # imported here is shared by every forked pool process.  The LINE SDK is otherwise
    # imported on first use (the web app and `marketing --help` never load it), which cost
    # each pool process about 1 s of CPU on its first LINE post (#19).
    from channels.line import import_sdk

    import_sdk()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _structured_logs(logger: Any = None, **_kwargs: Any) -> None:
    # MARKETING_LOG_FORMAT=json: one JSON object a line, post and attempt ids on each.
    # Only the handlers Celery gave this logger: one that propagates to the root has none.
    handlers = list(getattr(logger, "handlers", []))
    if handlers:
        observability.configure_logging(log_format=get_settings().log_format, handlers=handlers)


@worker_init.connect
def _serve_worker_metrics(**_kwargs: Any) -> None:
    settings = get_settings()
    if settings.worker_metrics_port:
        observability.serve_worker_metrics(
            port=settings.worker_metrics_port, address=settings.worker_metrics_address
        )


@worker_process_shutdown.connect
def _forget_process_metrics(pid: int | None = None, **_kwargs: Any) -> None:
    import os

    observability.process_ended(pid or os.getpid())
