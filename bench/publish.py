"""Publish throughput: posts through real Celery workers on Redis and PostgreSQL into the
Graph API sandbox, beside Celery's own no-op task throughput on the same worker."""

from __future__ import annotations

import time
from datetime import timedelta

import redis as redis_lib
from celery import Celery

from bench.base import Benchmark
from bench.results import Figure, Target
from bench.services import CeleryWorker, wait_until
from bench.stack import Pipeline
from marketing.db import utcnow
from marketing.models import PostState

QUEUE = "publish.facebook"


class PublishThroughput(Benchmark):
    name = "publish"
    findings = """\
*Profiled* with `py-spy record --subprocesses --idle` on the worker's pool processes, then
each step of `publish_post` timed in one process: about two thirds of a publication was
`begin_attempt` and `record_receipt`, a quarter the Graph call through the SDK (a fifth of
that the Facebook adapter's usage bookkeeping in Redis), 3 % the per-account token bucket.
The database part was mostly Python, not PostgreSQL: with `synchronous_commit = off` (an
experiment, not shipped) the rate rose only 7 %. *Fixed* (`marketing/publishing.py`): the
claim reads post, campaign and account in one locked `SELECT`; the receipt is one
conditional `UPDATE ... RETURNING` (13 -> 9 statements a post); these statements are built
once and run as Core statements on the session's connection, bypassing the ORM's execution
path (claim 7.4 -> 3.7 ms, receipt 6.7 -> 3.2 ms). Ratio 0.18 -> about 0.23. *Remains*, per
post, where a no-op task has none of it: two transactions (the claim committed before the
network call, the receipt after it -- the guarantee itself), the session and pool checkout
with its pre-ping (`marketing/db.py`), the heartbeat thread, three Redis calls (token bucket,
usage headers) and the SDK's HTTP call to a sandbox that shares the two cores. Synchronous
commit and the claim before the network call were not touched."""
    note = """\
**Publish throughput.** 2,000 Facebook posts (quick: 100), due now, spread over the ten
sample Pages, go through the whole pipeline: one `dispatch_due` claims them in batches and
rings a `publish_post` message for each; a real `celery worker` (prefork, 2 processes,
prefetch 1, late acknowledgement, as `celeryconfig.py` sets) on a private Redis claims each
post in PostgreSQL, publishes it through the `facebook-business` SDK to the Graph API
sandbox (no added latency) and records the receipt. Time: from sending `dispatch_due` to the
last post's `published` timestamp in the database. Baseline: the same worker consuming 2,000
`bench.noop` messages sent to the same queue (time from the first send until the queue and
Redis's unacknowledged set are empty)."""

    def __init__(self, *, quick: bool) -> None:
        super().__init__(quick=quick)
        self.posts = 100 if quick else 2000
        self.throughput = Figure(
            "publish",
            f"{self.posts:,} posts, Celery + Redis + PostgreSQL",
            "posts/s",
            higher_is_better=True,
            baseline_name="Celery no-op",
            target=Target("ratio_at_least", 0.5, "ratio >= 0.5"),
        )
        self.pipeline: Pipeline | None = None
        self.worker: CeleryWorker | None = None
        self.published = 0  # posts published by all runs so far

    def figures(self) -> list[Figure]:
        return [self.throughput]

    def setup(self) -> None:
        self.pipeline = Pipeline()
        self.worker = self.pipeline.worker("publish", concurrency=2).start()

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()

    def run_once(self, run: int) -> None:
        assert self.pipeline is not None
        ceiling = self.noop_rate()
        self.throughput.add(self.publish_rate(f"tp{run}"), ceiling)

    def noop_rate(self) -> float:
        """No-op tasks a second through the same worker and queue."""
        assert self.pipeline is not None
        broker = redis_lib.Redis.from_url(self.pipeline.redis.url)
        client = Celery(broker=self.pipeline.redis.url)
        client.conf.task_serializer = "json"
        try:
            started = time.perf_counter()
            with client.producer_or_acquire() as producer:
                for _ in range(self.posts):
                    client.send_task("bench.noop", queue=QUEUE, producer=producer)

            def drained() -> bool:
                # Late acknowledgement: a message leaves "unacked" only once it has run.
                return broker.llen(QUEUE) == 0 and broker.hlen("unacked") == 0

            wait_until(drained, timeout=300, interval=0.005, what="the no-op tasks")
            return self.posts / (time.perf_counter() - started)
        finally:
            client.close()
            broker.close()

    def publish_rate(self, slug: str) -> float:
        """Posts a second from dispatch to the last recorded receipt."""
        pipeline = self.pipeline
        assert pipeline is not None
        now = utcnow()
        pipeline.facebook_posts(slug, [now - timedelta(seconds=1)] * self.posts)
        self.published += self.posts
        started = utcnow()
        pipeline.send("marketing.dispatch_due")
        wait_until(
            lambda: pipeline.count(slug, PostState.PUBLISHED) == self.posts,
            timeout=600,
            interval=0.2,
            what=f"{self.posts} posts to be published",
        )
        last = max(changed for _due, _published, changed in pipeline.published(slug))
        markers = pipeline.graph.count_by_marker()
        twice = [m for m, n in markers.items() if n > 1]
        if twice or sum(markers.values()) != self.published:
            raise RuntimeError(
                f"the sandbox has {sum(markers.values())} publications for "
                f"{self.published} posts; twice: {twice[:5]}"
            )
        return self.posts / (last - started).total_seconds()
