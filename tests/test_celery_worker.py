"""The Celery app runs in a real worker process against a real Redis and the test database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from marketing.db import session_scope
from marketing.models import Community, Heartbeat
from tests.support.services import CeleryWorker, RedisServer, running, wait_until

pytestmark = pytest.mark.slow


def test_worker_runs_a_task_against_the_database(
    engine: Engine, db_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    with session_scope(engine) as s:
        s.add(Community(slug="a", name_th="ก", name_en="A", province="P"))
    env = {
        "MARKETING_DATABASE_URL": db_url,
        "MARKETING_BROKER_URL": redis_server.url,
        "MARKETING_DATA_DIR": str(tmp_path / "data"),
    }
    with running(CeleryWorker(env, log_dir=tmp_path)):
        from celery import Celery

        client = Celery(broker=redis_server.url)
        client.conf.task_serializer = "json"
        client.send_task("marketing.ping", queue="default")

        def seen() -> bool:
            with session_scope(engine) as s:
                beat = s.get(Heartbeat, "worker")
                return beat is not None and beat.detail.get("communities") == 1

        wait_until(seen, timeout=30, what="the worker's heartbeat")
