"""Observability: /metrics counts a run's outcomes exactly, /healthz and /readyz say what they
should, the metrics page is not public, and JSON logs carry post and attempt ids."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from kombu import Connection
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select, update

from bench.services import free_port
from channels.errors import AuthExpired, TransientError
from channels.quota import UPLOADS, RedisQuotaLedger
from marketing.email_delivery import BatchResult, finish_batch, prepare_deliveries, take_batch
from marketing.models import AccountHealth, ChannelAccount, ChannelKind, Post, Role
from marketing.observability import configure_logging, log_context
from marketing.publishing import begin_attempt, claim_due, record_error, record_receipt
from marketing.settings import get_settings, reset_settings
from marketing.web import create_app
from tests.support.services import RedisServer
from tests.support.web import add_user, email_post, import_sample, token_for
from tests.test_publishing_states import NOW, POLICY, make_posts, receipt

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(page: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def on_redis(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Redis of its own as broker and shared store, emptied first."""
    redis.Redis.from_url(redis_server.url).flushall()
    monkeypatch.setenv("MARKETING_BROKER_URL", redis_server.url)
    reset_settings()
    yield redis_server.url


@pytest.fixture
def admin_client(engine: Engine, on_redis: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    add_user(engine, "ops", Role.ADMIN)
    with TestClient(create_app(engine=engine)) as client:
        yield client, {"Authorization": f"Bearer {token_for(engine, 'ops')}"}


def scrape(client: TestClient, headers: dict[str, str]) -> Samples:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return parse(answer.text)


def test_metrics_count_a_runs_publications_lateness_emails_and_health_exactly(
    engine: Engine, admin_client: tuple[TestClient, dict[str, str]], on_redis: str
) -> None:
    client, headers = admin_client
    before = scrape(client, headers)
    due = make_posts(engine, 4, due=NOW - timedelta(seconds=90))  # published 90 s late
    claim_due(engine=engine, policy=POLICY, now=NOW)
    claims = [begin_attempt(engine=engine, post_id=i, worker="w", now=NOW) for i in due]
    assert all(claims)
    for claim in claims[:2]:
        assert claim is not None
        record_receipt(engine=engine, claim=claim, receipt=receipt(claim.post_id), now=NOW)
    assert claims[2] is not None and claims[3] is not None
    record_error(engine=engine, claim=claims[2], error=TransientError("503"), policy=POLICY)
    record_error(engine=engine, claim=claims[3], error=AuthExpired("expired"), policy=POLICY)
    # A second receipt for a post already published counts nothing (same publication).
    assert claims[0] is not None
    record_receipt(engine=engine, claim=claims[0], receipt=receipt(claims[0].post_id), now=NOW)
    with Connection(on_redis) as connection:  # two doorbells waiting, sent by kombu
        queue = connection.SimpleQueue("publish.youtube")
        queue.put({"post": 1})
        queue.put({"post": 2})
        queue.close()
    ledger = RedisQuotaLedger(redis.Redis.from_url(on_redis), limits={UPLOADS: 100})
    ledger.reserve("default", UPLOADS)

    after = scrape(client, headers)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    fb = {"channel": "facebook"}
    assert delta("marketing_publications_total", outcome="published", **fb) == 2
    assert delta("marketing_publications_total", outcome="transient", **fb) == 1
    assert delta("marketing_publications_total", outcome="needs_reconnect", **fb) == 1
    assert delta("marketing_publication_lateness_seconds_count", **fb) == 2
    assert delta("marketing_publication_lateness_seconds_sum", **fb) == 180
    assert delta("marketing_publication_lateness_seconds_bucket", le="60.0", **fb) == 0
    assert delta("marketing_publication_lateness_seconds_bucket", le="120.0", **fb) == 2
    assert value(after, "marketing_queue_depth", queue="publish.youtube") == 2
    assert value(after, "marketing_queue_depth", queue="publish.email") == 0
    assert value(after, "marketing_youtube_quota_remaining", project="default", bucket=UPLOADS) == (
        get_settings().youtube_daily_uploads - 1
    )
    with engine.connect() as conn:
        broken = conn.execute(
            select(ChannelAccount.slug).where(ChannelAccount.health != AccountHealth.OK)
        ).scalar_one()
        healthy = conn.execute(
            select(ChannelAccount.slug, ChannelAccount.kind).where(
                ChannelAccount.health == AccountHealth.OK
            )
        ).all()
    assert (
        value(
            after,
            "marketing_account_healthy",
            account=broken,
            channel="facebook",
            health="needs_reconnect",
        )
        == 0
    )
    for slug, kind in healthy:
        assert value(after, "marketing_account_healthy", account=slug, channel=kind, health="ok")
    assert value(after, "marketing_scrape_errors", source="accounts") == 0


def test_emails_sent_and_refused_are_counted(
    engine: Engine, admin_client: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = admin_client
    import_sample(engine)
    post_id = email_post(engine, sent=False)
    with engine.connect() as conn:
        community_id, content = conn.execute(
            select(Post.community_id, Post.content).where(Post.id == post_id)
        ).one()
    prepare_deliveries(engine=engine, post_id=post_id, community_id=community_id, content=content)
    batch = take_batch(engine=engine, post_id=post_id, size=100)
    assert len(batch) >= 2
    before = scrape(client, headers)
    finish_batch(
        engine=engine,
        result=BatchResult(
            sent=[(o.delivery_id, f"<{o.delivery_id}@x>") for o in batch[:-1]],
            failed=[(batch[-1].delivery_id, "550 no such user")],
            unconfirmed=[],
            returned=[],
        ),
    )
    after = scrape(client, headers)
    for outcome, expected in (("sent", len(batch) - 1), ("refused", 1), ("unconfirmed", 0)):
        name, labels = "marketing_emails_total", {"outcome": outcome}
        assert value(after, name, **labels) - value(before, name, **labels) == expected


def test_metrics_are_for_admins_and_the_scrape_network_only(
    engine: Engine, on_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(engine, "viewer", Role.VIEWER)
    add_user(engine, "ops", Role.ADMIN)
    app = create_app(engine=engine)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 403
        viewer = {"Authorization": f"Bearer {token_for(engine, 'viewer')}"}
        assert client.get("/metrics", headers=viewer).status_code == 403
        assert (
            client.get("/metrics", headers={"Authorization": "Bearer nonsense"}).status_code == 403
        )
        admin = {"Authorization": f"Bearer {token_for(engine, 'ops')}"}
        assert client.get("/metrics", headers=admin).status_code == 200
    monkeypatch.setenv("MARKETING_METRICS_NETWORKS", "10.0.5.0/24, fd00::/8")
    reset_settings()
    app = create_app(engine=engine)
    with TestClient(app, client=("10.0.5.7", 40000)) as inside:
        assert inside.get("/metrics").status_code == 200
    with TestClient(app, client=("10.0.6.7", 40000)) as outside:
        assert outside.get("/metrics").status_code == 403


def test_healthz_and_readyz(engine: Engine, on_redis: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(engine=engine)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    monkeypatch.setenv("MARKETING_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_settings()
    with TestClient(create_app(engine=engine)) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["redis"].startswith("error: ")
        assert "127.0.0.1" not in ready.text  # no addresses on an unauthenticated page


def test_json_logs_carry_the_post_and_attempt_ids() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    configure_logging(log_format="json", handlers=[handler])
    log = logging.getLogger("tests.observability")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with log_context(post_id=41):
            log.info("claimed")
            with log_context(attempt_id=7):
                log.info("post %s: %s", 41, "sent")
        log.info("unrelated")
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["claimed", "post 41: sent", "unrelated"]
    assert lines[0]["post_id"] == 41 and "attempt_id" not in lines[0]
    assert lines[1]["post_id"] == 41 and lines[1]["attempt_id"] == 7
    assert "post_id" not in lines[2]
    assert {"time", "level", "logger"} <= set(lines[1])


CHILD = """
import sys
from marketing.observability import count_publication, count_emails
for _ in range(int(sys.argv[1])):
    count_publication(channel="email", outcome="published")
count_emails(sent=int(sys.argv[1]), refused=0, unconfirmed=0)
"""
READER = """
from marketing.observability import counters_registry
from prometheus_client import generate_latest
print(generate_latest(counters_registry()).decode())
"""


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path) -> None:
    """Like a prefork pool: two processes count, a third (the scrape) sees the sum."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    for count in ("2", "3"):
        subprocess.run([sys.executable, "-c", CHILD, count], env=env, check=True, timeout=60)
    page = subprocess.run(
        [sys.executable, "-c", READER],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    samples = parse(page)
    assert value(samples, "marketing_publications_total", channel="email", outcome="published") == 5
    assert value(samples, "marketing_emails_total", outcome="sent") == 5


def test_account_health_gauge_follows_the_database(
    engine: Engine, admin_client: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = admin_client
    make_posts(engine, 1, channel=ChannelKind.YOUTUBE)
    with engine.begin() as conn:
        slug = conn.execute(
            select(ChannelAccount.slug).where(ChannelAccount.kind == ChannelKind.YOUTUBE)
        ).first()
        assert slug is not None
        conn.execute(
            update(ChannelAccount)
            .where(ChannelAccount.slug == slug[0])
            .values(health=AccountHealth.PERMISSION_LOST)
        )
    samples = scrape(client, headers)
    assert (
        value(
            samples,
            "marketing_account_healthy",
            account=slug[0],
            channel="youtube",
            health="permission_lost",
        )
        == 0
    )
    assert (slug[0], "ok") not in {
        (dict(labels).get("account"), dict(labels).get("health")) for _n, labels in samples
    }
