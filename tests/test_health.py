"""Health that does not cry wolf (#15): a component is "not moving" only when work has been due
for several of its intervals and nothing moved; right after posts were published with no
worker running, nothing is said to be broken.  The clock is fixed; both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import time_machine
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import Engine, update

from marketing.cli import main
from marketing.db import session_scope
from marketing.health import MIN_GRACE, ComponentHealth, grace_of, pipeline_health
from marketing.models import Attempt, Heartbeat, Post, PostState, Role
from marketing.settings import get_settings
from marketing.web import create_app
from tests.support.web import WebClient, add_user, clock_at
from tests.test_publishing_states import NOW, make_posts


def verdicts(engine: Engine, now: datetime) -> dict[str, ComponentHealth]:
    with session_scope(engine) as session:
        found = pipeline_health(session=session, now=now, settings=get_settings())
    return {c.name: c for c in found}


def publish_all(engine: Engine, post_ids: list[int], at: datetime) -> None:
    """What the demo does: posts published at ``at``, their metrics due later, no worker."""
    with session_scope(engine) as session:
        session.execute(
            update(Post)
            .where(Post.id.in_(post_ids))
            .values(
                state=PostState.PUBLISHED,
                published_at=at,
                external_id="x",
                metrics_due_at=at + timedelta(hours=1),
            )
        )


def test_right_after_publishing_with_no_worker_nothing_is_not_moving(engine: Engine) -> None:
    posts = make_posts(engine, 30, due=NOW - timedelta(minutes=5))
    publish_all(engine, posts, NOW - timedelta(minutes=1))
    found = verdicts(engine, NOW)
    assert {name: c.state for name, c in found.items()} == {
        "dispatcher": "idle",
        "recovery": "idle",
        "worker": "idle",
        "metrics": "idle",
    }
    assert all(c.seen is None for c in found.values())


def test_posts_due_for_less_than_several_intervals_are_not_an_alarm(engine: Engine) -> None:
    make_posts(engine, 3, due=NOW)
    grace = grace_of("dispatcher", get_settings())
    assert grace >= MIN_GRACE
    assert verdicts(engine, NOW + grace - timedelta(seconds=1))["dispatcher"].state == "idle"
    late = verdicts(engine, NOW + grace + timedelta(seconds=1))["dispatcher"]
    assert (late.state, late.due) == ("not_moving", 3)


def test_a_dispatcher_that_beat_recently_is_moving_though_posts_wait(engine: Engine) -> None:
    make_posts(engine, 2, due=NOW - timedelta(hours=1))
    with session_scope(engine) as session:
        session.add(Heartbeat(component="dispatcher", beat_at=NOW - timedelta(seconds=5)))
    assert verdicts(engine, NOW)["dispatcher"].state == "moving"
    grace = grace_of("dispatcher", get_settings())
    assert verdicts(engine, NOW + grace)["dispatcher"].state == "not_moving"


def test_a_worker_that_started_an_attempt_was_seen(engine: Engine) -> None:
    (post_id,) = make_posts(engine, 1, due=NOW - timedelta(hours=1))
    with session_scope(engine) as session:
        session.execute(
            update(Post)
            .where(Post.id == post_id)
            .values(state=PostState.QUEUED, state_changed_at=NOW - timedelta(hours=1))
        )
    assert verdicts(engine, NOW)["worker"].state == "not_moving"  # queued an hour, no worker
    with session_scope(engine) as session:
        session.add(Attempt(post_id=post_id, number=1, started_at=NOW - timedelta(seconds=3)))
    worker = verdicts(engine, NOW)["worker"]
    assert worker.state == "moving" and worker.seen == NOW - timedelta(seconds=3)


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    add_user(engine, "reader", Role.VIEWER)
    add_user(engine, "english", Role.VIEWER, language="en")
    return create_app(engine=engine, clock=clock_at(NOW))


@pytest.fixture
def reader(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("reader")
    yield client
    client.close()


def pipeline_section(page: str) -> str:
    return page[page.index('<ul class="pipeline">') :].split("</ul>", 1)[0]


def test_dashboard_after_the_demo_published_does_not_cry_wolf_and_speaks_thai(
    engine: Engine, app: FastAPI, reader: WebClient
) -> None:
    posts = make_posts(engine, 30, due=NOW - timedelta(minutes=5))
    publish_all(engine, posts, NOW - timedelta(minutes=1))
    section = pipeline_section(reader.get("/").text)
    assert "ยังไม่เคยทำงาน" not in section and "ไม่ขยับ" not in section
    assert 'class="alert"' not in section
    for thai in ("ตัวจัดคิวโพสต์", "ตัวกู้คืนงานค้าง", "ตัวเผยแพร่", "ตัวเก็บสถิติ", "ไม่มีงานรอ"):
        assert thai in section
    for english in ("dispatcher", "recovery", "worker</strong>", "metrics"):
        assert english not in section


def test_dashboard_says_not_moving_when_posts_waited_and_nothing_moved(
    engine: Engine, app: FastAPI, reader: WebClient
) -> None:
    make_posts(engine, 4, due=NOW - timedelta(hours=1))
    section = pipeline_section(reader.get("/").text)
    assert 'class="alert"><strong>ตัวจัดคิวโพสต์</strong>' in section
    assert "ไม่ขยับ: มีงานรอ 4 รายการ" in section


def test_marketing_status_says_not_moving_in_thai_and_in_english(engine: Engine) -> None:
    """``marketing status`` in the reader's language: Thai by default, English by choice."""
    make_posts(engine, 4, due=NOW - timedelta(hours=1))
    with time_machine.travel(NOW, tick=False):
        thai = CliRunner().invoke(main, ["status"])
        english = CliRunner().invoke(main, ["--lang", "en", "status"])
    assert thai.exit_code == 0, thai.output
    assert "ถึงเวลาแล้วแต่ยังไม่เข้าคิว: 4" in thai.output
    assert "ตัวจัดคิวโพสต์: ไม่ขยับ (รออยู่ 4)" in thai.output
    assert "รอเวลาเผยแพร่" in thai.output and "คิว:" in thai.output
    assert "NOT MOVING" not in thai.output and "Due now" not in thai.output
    assert english.exit_code == 0, english.output
    assert "Due now and not yet queued: 4" in english.output
    assert "dispatcher: NOT MOVING (4 waiting)" in english.output
    assert "Queues:" in english.output
