"""What an operator's monitoring reads: Prometheus metrics and structured logs.

Counters and the lateness histogram are bumped where outcomes are recorded
(:mod:`marketing.publishing`, :mod:`marketing.email_delivery`, ``tasks/metrics.py``), after
the transaction that recorded them committed.  They are side effects only: nothing about a
post depends on them.

Gauges that describe the world -- queue depths, each account's health, YouTube quota left --
are read from Redis and the database when ``/metrics`` is scraped (:class:`ScrapeCollector`),
so every host that is scraped agrees and nothing goes stale in a dead process.

Multiprocess mode: Celery's prefork pool and uvicorn's workers are separate processes.  With
``PROMETHEUS_MULTIPROC_DIR`` set in a process's environment *before it starts*, every process
writes its counters to files in that folder and a scrape adds them up
(:func:`exposition`).  The folder must be emptied when the service starts (the systemd units
in ``deploy/`` do it); workers and the web app of one host may share it.

Logs: ``MARKETING_LOG_FORMAT=json`` writes one JSON object a line (python-json-logger); every
line logged inside :func:`log_context` carries its ``post_id`` and ``attempt_id``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")

#: The outcome label of ``marketing_publications_total``.
OUTCOMES = (
    "published",  # the channel answered with a receipt
    "reconciled_found",  # an interrupted attempt was found on the channel
    "reconciled_absent",  # an interrupted attempt was not there: tried again
    "unconfirmed",  # could not tell, left to a person
    "rate_limited",
    "transient",  # will be retried
    "failed",  # refused for good, or too many transient failures
    "needs_reconnect",
    "outcome_unknown",  # the answer was lost: reconciled later
)

PUBLICATIONS = Counter(
    "marketing_publications",
    "Attempts to publish a post that ended, by channel and outcome.",
    ["channel", "outcome"],
)
LATENESS = Histogram(
    "marketing_publication_lateness_seconds",
    "Seconds between a post's scheduled time and its publication on the channel.",
    ["channel"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
)
EMAILS = Counter(
    "marketing_emails",
    "Campaign e-mails by outcome: sent (the relay accepted it), refused (it did not), "
    "unconfirmed (the answer was lost).",
    ["outcome"],
)
METRICS_COLLECTED = Counter(
    "marketing_metrics_collected",
    "Engagement snapshots stored, by channel.",
    ["channel"],
)


def count_publication(*, channel: str, outcome: str) -> None:
    """One attempt on ``channel`` ended with ``outcome`` (one of :data:`OUTCOMES`)."""
    PUBLICATIONS.labels(channel=channel, outcome=outcome).inc()


def observe_lateness(*, channel: str, seconds: float) -> None:
    """A post went out ``seconds`` after its scheduled time (early counts as 0)."""
    LATENESS.labels(channel=channel).observe(max(seconds, 0.0))


def count_emails(*, sent: int, refused: int, unconfirmed: int) -> None:
    """A batch of campaign e-mails was settled."""
    for outcome, number in (("sent", sent), ("refused", refused), ("unconfirmed", unconfirmed)):
        if number:
            EMAILS.labels(outcome=outcome).inc(number)


def count_metrics_collected(*, channel: str, count: int) -> None:
    """``count`` engagement snapshots of ``channel`` were stored."""
    if count:
        METRICS_COLLECTED.labels(channel=channel).inc(count)


# --- read at scrape time --------------------------------------------------------------------


class ScrapeCollector(Collector):
    """Gauges read when scraped: queue depths (Redis list lengths), each account's health
    (from the database) and the YouTube quota left today.  A source that cannot be read is
    left out of the answer and counted in ``marketing_scrape_errors``, never raised."""

    def __init__(self, *, engine: Any, settings: Any, timeout: float = 2.0) -> None:
        self.engine = engine
        self.settings = settings
        self.timeout = timeout

    def describe(self) -> Iterable[Any]:
        return []  # collected on demand only

    def collect(self) -> Iterator[Any]:
        errors = GaugeMetricFamily(
            "marketing_scrape_errors",
            "Sources that could not be read at this scrape.",
            labels=["source"],
        )
        client = self._redis()
        sources: tuple[tuple[str, Callable[[], Iterator[Any]]], ...] = (
            ("queues", lambda: self._queues(client)),
            ("accounts", self._accounts),
            ("quota", lambda: self._quota(client)),
        )
        for source, gather in sources:
            try:
                yield from gather()
                errors.add_metric([source], 0)
            except Exception:
                logging.getLogger(__name__).warning("metrics: %s unreadable", source, exc_info=True)
                errors.add_metric([source], 1)
        yield errors

    def _redis(self) -> Any:
        url = self.settings.effective_redis_url
        if not url:
            return None
        import redis

        return redis.Redis.from_url(
            url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )

    def _queues(self, client: Any) -> Iterator[Any]:
        broker = self.settings.effective_broker_url
        if client is None or not broker.startswith(("redis://", "rediss://")):
            return
        import redis

        queues = redis.Redis.from_url(
            broker, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )
        family = GaugeMetricFamily(
            "marketing_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        from channels.registry import queues as queue_names

        names = queue_names()
        pipe = queues.pipeline(transaction=False)
        for name in names:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(name + suffix)
        lengths = pipe.execute()
        step = len(_PRIORITY_SUFFIXES)
        for index, name in enumerate(names):
            family.add_metric([name], sum(lengths[index * step : (index + 1) * step]))
        yield family

    def _accounts(self) -> Iterator[Any]:
        from sqlalchemy import select

        from marketing.db import session_scope
        from marketing.models import AccountHealth, ChannelAccount

        family = GaugeMetricFamily(
            "marketing_account_healthy",
            "1 if a channel account can publish, 0 if a person must act (its health label "
            "says why).",
            labels=["account", "channel", "health"],
        )
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(ChannelAccount.slug, ChannelAccount.kind, ChannelAccount.health).order_by(
                    ChannelAccount.slug
                )
            ).all()
        for slug, kind, health in rows:
            family.add_metric(
                [slug, kind.value, health.value], 1 if health == AccountHealth.OK else 0
            )
        yield family

    def _quota(self, client: Any) -> Iterator[Any]:
        from sqlalchemy import select

        from channels.quota import UNITS, UPLOADS, InMemoryQuotaLedger, RedisQuotaLedger
        from marketing.db import session_scope
        from marketing.models import ChannelAccount, ChannelKind
        from marketing.quota_record import quota_seed

        settings = self.settings
        project = settings.youtube_quota_project or None
        if project:
            names = [project]
        else:
            with session_scope(self.engine) as session:
                names = list(
                    session.scalars(
                        select(ChannelAccount.external_id).where(
                            ChannelAccount.kind == ChannelKind.YOUTUBE
                        )
                    )
                )
        limits = {UPLOADS: settings.youtube_daily_uploads, UNITS: settings.youtube_daily_units}
        seed = quota_seed(engine=self.engine, quota_project=project)
        ledger = (
            RedisQuotaLedger(client, limits=limits, seed=seed)
            if client is not None
            else InMemoryQuotaLedger(limits=limits, seed=seed)
        )
        family = GaugeMetricFamily(
            "marketing_youtube_quota_remaining",
            "YouTube quota left today (Pacific time), by quota project (or channel) and "
            "bucket (uploads: videos.insert calls; units: other calls).",
            labels=["project", "bucket"],
        )
        for name in names:
            for bucket in (UPLOADS, UNITS):
                family.add_metric([name, bucket], ledger.remaining(name, bucket))
        yield family


def exposition(*, engine: Any, settings: Any) -> tuple[bytes, str]:
    """The metrics page (body, content type): this process's counters -- or, in
    multiprocess mode, every process's -- and the gauges read now."""
    from prometheus_client import generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    live = CollectorRegistry(auto_describe=False)
    live.register(ScrapeCollector(engine=engine, settings=settings))
    return generate_latest(counters_registry()) + generate_latest(live), CONTENT_TYPE_LATEST


def counters_registry() -> Any:
    """The registry holding the counters: every process's (multiprocess mode) or this one's."""
    from prometheus_client import REGISTRY, multiprocess

    if os.environ.get(MULTIPROC_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def serve_worker_metrics(*, port: int, address: str) -> None:
    """Serve the counters of this host's worker processes on ``address:port`` (a thread)."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=address, registry=counters_registry())


def process_ended(pid: int) -> None:
    """Forget a finished worker process's live gauges (multiprocess mode)."""
    if os.environ.get(MULTIPROC_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


# --- structured logs ------------------------------------------------------------------------

_CONTEXT: contextvars.ContextVar[tuple[tuple[str, Any], ...]] = contextvars.ContextVar(
    "marketing_log_context", default=()
)
#: Fields every log line carries (empty when not about a post).
CONTEXT_FIELDS = ("post_id", "attempt_id")


@contextlib.contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Every line logged inside carries ``ids`` (e.g. ``post_id``, ``attempt_id``); nested
    contexts add to the outer one."""
    token = _CONTEXT.set(_merged(ids))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def add_log_context(**ids: Any) -> None:
    """Add ``ids`` to the current :func:`log_context` (e.g. the attempt once it is open)."""
    _CONTEXT.set(_merged(ids))


def _merged(ids: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple({**dict(_CONTEXT.get()), **ids}.items())


class ContextFilter(logging.Filter):
    """Puts the current :func:`log_context` on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get():
            setattr(record, name, value)
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object a line: time, level, logger, message and any context fields."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure_logging(*, log_format: str, handlers: Iterable[logging.Handler] = ()) -> None:
    """Give ``handlers`` (default: the root logger's; one on stderr if it has none) the
    context filter, and the JSON formatter when ``log_format`` is ``json``."""
    root = logging.getLogger()
    targets: list[logging.Handler] = list(handlers) or list(root.handlers)
    if not targets:
        stderr = logging.StreamHandler()
        root.addHandler(stderr)
        targets = [stderr]
    for handler in targets:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if log_format == "json":
            handler.setFormatter(json_formatter())


def uvicorn_log_config(*, log_format: str) -> dict[str, Any] | None:
    """uvicorn's logging config with JSON formatters (and the app's own loggers on the same
    handler) for ``json``; None (uvicorn's default) otherwise."""
    if log_format != "json":
        return None
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    json_format = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    }
    config["formatters"] = {"default": json_format, "access": dict(json_format)}
    config["filters"] = {"context": {"()": "marketing.observability.ContextFilter"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["context"]
    config["root"] = {"handlers": ["default"], "level": "INFO"}
    result: dict[str, Any] = config
    return result
