"""Real services for tests: a private Redis server, a private PostgreSQL database, and Celery
worker processes.  Each is started for the test that needs it and always stopped afterwards;
the machine's shared services are never restarted.

The code lives in :mod:`bench.services`, which the benchmarks share.
"""

from __future__ import annotations

from bench.services import (
    PG_ADMIN_URL,
    ROOT,
    CeleryWorker,
    PostgresDatabase,
    RedisServer,
    free_port,
    running,
    wait_until,
)

__all__ = [
    "PG_ADMIN_URL",
    "ROOT",
    "CeleryWorker",
    "PostgresDatabase",
    "RedisServer",
    "free_port",
    "running",
    "wait_until",
]
