"""Celery configuration: the only place the Celery app is configured (``tasks.app`` loads it).

The broker is a doorbell, not a store: due posts live in the database and ``dispatch_due``
rings for them, so nothing here needs long ETAs or result storage.
"""

from __future__ import annotations

from marketing.settings import get_settings

_settings = get_settings()

broker_url = _settings.effective_broker_url
broker_connection_retry_on_startup = True
# Redis: messages not acknowledged within this time are delivered again.  Our tasks are short
# and idempotent (they claim database rows), and nothing is scheduled with a long ETA.
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

timezone = "UTC"
enable_utc = True

task_default_queue = "default"
task_create_missing_queues = True
