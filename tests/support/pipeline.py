"""The whole pipeline for end-to-end tests: sandboxes for the four channels, a private
Redis, a database, the sample communities with their accounts, and the environment that
makes real Celery worker processes use all of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, func, select

from channels.registry import queues
from channels.sandbox.graph import GraphSandbox
from channels.sandbox.line import LineSandbox
from channels.sandbox.smtp import SmtpSandbox
from channels.sandbox.youtube import YouTubeSandbox
from marketing.cli.communities import SAMPLE
from marketing.db import get_engine, session_scope, utcnow
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
from tests.support.line import expected_retry_key
from tests.support.markers import facebook_tag, youtube_uploads_for
from tests.support.services import CeleryWorker, PostgresDatabase, RedisServer, wait_until

FINAL = {
    PostState.PUBLISHED,
    PostState.FAILED,
    PostState.CANCELLED,
    PostState.UNCONFIRMED,
    PostState.NEEDS_RECONNECT,
}


def token_for(secret_name: str) -> str:
    return f"sandbox-token-{secret_name.lower()}"


class Broker(Protocol):
    """A Redis the workers share: :class:`RedisServer`, or one on a simulated host."""

    @property
    def url(self) -> str: ...

    def restart(self, pause: float = 0.5) -> None: ...


class PipelineStack:
    """Everything a publishing run needs except the workers, which tests start.

    The sandboxes listen on ``host`` (127.0.0.1 unless the workers run on other simulated
    hosts, see tests/support/hosts.py); ``graph`` replaces the default Graph sandbox.
    """

    def __init__(
        self,
        *,
        db_url: str,
        redis: Broker,
        tmp_path: Path,
        host: str = "127.0.0.1",
        graph: GraphSandbox | None = None,
        **settings: Any,
    ) -> None:
        self.db_url = db_url
        self.engine: Engine = get_engine(db_url)
        self.redis = redis
        self.tmp_path = tmp_path
        self.graph = (
            graph or GraphSandbox(host=host, page_call_limit=1_000_000, app_call_limit=10_000_000)
        ).start()
        self.youtube = YouTubeSandbox(host=host, quota_limits={"videos.insert": 1000}).start()
        self.smtp = SmtpSandbox(host=host).start()
        self.line = LineSandbox(host=host).start()
        self.video = tmp_path / "data" / "media" / "clip.mp4"  # inside the media root
        self.video.parent.mkdir(parents=True, exist_ok=True)
        self.video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
        self.env: dict[str, str] = {
            "MARKETING_DATABASE_URL": db_url,
            "MARKETING_BROKER_URL": redis.url,
            "MARKETING_DATA_DIR": str(tmp_path / "data"),
            "MARKETING_GRAPH_API_URL": self.graph.url,
            "MARKETING_YOUTUBE_ROOT_URL": self.youtube.url + "/",
            "MARKETING_LINE_API_URL": self.line.url,
            "MARKETING_SMTP_HOST": host,
            "MARKETING_SMTP_PORT": str(self.smtp.port),
            "MARKETING_DISPATCH_INTERVAL": "0.5",
            "MARKETING_QUEUE_LEASE": "5",
            "MARKETING_ATTEMPT_STALE_AFTER": "3",
            "MARKETING_RECONCILE_DELAY": "1",
            "MARKETING_BACKOFF_BASE": "0.5",
            "MARKETING_BACKOFF_CAP": "4",
            "MARKETING_MAX_TRANSIENT_FAILURES": "8",
            "MARKETING_PUBLISH_RATE_PER_MINUTE": "6000",
            "MARKETING_PUBLISH_BURST": "200",
            "MARKETING_YOUTUBE_DAILY_UPLOADS": "1000",
            **{f"MARKETING_{k.upper()}": str(v) for k, v in settings.items()},
        }
        with session_scope(self.engine) as session:
            import_reference(session=session, path=SAMPLE)
        with session_scope(self.engine) as session:
            # The sample communities have no LINE Official Account yet: each gets one here.
            for community in session.scalars(select(Community).order_by(Community.id)):
                secret = f"LINE_OA_{community.slug.upper().replace('-', '_')}"
                channel = self.line.register_channel(
                    token_for(secret),
                    basic_id=f"@{community.slug}"[:40],
                    display_name=community.name_th,
                    friends=30,
                )
                session.add(
                    ChannelAccount(
                        slug=f"line-{community.slug}",
                        kind=ChannelKind.LINE,
                        external_id=channel.user_id,
                        display_name=community.name_th,
                        secret_name=secret,
                        community_id=community.id,
                    )
                )
        with session_scope(self.engine) as session:
            for account in session.scalars(select(ChannelAccount)):
                if account.secret_name:
                    token = token_for(account.secret_name)
                    self.env[f"MARKETING_SECRET_{account.secret_name}"] = token
                    if account.kind == ChannelKind.FACEBOOK:
                        self.graph.register_page(account.external_id, token)
                    elif account.kind == ChannelKind.YOUTUBE:
                        self.youtube.register_channel(account.external_id, token)
        self.workers: list[CeleryWorker] = []

    def worker(
        self,
        name: str,
        *,
        beat: bool = True,
        concurrency: int = 2,
        prefix: tuple[str, ...] = (),
    ) -> CeleryWorker:
        """A worker (with an embedded beat unless ``beat`` is false), run under ``prefix``."""
        worker = CeleryWorker(
            self.env,
            prefix=prefix,
            name=name,
            concurrency=concurrency,
            beat=beat,
            log_dir=self.tmp_path,
            queues=",".join(queues()),
        )
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.graph.stop()
        self.youtube.stop()
        self.smtp.stop()
        self.line.stop()

    # -- posts ---------------------------------------------------------------------------

    def make_posts(
        self, per_channel: int, *, slug: str = "e2e", communities: int | None = None
    ) -> list[int]:
        """``per_channel`` due posts on each channel, spread over the ten communities (or the
        first ``communities`` of them), in an approved campaign."""
        now = utcnow()
        with session_scope(self.engine) as session:
            campaign = Campaign(
                slug=slug,
                name="ทดสอบทั้งระบบ",
                source_text="-",
                source_hash="-",
                status=CampaignStatus.APPROVED,
            )
            session.add(campaign)
            chosen = session.scalars(select(Community).order_by(Community.id)).all()
            chosen = chosen[:communities] if communities else chosen
            accounts = {
                (a.community_id, a.kind): a for a in session.scalars(select(ChannelAccount))
            }
            email_account = next(a for a in accounts.values() if a.kind == ChannelKind.EMAIL)
            posts = []
            for channel in ChannelKind:
                for i in range(per_channel):
                    community = chosen[i % len(chosen)]
                    account = (
                        email_account
                        if channel == ChannelKind.EMAIL
                        else accounts[(community.id, channel)]
                    )
                    post = Post(
                        campaign=campaign,
                        community_id=community.id,
                        channel_account_id=account.id,
                        channel=channel,
                        idempotency_key=f"{slug}-{channel.value}-{i:04d}",
                        occurrence_key=str(i),
                        scheduled_at=now,
                        next_try_at=now,
                        content=self.content(channel, community, i),
                        content_hash="-",
                    )
                    session.add(post)
                    posts.append(post)
            session.flush()
            return [p.id for p in posts]

    def content(self, channel: ChannelKind, community: Community, i: int) -> dict[str, Any]:
        if channel == ChannelKind.FACEBOOK:
            return {
                "message": f"เที่ยว{community.name_th} ตอนที่ {i} #สลากสร้างสรรค์",
                "link": "https://example.org/glo",
            }
        if channel == ChannelKind.YOUTUBE:
            return {
                "title": f"{community.name_th} ตอนที่ {i}",
                "description": f"เรื่องเล่าจาก{community.province}",
                "tags": ["ชุมชน"],
                "video": str(self.video),
                "privacy": "public",
            }
        if channel == ChannelKind.LINE:
            return {
                "text": f"สวัสดีค่ะ เรื่องเล่าจาก{community.province} ตอนที่ {i}",
                "card_title": f"เที่ยว{community.name_th}",
                "card_body": "สลากสร้างสรรค์เพื่อชุมชน",
                "link": "https://example.org/glo",
                "target": "broadcast",
            }
        return {
            "subject": f"ข่าว{community.name_th} ฉบับที่ {i}",
            "html": f"<p>สวัสดีค่ะ เรื่องเล่าจาก{community.province}</p>",
            "sender_name": "สลากสร้างสรรค์เพื่อชุมชน",
        }

    def send(self, task: str, **kwargs: Any) -> None:
        """Send a task to the workers through the broker, as beat would."""
        from celery import Celery

        client = Celery(broker=self.redis.url)
        client.conf.task_serializer = "json"
        client.send_task(task, kwargs=kwargs, queue="default")
        client.close()

    # -- observing -----------------------------------------------------------------------

    def states(self) -> Counter[PostState]:
        with session_scope(self.engine) as session:
            return Counter(
                dict(session.execute(select(Post.state, func.count()).group_by(Post.state)).all())
            )

    def wait_all_final(self, total: int, *, timeout: float) -> Counter[PostState]:
        def done() -> bool:
            states = self.states()
            return sum(n for s, n in states.items() if s in FINAL) == total

        try:
            wait_until(done, timeout=timeout, interval=0.5, what="every post to finish")
        except TimeoutError as exc:
            with session_scope(self.engine) as session:
                waiting = [
                    f"post {p.id} {p.channel.value} {p.state.value} next {p.next_try_at:%H:%M:%S}"
                    f" attempts {p.attempt_count}: {p.last_error}"
                    for p in session.scalars(select(Post).where(Post.state.not_in(FINAL)))
                ][:15]
            raise TimeoutError(
                f"{exc}; states now {dict(self.states())}; unfinished:\n"
                + "\n".join(waiting)
                + "\nworker log tail:\n"
                + "\n".join(w.log()[-1500:] for w in self.workers)
            ) from exc
        return self.states()

    def publications(self) -> dict[str, int]:
        """How many times each post went out, counted on the sandboxes (email: per post and
        recipient, so one post sent to three people counts 1 for each)."""
        with session_scope(self.engine) as session:
            posts = session.execute(select(Post.idempotency_key, Post.channel)).all()
        facebook = self.graph.count_by_marker()
        smtp = Counter((m.marker, m.subscriber_id) for m in self.smtp.messages)
        counts: dict[str, int] = {}
        for key, channel in posts:
            if channel == ChannelKind.FACEBOOK:
                counts[key] = facebook.get(facebook_tag(key), 0)
            elif channel == ChannelKind.YOUTUBE:
                counts[key] = len(youtube_uploads_for(self.youtube, key))
            elif channel == ChannelKind.LINE:
                counts[key] = self.line.count_by_retry_key(expected_retry_key(key))
            else:
                per_recipient = [n for (marker, _s), n in smtp.items() if marker == key]
                counts[key] = max(per_recipient, default=0)
        return counts


@contextmanager
def stack_on_fresh_services(tmp_path: Path) -> Iterator[PipelineStack]:
    """A :class:`PipelineStack` on a PostgreSQL database and a Redis of its own, migrated;
    everything closed, dropped and stopped afterwards."""
    from marketing import migrate

    database = PostgresDatabase().create()
    redis = RedisServer().start()
    migrate.upgrade(get_engine(database.url))
    stack = PipelineStack(db_url=database.url, redis=redis, tmp_path=tmp_path)
    try:
        yield stack
    finally:
        stack.close()
        redis.close()
        get_engine(database.url).dispose()
        database.drop()
