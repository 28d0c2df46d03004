"""The restore drill: back up while a post is in flight, let publishing go on, lose the
database, restore the backup into a fresh one and start new workers.  Nothing goes out twice:
the post in flight at backup time and every post published after it are found again by their
markers; e-mail sent after the backup is left unconfirmed for a person, never sent again.

Real parts throughout: a Celery worker on a private Redis, the four sandboxes, SQLite and a
PostgreSQL database made for the restore."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.sandbox.base import Fault
from marketing import migrate
from marketing.backup import create_backup, read_manifest, restore_backup
from marketing.db import get_engine, session_scope
from marketing.models import Attempt, AttemptOutcome, ChannelKind, Post, PostState
from tests.support.pipeline import PipelineStack
from tests.support.services import PostgresDatabase, RedisServer, running

pytestmark = pytest.mark.slow

PER_CHANNEL = 4  # 12 posts: enough for one in flight, some before and some after the backup


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(the service's database, migrated; an empty one for the restore, as createdb makes)."""
    if request.param == "sqlite":
        source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
        migrate.upgrade(get_engine(source))
        yield source, f"sqlite:///{tmp_path / 'restored' / 'restored.sqlite3'}"
        return
    source_db = PostgresDatabase(prefix="mkt_drill").create()
    target_db = PostgresDatabase(prefix="mkt_drill").create()
    try:
        migrate.upgrade(get_engine(source_db.url))
        yield source_db.url, target_db.url
    finally:
        for database in (source_db, target_db):
            get_engine(database.url).dispose()
            database.drop()


def test_restore_after_publishing_went_on_publishes_each_post_once(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    redis = RedisServer().start()
    stack = PipelineStack(db_url=source, redis=redis, tmp_path=tmp_path)
    media = tmp_path / "data" / "media"
    archive = tmp_path / "backups" / "drill.tar"
    try:
        # The first Facebook publication is made on the Page and its answer held: with one
        # worker process the database stands still while it is in flight.  The worker claims
        # the Page's posts as one batch (MARKETING_PUBLISH_BATCH), so the backup holds them
        # all as publishing: the held one made, the others not yet sent.
        held = stack.graph.faults.add(Fault("hold", method="POST", path=r"/feed", times=1))
        stack.make_posts(PER_CHANNEL)
        total = len(ChannelKind) * PER_CHANNEL
        with running(stack.worker("before", concurrency=1)):
            assert held.wait_held(timeout=60), f"nothing in flight; {dict(stack.states())}"
            with session_scope(stack.engine) as session:
                in_flight = session.scalars(
                    select(Post.id).where(Post.state == PostState.PUBLISHING)
                ).all()
            assert 1 <= len(in_flight) <= PER_CHANNEL
            create_backup(database_url=source, media_root=media, target=archive)
            held.release()
            stack.wait_all_final(total, timeout=60)  # publishing goes on after the backup
        sent_before_loss = len(stack.smtp.messages)
        at_backup = read_manifest(archive)

        # The disaster: the database host and its media are gone.
        shutil.rmtree(media)
        result = restore_backup(archive=archive, database_url=target, media_root=media)
        assert result.manifest.created_at == at_backup.created_at
        assert result.revision_now == migrate.head_revision()
        assert stack.video.is_file()  # the media came back with the database

        stack.engine = get_engine(target)
        stack.env["MARKETING_DATABASE_URL"] = target
        with session_scope(stack.engine) as session:
            restored = Counter(session.scalars(select(Post.state)).all())
        assert restored[PostState.PUBLISHED] < total, "the backup was taken mid-run"
        with running(stack.worker("after")):
            final = stack.wait_all_final(total, timeout=60)

        counts = stack.publications()
        assert {k: n for k, n in counts.items() if n != 1} == {}, "lost or doubled"
        assert len(stack.smtp.messages) == sent_before_loss, "an e-mail went out again"
        with session_scope(stack.engine) as session:
            rows = session.execute(select(Post.channel, Post.state)).all()
            outcomes = Counter(session.scalars(select(Attempt.outcome)).all())
        social = [s for c, s in rows if c != ChannelKind.EMAIL]
        assert social == [PostState.PUBLISHED] * ((len(ChannelKind) - 1) * PER_CHANNEL)
        email = Counter(s for c, s in rows if c == ChannelKind.EMAIL)
        assert set(email) <= {PostState.PUBLISHED, PostState.UNCONFIRMED}, email
        assert sum(final.values()) == total
        # the held post and those published after the backup were found, not sent again
        with session_scope(stack.engine) as session:
            for post_id in in_flight:
                held_outcomes = session.scalars(
                    select(Attempt.outcome).where(Attempt.post_id == post_id)
                ).all()
                assert held_outcomes == [AttemptOutcome.RECONCILED_FOUND], (post_id, held_outcomes)
        assert outcomes[AttemptOutcome.RECONCILED_FOUND] > 1, outcomes
        assert outcomes[AttemptOutcome.UNKNOWN] == 0, outcomes
    finally:
        stack.close()
        redis.close()
