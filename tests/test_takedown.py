"""Takedown: a published post removed from its channel through the real SDKs, against the
sandboxes, and the request recorded (who, why) on both databases."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import Engine, select

from channels.base import Account, OutgoingPost
from channels.facebook import FacebookAdapter
from channels.quota import UNITS, InMemoryQuotaLedger
from channels.sandbox.graph import GraphSandbox
from channels.sandbox.youtube import YouTubeSandbox
from channels.youtube import YouTubeAdapter
from marketing.cli import main
from marketing.cli.communities import SAMPLE
from marketing.db import session_scope, utcnow
from marketing.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Post,
    PostState,
)
from marketing.reference import import_reference
from marketing.settings import reset_settings

PAGE, FB_TOKEN = "1122334455", "EAAtakedown"
CHANNEL, YT_TOKEN = "UCtakedown0000000000000", "ya29.takedown"


@pytest.fixture
def graph() -> Iterator[GraphSandbox]:
    with GraphSandbox(seed=3) as sandbox:
        assert isinstance(sandbox, GraphSandbox)
        sandbox.register_page(PAGE, FB_TOKEN)
        yield sandbox


@pytest.fixture
def youtube() -> Iterator[YouTubeSandbox]:
    server = YouTubeSandbox(seed=3).start()
    assert isinstance(server, YouTubeSandbox)
    server.register_channel(CHANNEL, YT_TOKEN)
    try:
        yield server
    finally:
        server.stop()


def fb_account(token: str = FB_TOKEN) -> Account:
    return Account("facebook", PAGE, "เพจทดสอบ", SecretStr(token))


def test_facebook_post_is_deleted_through_the_sdk(graph: GraphSandbox) -> None:
    adapter = FacebookAdapter(graph_url=graph.url, api_version="v25.0", timeout=5)
    try:
        receipt = adapter.publish(OutgoingPost("tk-1", fb_account(), {"message": "ภาพตลาดนัดชุมชน"}))
        adapter.publish(OutgoingPost("tk-2", fb_account(), {"message": "อีกโพสต์หนึ่ง"}))
        assert adapter.take_down(fb_account(), receipt.external_id) is True
        assert [p.id for p in graph.removed] == [receipt.external_id]
        assert receipt.external_id not in {p.id for p in graph.published(PAGE)}
        assert len(graph.published(PAGE)) == 1  # the other post stays
        # asked again: it is gone already, which is not an error
        assert adapter.take_down(fb_account(), receipt.external_id) is False
    finally:
        adapter.close()


def test_youtube_video_is_deleted_through_the_sdk(youtube: YouTubeSandbox, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + random.Random(1).randbytes(300_000))
    adapter = YouTubeAdapter(root_url=youtube.url, ledger=InMemoryQuotaLedger())
    account = Account("youtube", CHANNEL, "ช่องทดสอบ", SecretStr(YT_TOKEN))
    content = {"title": "ตลาดนัดชุมชน", "description": "-", "video": str(video)}
    receipt = adapter.publish(OutgoingPost("tk-yt", account, content))
    spent = youtube.quota_used(UNITS)
    assert adapter.take_down(account, receipt.external_id) is True
    assert receipt.external_id not in youtube.videos
    assert [v.id for v in youtube.deleted] == [receipt.external_id]
    assert youtube.quota_used(UNITS) == spent + 50  # videos.delete costs 50 units
    assert adapter.take_down(account, receipt.external_id) is False


def test_cli_takedown_records_who_and_why(
    engine: Engine, graph: GraphSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(engine) as session:
        import_reference(session=session, path=SAMPLE)
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.kind == ChannelKind.FACEBOOK)
        ).first()
        assert account is not None and account.secret_name
        graph.register_page(account.external_id, FB_TOKEN + "x")
        monkeypatch.setenv(f"MARKETING_SECRET_{account.secret_name}", FB_TOKEN + "x")
        monkeypatch.setenv("MARKETING_GRAPH_API_URL", graph.url)
        reset_settings()
        adapter = FacebookAdapter(graph_url=graph.url, api_version="v25.0", timeout=5)
        page = Account("facebook", account.external_id, "-", SecretStr(FB_TOKEN + "x"))
        receipt = adapter.publish(OutgoingPost("tk-cli", page, {"message": "ภาพงานบุญ"}))
        adapter.close()
        campaign = Campaign(
            slug="tk", name="-", source_text="-", source_hash="-", status=CampaignStatus.APPROVED
        )
        now = utcnow()
        post = Post(
            campaign=campaign,
            community_id=account.community_id,
            channel_account_id=account.id,
            channel=ChannelKind.FACEBOOK,
            idempotency_key="tk-cli",
            occurrence_key="1",
            scheduled_at=now,
            next_try_at=now,
            content={"message": "ภาพงานบุญ"},
            content_hash="-",
            state=PostState.PUBLISHED,
            external_id=receipt.external_id,
            published_at=now,
            metrics_due_at=now,
        )
        session.add(post)
        session.flush()
        post_id = post.id

    from tasks import wiring

    wiring.reset()
    runner = CliRunner()
    args = ["posts", "takedown", str(post_id), "--reason", "ถอนความยินยอมภาพบุคคล"]
    done = runner.invoke(main, [*args, "--by", "คุณมาลี (ผู้ร้องขอ)"], catch_exceptions=False)
    wiring.reset()
    assert done.exit_code == 0, done.output
    assert [p.id for p in graph.removed] == [receipt.external_id]
    with session_scope(engine) as session:
        stored = session.get(Post, post_id)
        assert stored is not None and stored.taken_down_at is not None
        assert stored.takedown_by == "คุณมาลี (ผู้ร้องขอ)"
        assert stored.takedown_reason == "ถอนความยินยอมภาพบุคคล"
        assert stored.metrics_due_at is None
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "post.takedown")).one()
        assert entry.object_id == str(post_id) and entry.detail["removed"] is True
    again = runner.invoke(main, [*args, "--by", "x"], catch_exceptions=False)
    assert again.exit_code == 2 and "already" in again.output


def test_youtube_video_made_private_keeps_its_other_settings(
    youtube: YouTubeSandbox, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + random.Random(2).randbytes(300_000))
    adapter = YouTubeAdapter(root_url=youtube.url, ledger=InMemoryQuotaLedger())
    account = Account("youtube", CHANNEL, "ช่องทดสอบ", SecretStr(YT_TOKEN))
    content = {"title": "งานบุญ", "description": "-", "video": str(video), "privacy": "public"}
    receipt = adapter.publish(OutgoingPost("tk-private", account, content))
    youtube.videos[receipt.external_id].status["embeddable"] = False
    assert adapter.take_down(account, receipt.external_id, private=True) is True
    status = youtube.videos[receipt.external_id].status
    assert status["privacyStatus"] == "private"
    assert status["embeddable"] is False  # read first, so the update did not reset it
    assert youtube.calls_to("videos.update") == 1
    assert adapter.take_down(account, "noSuchVideo", private=True) is False
