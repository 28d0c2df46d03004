"""The pipeline end to end, with real processes: Celery workers and beats on a private Redis,
PostgreSQL, and the four channel sandboxes.  Every post must go out exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from marketing.models import ChannelKind, PostState
from tests.support.pipeline import PipelineStack, stack_on_fresh_services
from tests.support.services import running, wait_until

pytestmark = pytest.mark.slow

PER_CHANNEL = 100  # 400 posts over four channels and ten communities
CHANNELS = len(ChannelKind)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[PipelineStack]:
    with stack_on_fresh_services(tmp_path) as stack:
        yield stack


def assert_exactly_once(stack: PipelineStack) -> None:
    counts = stack.publications()
    doubled = {k: n for k, n in counts.items() if n > 1}
    missing = {k: n for k, n in counts.items() if n == 0}
    assert doubled == {}, f"published more than once: {doubled}"
    assert missing == {}, f"never published: {sorted(missing)[:10]}"


def test_two_workers_and_two_beats_publish_each_post_once(stack: PipelineStack) -> None:
    stack.make_posts(PER_CHANNEL)
    with running(stack.worker("a"), stack.worker("b")):
        states = stack.wait_all_final(CHANNELS * PER_CHANNEL, timeout=240)
        assert states == {PostState.PUBLISHED: CHANNELS * PER_CHANNEL}
        assert_exactly_once(stack)
        # three subscribers per community: every email post reached each of them once
        assert len(stack.smtp.messages) == 3 * PER_CHANNEL

        # Six hours later (on the sandboxes' clocks) the collector reads engagement and
        # community performance shows every community on every channel.
        stack.graph.clock.advance(timedelta(hours=6))
        stack.youtube.clock.advance(timedelta(hours=6))
        stack.line.clock.advance(timedelta(hours=6))
        stack.send("marketing.collect_metrics", force=True)
        stack.send("marketing.rollup_recent")
        wait_until(
            lambda: len(performance(stack)) == 10 * CHANNELS,
            timeout=60,
            what="performance rows for 10 communities x every channel",
        )
    rows = performance(stack)
    for (community, channel), (posts, views, sent) in rows.items():
        assert posts == 10, (community, channel)
        assert (sent if channel == "email" else views) > 0, (community, channel)


def performance(stack: PipelineStack) -> dict[tuple[int, str], tuple[int, int, int]]:
    from sqlalchemy import func, select

    from marketing.db import session_scope
    from marketing.models import CommunityPerformance as P

    with session_scope(stack.engine) as session:
        rows = session.execute(
            select(
                P.community_id,
                P.channel,
                func.sum(P.posts),
                func.sum(P.views),
                func.sum(P.emails_sent),
            )
            .group_by(P.community_id, P.channel)
            .having(func.sum(P.posts) > 0, func.sum(P.views) + func.sum(P.emails_sent) > 0)
        ).all()
    return {(c, ch.value): (int(p), int(v), int(e)) for c, ch, p, v, e in rows}


def _reconciled(stack: PipelineStack) -> dict[str, int]:
    from sqlalchemy import func, select

    from marketing.db import session_scope
    from marketing.models import Attempt

    with session_scope(stack.engine) as session:
        rows = session.execute(
            select(Attempt.outcome, func.count()).group_by(Attempt.outcome)
        ).all()
    return {outcome.value: n for outcome, n in rows}


def test_worker_killed_mid_publish_is_reconciled_not_retried_blindly(
    stack: PipelineStack,
) -> None:
    from channels.sandbox.base import Fault

    # The first Facebook publication is created on the sandbox and its answer held: the call
    # is in flight, on purpose, when the worker dies.  Only the victim runs until then, so
    # the held call is the victim's.
    held = stack.graph.faults.add(Fault("hold", method="POST", path=r"/feed", times=1))
    stack.make_posts(PER_CHANNEL)
    victim = stack.worker("victim")
    try:
        with running(victim):
            assert held.wait_held(timeout=120), (
                "the victim never sent a Facebook publication; states "
                f"{dict(stack.states())}, worker log tail:\n{victim.log()[-2000:]}"
            )
            in_flight = stack.states().get(PostState.PUBLISHING, 0)
            assert in_flight >= 1, f"expected the held post publishing, saw {stack.states()}"
            victim.kill()  # SIGKILL the worker, its pool and its beat
    finally:
        held.release()  # the answer goes into the dead worker's closed socket
    with running(stack.worker("survivor"), stack.worker("replacement")):
        states = stack.wait_all_final(CHANNELS * PER_CHANNEL, timeout=240)
    assert states == {PostState.PUBLISHED: CHANNELS * PER_CHANNEL}, (
        f"expected all {CHANNELS * PER_CHANNEL} posts published, saw {dict(states)}"
    )
    assert_exactly_once(stack)
    outcomes = _reconciled(stack)
    assert outcomes.get("reconciled_found", 0) >= 1, (
        "expected the held publication's attempt reconciled and found on the Page, "
        f"saw attempt outcomes {outcomes}"
    )
    assert outcomes.get("unknown", 0) == 0, f"attempts left unknown: {outcomes}"


def test_redis_restart_mid_run_loses_and_doubles_nothing(stack: PipelineStack) -> None:
    from channels.sandbox.base import Fault

    # Hold the 31st Facebook publication in flight: Redis restarts while publishing is
    # under way (some published, at least one call open), whatever the machine's speed.
    stack.graph.faults.add(Fault("delay", method="POST", path=r"/feed", seconds=0, times=30))
    held = stack.graph.faults.add(Fault("hold", method="POST", path=r"/feed", times=1))
    stack.make_posts(PER_CHANNEL)
    with running(stack.worker("a"), stack.worker("b")):
        try:
            assert held.wait_held(timeout=120), (
                f"no 31st Facebook publication arrived; states {dict(stack.states())}"
            )
            before = stack.states()
            assert 0 < before.get(PostState.PUBLISHED, 0) < CHANNELS * PER_CHANNEL, (
                f"expected publishing under way when Redis restarts, saw {dict(before)}"
            )
            stack.redis.restart()  # every queued message is gone, like Redis without persistence
        finally:
            held.release()
        states = stack.wait_all_final(CHANNELS * PER_CHANNEL, timeout=240)
    assert states == {PostState.PUBLISHED: CHANNELS * PER_CHANNEL}, (
        f"expected all {CHANNELS * PER_CHANNEL} posts published, saw {dict(states)}"
    )
    assert_exactly_once(stack)


def test_faults_transient_rate_limits_and_a_dropped_answer(stack: PipelineStack) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from channels.sandbox.base import Fault
    from channels.sandbox.graph import error_fault as graph_error_fault
    from channels.sandbox.smtp import SmtpFault
    from channels.sandbox.youtube import error_fault as youtube_error_fault
    from marketing.db import session_scope
    from marketing.models import Attempt, AttemptOutcome, Post

    wait_asked = 2.0
    transient_fb = graph_error_fault(
        2,
        "(#2) Service temporarily unavailable",
        method="POST",
        path=r"/feed",
        times=None,
        is_transient=True,
    )
    transient_fb.probability = 0.1
    transient_yt = youtube_error_fault(
        503, "backendError", method="POST", path=r"^/upload/", times=None
    )
    transient_yt.probability = 0.1
    limited_yt = youtube_error_fault(
        403,
        "rateLimitExceeded",
        method="POST",
        path=r"^/upload/",
        times=5,
        headers={"Retry-After": str(int(wait_asked))},
    )
    stack.graph.faults.add(Fault("drop_after", method="POST", path=r"/feed", times=1))
    # LINE accepts a broadcast and its answer is lost, and so are the next two repeats under
    # the same retry key: LINE must still have accepted it once.
    stack.line.faults.add(Fault("drop_after", method="POST", path=r"/message/broadcast", times=3))
    stack.graph.faults.add(transient_fb)
    stack.youtube.faults.add(limited_yt)
    stack.youtube.faults.add(transient_yt)
    stack.smtp.inject(SmtpFault("reply", stage="rcpt", code=451, times=10))
    stack.make_posts(PER_CHANNEL)
    with running(stack.worker("a"), stack.worker("b")):
        states = stack.wait_all_final(CHANNELS * PER_CHANNEL, timeout=300)
    assert states == {PostState.PUBLISHED: CHANNELS * PER_CHANNEL}
    assert_exactly_once(stack)
    assert "POST" in {m for m, _p, a in stack.graph.faults.injected if a == "drop_after"}
    assert [a for _m, _p, a in stack.line.faults.injected].count("drop_after") == 3
    assert len(stack.line.accepted()) == PER_CHANNEL  # one accepted request per LINE post

    with session_scope(stack.engine) as session:
        attempts = session.execute(
            select(
                Attempt.post_id,
                Attempt.number,
                Attempt.outcome,
                Attempt.started_at,
                Attempt.finished_at,
            )
            .join(Post, Post.id == Attempt.post_id)
            .order_by(Attempt.post_id, Attempt.number)
        ).all()
    by_post: dict[int, list] = {}
    for row in attempts:
        by_post.setdefault(row.post_id, []).append(row)
    outcomes = [row.outcome for row in attempts]
    assert outcomes.count(AttemptOutcome.RATE_LIMITED) >= 5
    assert outcomes.count(AttemptOutcome.TRANSIENT) >= 3
    assert AttemptOutcome.RECONCILED_FOUND in outcomes  # the dropped answer, found again
    for rows in by_post.values():
        for before, after in zip(rows, rows[1:], strict=False):
            if before.outcome == AttemptOutcome.RATE_LIMITED:
                waited = after.started_at - before.finished_at
                assert waited >= timedelta(seconds=wait_asked), (before, after)


def test_expired_token_parks_one_account_and_the_rest_flows(stack: PipelineStack) -> None:
    from sqlalchemy import select

    from marketing.db import session_scope
    from marketing.models import AccountHealth, ChannelAccount, Post

    with session_scope(stack.engine) as session:
        victim = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == "nan-ban-doi-ngoen-facebook")
        ).one()
        victim_id, page_id = victim.id, victim.external_id
    stack.graph.expire_token(page_id)
    stack.make_posts(30)
    with running(stack.worker("a")):
        stack.wait_all_final(CHANNELS * 30, timeout=180)
    with session_scope(stack.engine) as session:
        rows = session.execute(select(Post.channel_account_id, Post.state)).all()
        account = session.get(ChannelAccount, victim_id)
        assert account is not None and account.health == AccountHealth.NEEDS_RECONNECT
    parked = [s for a, s in rows if a == victim_id]
    others = [s for a, s in rows if a != victim_id]
    assert parked and all(s == PostState.NEEDS_RECONNECT for s in parked)
    assert others and all(s == PostState.PUBLISHED for s in others)
    assert stack.graph.published(page_id) == []
