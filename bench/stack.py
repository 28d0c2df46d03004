"""The publishing pipeline as the benchmarks run it: a PostgreSQL database of its own, a
private Redis, the Graph API sandbox, the sample communities with their accounts, and the
environment that makes real Celery workers (``celery -A bench.worker_app``) use all of it.

The worker app is the production one (``tasks``, configured by ``celeryconfig.py``) plus one
no-op task, so the Celery ceiling is measured with exactly the worker that publishes.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select

from bench.services import CeleryWorker, PostgresDatabase, RedisServer
from channels.registry import queues
from channels.sandbox.graph import GraphSandbox
from marketing import migrate
from marketing.cli.communities import SAMPLE
from marketing.db import get_engine, session_scope
from marketing.media import install_media
from marketing.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    Post,
    PostState,
)
from marketing.reference import import_reference


def token_for(secret_name: str) -> str:
    return f"bench-token-{secret_name.lower()}"


class Pipeline:
    """Database, broker and sandboxes for one benchmark; :meth:`close` removes them all."""

    def __init__(self, **settings: Any) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mkt-bench-"))
        self.database = PostgresDatabase(prefix="mkt_bench").create()
        self.redis = RedisServer().start()
        self.graph = GraphSandbox(page_call_limit=10_000_000, app_call_limit=100_000_000)
        self.graph.start()
        self.engine: Engine = get_engine(self.database.url)
        migrate.upgrade(self.engine)
        self.env: dict[str, str] = {
            "MARKETING_DATABASE_URL": self.database.url,
            "MARKETING_BROKER_URL": self.redis.url,
            "MARKETING_DATA_DIR": str(self.dir / "data"),
            "MARKETING_GRAPH_API_URL": self.graph.url,
            # The benchmark measures the pipeline, not the per-account rate limit.
            "MARKETING_PUBLISH_RATE_PER_MINUTE": "10000000",
            "MARKETING_PUBLISH_BURST": "100000",
            **{f"MARKETING_{k.upper()}": str(v) for k, v in settings.items()},
        }
        media = self.dir / "data" / "media"
        install_media(SAMPLE.parent / "media", root=media, folder="sample")
        with session_scope(self.engine) as session:
            import_reference(session=session, path=SAMPLE, media_root=media)
        with session_scope(self.engine) as session:
            for account in session.scalars(select(ChannelAccount)):
                if account.secret_name:
                    token = token_for(account.secret_name)
                    self.env[f"MARKETING_SECRET_{account.secret_name}"] = token
                    if account.kind == ChannelKind.FACEBOOK:
                        self.graph.register_page(account.external_id, token)
        self.workers: list[CeleryWorker] = []

    def worker(self, name: str, *, beat: bool = False, concurrency: int = 2) -> CeleryWorker:
        """A worker of ``bench.worker_app`` on every queue (not started)."""
        worker = CeleryWorker(
            self.env,
            name=name,
            concurrency=concurrency,
            beat=beat,
            log_dir=self.dir,
            queues=",".join(queues()),
            app="bench.worker_app",
        )
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.graph.stop()
        self.redis.close()
        self.engine.dispose()
        self.database.drop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def campaign(self, slug: str) -> int:
        """A new approved campaign; its id."""
        with session_scope(self.engine) as session:
            campaign = Campaign(
                slug=slug,
                name="วัดความเร็ว",
                source_text="-",
                source_hash="-",
                status=CampaignStatus.APPROVED,
            )
            session.add(campaign)
            session.flush()
            return campaign.id

    def facebook_posts(self, slug: str, due: list[datetime]) -> None:
        """One Facebook post per time in ``due``, spread over the ten sample Pages."""
        campaign_id = self.campaign(slug)
        with session_scope(self.engine) as session:
            pages = [
                (a.community_id, a.id, name)
                for a, name in session.execute(
                    select(ChannelAccount, Community.name_th)
                    .join(Community, Community.id == ChannelAccount.community_id)
                    .where(ChannelAccount.kind == ChannelKind.FACEBOOK)
                    .order_by(ChannelAccount.id)
                )
            ]
            rows = []
            for i, when in enumerate(due):
                community_id, account_id, name = pages[i % len(pages)]
                rows.append(
                    {
                        "campaign_id": campaign_id,
                        "community_id": community_id,
                        "channel_account_id": account_id,
                        "channel": ChannelKind.FACEBOOK,
                        "idempotency_key": f"{slug}-{i:06d}",
                        "occurrence_key": str(i),
                        "scheduled_at": when,
                        "next_try_at": when,
                        "content": {
                            "message": f"เที่ยว{name} ตอนที่ {i} #สลากสร้างสรรค์",
                            "link": "https://example.org/glo",
                        },
                        "content_hash": "-",
                        "state": PostState.SCHEDULED,
                        "state_changed_at": when,
                    }
                )
            session.execute(insert(Post), rows)

    def count(self, slug: str, state: PostState) -> int:
        with session_scope(self.engine) as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(Post)
                    .join(Campaign, Campaign.id == Post.campaign_id)
                    .where(Campaign.slug == slug, Post.state == state)
                )
                or 0
            )

    def published(self, slug: str) -> list[tuple[datetime, datetime, datetime]]:
        """(scheduled_at, published_at, state_changed_at) of each published post."""
        with session_scope(self.engine) as session:
            return [
                (r.scheduled_at, r.published_at, r.state_changed_at)
                for r in session.execute(
                    select(Post.scheduled_at, Post.published_at, Post.state_changed_at)
                    .join(Campaign, Campaign.id == Post.campaign_id)
                    .where(Campaign.slug == slug, Post.state == PostState.PUBLISHED)
                )
            ]

    def send(self, task: str, *, queue: str = "default", **kwargs: Any) -> None:
        """Send one task to the workers through the broker, as beat would."""
        from celery import Celery

        client = Celery(broker=self.redis.url)
        client.conf.task_serializer = "json"
        client.send_task(task, kwargs=kwargs, queue=queue)
        client.close()
