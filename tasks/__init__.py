"""Celery tasks: thin wrappers that load state, call campaigns/channels, and record results.

Run a worker with ``celery -A tasks worker`` and the scheduler with ``celery -A tasks beat``.
"""

from tasks import health, housekeeping, metrics, notify, publishing
from tasks.app import app

__all__ = ["app", "health", "housekeeping", "metrics", "notify", "publishing"]
