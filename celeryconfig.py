"""Celery configuration: the only place the Celery app is configured (``tasks.app`` loads it).

The broker is a doorbell, not a store: due posts live in the database and ``dispatch_due``
rings for them, so nothing here needs long ETAs or result storage.
"""

from __future__ import annotations

from channels.registry import DEFAULT_QUEUE, queues
from marketing.settings import get_settings

_settings = get_settings()

broker_url = _settings.effective_broker_url
broker_connection_retry_on_startup = True
# Redis: messages not acknowledged within this time are delivered again.  Our tasks are short
# and idempotent (they claim database rows), and nothing is scheduled with a long ETA.
# (Only for Redis: kombu's SQLAlchemy transport passes its options on to create_engine.)
if broker_url.startswith(("redis://", "rediss://")):
    broker_transport_options = {"visibility_timeout": 3600}

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
task_ignore_result = True
result_backend = None

# At-least-once delivery; each task claims its row in the database, so a second run is harmless.
task_acks_late = True
task_reject_on_worker_lost = False
worker_prefetch_multiplier = 1
task_time_limit = 300
task_soft_time_limit = 240
worker_max_tasks_per_child = 1000
worker_hijack_root_logger = False

# Events for monitors such as Flower (`celery -A tasks flower`; see docs/deploy.md): workers
# send task events from the start, and a sent task says so, so queued-but-not-started shows.
worker_send_task_events = True
task_send_sent_event = True

timezone = "UTC"
enable_utc = True

# One queue per channel for publishing (a slow upload never holds up a Facebook post), and
# the default queue for the periodic work.  A plain `celery -A tasks worker` consumes them all.
task_default_queue = DEFAULT_QUEUE
task_queues = {name: {"exchange": name, "routing_key": name} for name in queues()}
task_create_missing_queues = True

# A scheduler that reconnects after a failed send (see tasks/beat.py).
beat_scheduler = "tasks.beat:ResilientScheduler"

# The beat only rings; the database says what is due.  `expires` drops a ring that waited
# longer than its interval (e.g. while every worker was down), so rings never pile up.
beat_schedule = {
    "dispatch-due": {
        "task": "marketing.dispatch_due",
        "schedule": _settings.dispatch_interval,
        "options": {"expires": _settings.dispatch_interval * 2},
    },
    "recover": {
        "task": "marketing.recover",
        "schedule": max(_settings.dispatch_interval * 2, 2.0),
        "options": {"expires": max(_settings.dispatch_interval * 4, 4.0)},
    },
    "worker-alive": {
        "task": "marketing.ping",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    "check-accounts": {
        "task": "marketing.check_accounts",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "rollup-recent": {
        "task": "marketing.rollup_recent",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "send-notifications": {
        "task": "marketing.send_notifications",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "collect-metrics": {
        "task": "marketing.collect_metrics",
        "schedule": _settings.metrics_interval,
        "options": {"expires": _settings.metrics_interval},
    },
    "refresh-creators": {
        "task": "marketing.refresh_creators",
        "schedule": 6 * 3600.0,
        "options": {"expires": 3600.0},
    },
    "purge-tracking": {
        "task": "marketing.purge_tracking",
        "schedule": 6 * 3600.0,
        "options": {"expires": 3600.0},
    },
}
