"""The beat scheduler renews its broker connection after a failed send (tasks/beat.py)."""

from __future__ import annotations

from pathlib import Path

import redis as redis_lib
from celery import Celery

from tasks.beat import ResilientScheduler
from tests.support.services import RedisServer


class DeadChannelProducer:
    """What beat's cached producer looks like after a broker restart: every send fails."""

    def publish(self, *args: object, **kwargs: object) -> None:
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    def close(self) -> None:
        pass


def test_a_failed_send_renews_the_producer(redis_server: RedisServer, tmp_path: Path) -> None:
    app = Celery("beat-test", broker=redis_server.url, set_as_current=False)
    app.conf.beat_schedule = {
        "ring": {
            "task": "marketing.dispatch_due",
            "schedule": 1.0,
            "options": {"queue": "beat-test"},
        },
    }
    scheduler = ResilientScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    entry = scheduler.schedule["ring"]
    queue = redis_lib.Redis.from_url(redis_server.url)
    queue.delete("beat-test")

    scheduler.__dict__["producer"] = DeadChannelProducer()
    scheduler.apply_entry(entry, producer=scheduler.producer)  # fails, and is not raised
    assert "producer" not in scheduler.__dict__
    assert queue.llen("beat-test") == 0

    scheduler.apply_entry(entry, producer=scheduler.producer)  # a fresh producer sends
    assert queue.llen("beat-test") == 1
    scheduler.close()
    app.close()
