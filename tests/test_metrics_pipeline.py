"""A real run -- a Celery worker on Redis publishing to the sandboxes -- then its counts are
read where an operator reads them: the worker host's metrics port and the web app's /metrics,
both adding up the prefork pool's processes (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from channels.registry import queues
from marketing.models import ChannelKind, MetricSnapshot, PostState, Role
from marketing.settings import reset_settings
from marketing.web import create_app
from tests.support.pipeline import PipelineStack, stack_on_fresh_services
from tests.support.services import free_port, running, wait_until
from tests.support.web import add_user, token_for
from tests.test_observability import Samples, parse, value

pytestmark = pytest.mark.slow

PER_CHANNEL = 4


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[PipelineStack]:
    with stack_on_fresh_services(tmp_path) as stack:
        yield stack


def read_port(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return parse(answer.read().decode())


def test_a_runs_counts_are_on_the_worker_port_and_on_the_web_apps_metrics(
    stack: PipelineStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = free_port()
    stack.env["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    stack.env["MARKETING_WORKER_METRICS_PORT"] = str(port)
    stack.env["MARKETING_LOG_FORMAT"] = "json"
    stack.make_posts(PER_CHANNEL)
    total = len(ChannelKind) * PER_CHANNEL
    with running(stack.worker("a", concurrency=2)):
        assert stack.wait_all_final(total, timeout=120) == {PostState.PUBLISHED: total}
        emails = len(stack.smtp.messages)
        assert emails > 0

        samples = read_port(port)
        for channel in ChannelKind:
            labels = {"channel": channel.value}
            published = value(
                samples, "marketing_publications_total", outcome="published", **labels
            )
            assert published == PER_CHANNEL, channel
            lateness = value(samples, "marketing_publication_lateness_seconds_count", **labels)
            assert lateness == PER_CHANNEL, channel
        assert value(samples, "marketing_emails_total", outcome="sent") == emails
        assert value(samples, "marketing_emails_total", outcome="refused") == 0

        # Six hours on, the collector stores a snapshot per post; the counter says as many.
        stack.graph.clock.advance(timedelta(hours=6))
        stack.youtube.clock.advance(timedelta(hours=6))
        stack.line.clock.advance(timedelta(hours=6))
        stack.send("marketing.collect_metrics", force=True)

        def snapshots() -> int:
            with stack.engine.connect() as conn:
                return int(
                    conn.execute(select(func.count()).select_from(MetricSnapshot)).scalar_one()
                )

        def collected() -> float:
            page = read_port(port)
            return sum(
                value(page, "marketing_metrics_collected_total", channel=c.value)
                for c in ChannelKind
            )

        wait_until(
            lambda: snapshots() > 0 and collected() == snapshots(),
            timeout=60,
            what="the collected-metrics counter to match the snapshots stored",
        )

        log = stack.workers[0].log()

    # Every line about a post is JSON with its post and attempt ids.
    about_posts = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"message": "post ' in line
    ]
    assert len(about_posts) == total
    for line in about_posts:
        assert line["message"].startswith(f"post {line['post_id']}: "), line
        assert isinstance(line["attempt_id"], int), line

    # The web app on the same host reads the same folder: the pool's counts, and the gauges.
    for name, setting in stack.env.items():
        if name.startswith(("MARKETING_", "PROMETHEUS_")):
            monkeypatch.setenv(name, setting)
    reset_settings()
    add_user(stack.engine, "ops", Role.ADMIN)
    with TestClient(create_app(engine=stack.engine)) as client:
        answer = client.get(
            "/metrics", headers={"Authorization": f"Bearer {token_for(stack.engine, 'ops')}"}
        )
    assert answer.status_code == 200
    web = parse(answer.text)
    for channel in ChannelKind:
        assert (
            value(web, "marketing_publications_total", channel=channel.value, outcome="published")
            == PER_CHANNEL
        )
    assert value(web, "marketing_emails_total", outcome="sent") == emails
    for queue in queues():
        assert ("marketing_queue_depth", (("queue", queue),)) in web, queue
    assert value(web, "marketing_scrape_errors", source="queues") == 0
