"""The publishing state machine, without workers or network: claims, outcomes, recovery."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from channels.base import Receipt
from channels.errors import (
    AuthExpired,
    OutcomeUnknown,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from marketing.cli.communities import SAMPLE
from marketing.db import session_scope
from marketing.models import (
    AccountHealth,
    Attempt,
    AttemptOutcome,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    Post,
    PostState,
)
from marketing.publishing import (
    Lease,
    Policy,
    PostActionRefused,
    abandoned_attempts,
    account_reconnected,
    begin_attempt,
    begin_attempts,
    cancel_post,
    claim_due,
    heartbeat,
    record_error,
    record_receipt,
    record_receipts,
    record_reconciliation,
    renew_attempts,
    requeue_stale,
    retry_post,
)
from marketing.reference import import_reference

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
POLICY = Policy(
    backoff_base=10,
    backoff_cap=100,
    attempt_stale_after=30,
    queue_lease=60,
    reconcile_max_tries=2,
    reconcile_delay=5,
    dispatch_batch=50,
)


def make_posts(
    engine: Engine,
    n: int,
    *,
    status: CampaignStatus = CampaignStatus.APPROVED,
    channel: ChannelKind = ChannelKind.FACEBOOK,
    due: datetime = NOW,
) -> list[int]:
    """n scheduled posts on the sample communities' accounts of ``channel``."""
    with session_scope(engine) as s:
        if s.scalar(select(Community.id).limit(1)) is None:
            import_reference(session=s, path=SAMPLE)
            s.flush()
        campaign = Campaign(
            slug=f"c{random.randrange(10**9)}",
            name="ทดสอบ",
            source_text="x",
            source_hash="h",
            status=status,
        )
        s.add(campaign)
        accounts = s.scalars(
            select(ChannelAccount)
            .where(ChannelAccount.kind == channel)
            .order_by(ChannelAccount.community_id.is_(None), ChannelAccount.id)
        ).all()
        communities = s.scalars(select(Community.id).order_by(Community.id)).all()
        posts = []
        for i in range(n):
            account = accounts[i % len(accounts)]
            post = Post(
                campaign=campaign,
                community_id=account.community_id or communities[i % len(communities)],
                channel_account_id=account.id,
                channel=channel,
                idempotency_key=f"{campaign.slug}-{i}",
                occurrence_key=str(i),
                scheduled_at=due,
                next_try_at=due,
                content={"message": "สวัสดี"},
                content_hash="h",
            )
            s.add(post)
            posts.append(post)
        s.flush()
        return [p.id for p in posts]


def state(session: Session, post_id: int) -> PostState:
    session.commit()  # end the read snapshot so other transactions' writes are visible
    session.expire_all()
    post = session.get(Post, post_id)
    assert post is not None
    return post.state


def receipt(post_id: int) -> Receipt:
    return Receipt(
        external_id=f"page_{post_id}", permalink=f"https://fb.example/{post_id}", published_at=NOW
    )


def test_only_due_posts_of_approved_campaigns_are_queued(engine: Engine, session: Session) -> None:
    due = make_posts(engine, 3)
    later = make_posts(engine, 2, due=NOW + timedelta(hours=1))
    draft = make_posts(engine, 2, status=CampaignStatus.DRAFT)
    result = claim_due(engine=engine, policy=POLICY, now=NOW)
    assert sorted(i for i, _ in result.queued) == sorted(due)
    assert all(state(session, i) == PostState.QUEUED for i in due)
    assert all(state(session, i) == PostState.SCHEDULED for i in later + draft)
    assert claim_due(engine=engine, policy=POLICY, now=NOW).queued == []


def test_concurrent_dispatchers_queue_each_post_once(engine: Engine) -> None:
    ids = make_posts(engine, 120)
    taken: list[int] = []
    lock = threading.Lock()

    def dispatch() -> None:
        while True:
            got = claim_due(engine=engine, policy=POLICY, now=NOW).queued
            if not got:
                return
            with lock:
                taken.extend(i for i, _ in got)

    threads = [threading.Thread(target=dispatch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)


def test_a_duplicate_message_is_harmless(engine: Engine, session: Session) -> None:
    (post_id,) = make_posts(engine, 1)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    first = begin_attempt(engine=engine, post_id=post_id, worker="w1", now=NOW)
    second = begin_attempt(engine=engine, post_id=post_id, worker="w2", now=NOW)
    assert first is not None and second is None
    assert state(session, post_id) == PostState.PUBLISHING
    attempt = session.get(Attempt, first.attempt_id)
    assert attempt is not None and attempt.outcome == AttemptOutcome.UNKNOWN
    record_receipt(engine=engine, claim=first, receipt=receipt(post_id), now=NOW)
    assert state(session, post_id) == PostState.PUBLISHED
    assert begin_attempt(engine=engine, post_id=post_id, worker="w3", now=NOW) is None
    post = session.get(Post, post_id)
    assert post is not None
    assert (post.external_id, post.attempt_count) == (f"page_{post_id}", 1)
    assert post.metrics_due_at == NOW + timedelta(hours=1)


def test_a_batch_is_claimed_together_and_its_receipts_recorded_together(
    engine: Engine, session: Session
) -> None:
    ids = make_posts(engine, 4)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    paused = make_posts(engine, 1)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    post = session.get(Post, paused[0])
    assert post is not None
    session.get(Campaign, post.campaign_id).status = CampaignStatus.PAUSED  # type: ignore[union-attr]
    session.commit()
    first = begin_attempt(engine=engine, post_id=ids[1], worker="w0", now=NOW)
    assert first is not None

    # Asked in this order: the one another message holds and the paused one are left out,
    # the others come back in the order asked, each with its own open attempt.
    asked = [ids[3], ids[1], paused[0], ids[0], ids[2]]
    claims = begin_attempts(engine=engine, post_ids=asked, worker="w1", now=NOW)
    assert [c.post_id for c in claims] == [ids[3], ids[0], ids[2]]
    assert len({c.attempt_id for c in claims} | {first.attempt_id}) == 4
    assert all(c.attempt_number == 1 and c.started_at == NOW for c in claims)
    assert state(session, paused[0]) == PostState.SCHEDULED
    assert begin_attempts(engine=engine, post_ids=asked, worker="w2", now=NOW) == []

    # One post was settled meanwhile (its answer was slow, and it was reconciled): its
    # receipt in the batch changes nothing, the others are published.
    record_receipt(engine=engine, claim=claims[1], receipt=receipt(ids[0]), now=NOW)
    record_receipts(engine=engine, published=[(c, receipt(c.post_id)) for c in claims], now=NOW)
    session.commit()
    for claim in claims:
        assert state(session, claim.post_id) == PostState.PUBLISHED
        row = session.get(Post, claim.post_id)
        attempt = session.get(Attempt, claim.attempt_id)
        assert row is not None and attempt is not None
        assert row.external_id == f"page_{claim.post_id}"
        assert (attempt.outcome, attempt.finished_at) == (AttemptOutcome.PUBLISHED, NOW)
    assert state(session, ids[1]) == PostState.PUBLISHING  # its own claim is still open


def test_paused_campaign_puts_queued_post_back(engine: Engine, session: Session) -> None:
    (post_id,) = make_posts(engine, 1)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    post = session.get(Post, post_id)
    assert post is not None
    session.get(Campaign, post.campaign_id).status = CampaignStatus.PAUSED  # type: ignore[union-attr]
    session.commit()
    assert begin_attempt(engine=engine, post_id=post_id, worker="w", now=NOW) is None
    assert state(session, post_id) == PostState.SCHEDULED


def _claimed(engine: Engine) -> tuple[int, object]:
    (post_id,) = make_posts(engine, 1)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    claim = begin_attempt(engine=engine, post_id=post_id, worker="w", now=NOW)
    assert claim is not None
    return post_id, claim


def test_rate_limited_waits_as_long_as_the_channel_asked(engine: Engine, session: Session) -> None:
    post_id, claim = _claimed(engine)
    new = record_error(
        engine=engine,
        claim=claim,
        error=RateLimited("slow", retry_after=900),  # type: ignore[arg-type]
        policy=POLICY,
        now=NOW,
    )
    assert new == PostState.SCHEDULED
    post = session.get(Post, post_id)
    assert post is not None and post.next_try_at == NOW + timedelta(seconds=900)
    assert claim_due(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=899)).queued == []
    assert claim_due(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=900)).queued


def test_quota_exhausted_waits_for_the_reset(engine: Engine, session: Session) -> None:
    post_id, claim = _claimed(engine)
    record_error(
        engine=engine,
        claim=claim,
        error=QuotaExhausted("quota", retry_after=7200),  # type: ignore[arg-type]
        policy=POLICY,
        now=NOW,
    )
    post = session.get(Post, post_id)
    assert post is not None and post.next_try_at == NOW + timedelta(hours=2)


def test_transient_errors_back_off_then_fail(engine: Engine, session: Session) -> None:
    policy = Policy(max_transient_failures=3, backoff_base=10, backoff_cap=1000)
    (post_id,) = make_posts(engine, 1)
    now = NOW
    waits = []
    for n in range(1, 4):
        claim_due(engine=engine, policy=policy, now=now)
        claim = begin_attempt(engine=engine, post_id=post_id, worker="w", now=now)
        assert claim is not None
        new = record_error(
            engine=engine,
            claim=claim,
            error=TransientError("502"),
            policy=policy,
            now=now,
            rng=random.Random(n),
        )
        state(session, post_id)  # fresh read
        post = session.get(Post, post_id)
        assert post is not None
        if n < 3:
            assert new == PostState.SCHEDULED
            wait = (post.next_try_at - now).total_seconds()
            ceiling = 10 * 2 ** (n - 1)
            assert ceiling / 2 <= wait <= ceiling
            waits.append(wait)
            now = post.next_try_at
        else:
            assert new == PostState.FAILED
            assert "retry" in (post.action_hint or "")
    retry_post(session=session, post_id=post_id, now=now)
    session.commit()
    post = session.get(Post, post_id)
    assert post is not None and post.transient_failures == 0 and post.state == PostState.SCHEDULED


def test_auth_expired_parks_the_account_and_its_posts(engine: Engine, session: Session) -> None:
    ids = make_posts(engine, 20)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    claim = begin_attempt(engine=engine, post_id=ids[0], worker="w", now=NOW)
    assert claim is not None
    record_error(
        engine=engine,
        claim=claim,
        error=AuthExpired("token expired", code="190"),
        policy=POLICY,
        now=NOW,
    )
    account = session.get(ChannelAccount, claim.account_id)
    assert account is not None and account.health == AccountHealth.NEEDS_RECONNECT
    assert state(session, ids[0]) == PostState.NEEDS_RECONNECT
    # The other queued posts of that account are parked when a worker picks them up;
    # every other account's posts still go out.
    same = [i for i in ids[1:] if session.get(Post, i).channel_account_id == account.id]  # type: ignore[union-attr]
    other = [i for i in ids[1:] if i not in same]
    for post_id in ids[1:]:
        got = begin_attempt(engine=engine, post_id=post_id, worker="w", now=NOW)
        assert (got is None) == (post_id in same)
    assert all(state(session, i) == PostState.NEEDS_RECONNECT for i in same)
    assert all(state(session, i) == PostState.PUBLISHING for i in other)
    assert account_reconnected(session=session, slug=account.slug, now=NOW) == len(same) + 1
    session.commit()
    assert all(state(session, i) == PostState.SCHEDULED for i in [ids[0], *same])


def test_permanent_error_fails_with_the_channels_message(engine: Engine, session: Session) -> None:
    post_id, claim = _claimed(engine)
    record_error(
        engine=engine,
        claim=claim,  # type: ignore[arg-type]
        error=PermanentError(
            "(#506) Duplicate status message",
            code="506",
            hint="Change the text; Facebook refuses a repeat.",
        ),
        policy=POLICY,
        now=NOW,
    )
    post = session.get(Post, post_id)
    assert post is not None
    assert post.state == PostState.FAILED
    assert "Duplicate" in (post.last_error or "")
    assert post.action_hint == "Change the text; Facebook refuses a repeat."


def test_outcome_unknown_is_reconciled_not_retried(engine: Engine, session: Session) -> None:
    post_id, claim = _claimed(engine)
    record_error(
        engine=engine,
        claim=claim,
        error=OutcomeUnknown("connection dropped"),  # type: ignore[arg-type]
        policy=POLICY,
        now=NOW,
    )
    assert state(session, post_id) == PostState.PUBLISHING
    assert claim_due(engine=engine, policy=POLICY, now=NOW + timedelta(hours=1)).queued == []
    # Not at once (a listing may lag), but after reconcile_delay the sweeper takes it (once,
    # even with two sweepers).
    assert abandoned_attempts(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=4)) == []
    later = NOW + timedelta(seconds=POLICY.reconcile_delay + 1)
    taken = abandoned_attempts(engine=engine, policy=POLICY, now=later)
    assert [c.post_id for c in taken] == [post_id]
    assert abandoned_attempts(engine=engine, policy=POLICY, now=later) == []
    found = record_reconciliation(
        engine=engine, claim=taken[0], found=receipt(post_id), error=None, policy=POLICY, now=later
    )
    assert found == PostState.PUBLISHED
    assert state(session, post_id) == PostState.PUBLISHED
    attempt = session.get(Attempt, claim.attempt_id)  # type: ignore[attr-defined]
    assert attempt is not None and attempt.outcome == AttemptOutcome.RECONCILED_FOUND


def test_dead_worker_absent_publication_is_retried(engine: Engine, session: Session) -> None:
    post_id, _claim = _claimed(engine)
    # The worker died: no heartbeat after NOW. Before the stale time nothing happens.
    assert abandoned_attempts(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=29)) == []
    (taken,) = abandoned_attempts(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=31))
    new = record_reconciliation(
        engine=engine,
        claim=taken,
        found=None,
        error=None,
        policy=POLICY,
        now=NOW + timedelta(seconds=31),
    )
    assert new == PostState.SCHEDULED
    again = claim_due(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=31)).queued
    assert [i for i, _ in again] == [post_id]


def test_cannot_tell_becomes_unconfirmed_after_tries(engine: Engine, session: Session) -> None:
    post_id, _claim = _claimed(engine)
    now = NOW
    for tries in range(1, POLICY.reconcile_max_tries + 1):
        now += timedelta(seconds=POLICY.attempt_stale_after + 1)
        (taken,) = abandoned_attempts(engine=engine, policy=POLICY, now=now)
        new = record_reconciliation(
            engine=engine,
            claim=taken,
            found=None,
            error=TransientError("graph down"),
            policy=POLICY,
            now=now,
        )
        expected = (
            PostState.UNCONFIRMED if tries == POLICY.reconcile_max_tries else (PostState.PUBLISHING)
        )
        assert new == expected
    post = session.get(Post, post_id)
    assert post is not None and "marketing posts resolve" in (post.action_hint or "")
    with pytest.raises(PostActionRefused):
        cancel_post(session=session, post_id=999_999)


def test_lost_doorbell_is_rung_again(engine: Engine) -> None:
    (post_id,) = make_posts(engine, 1)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    assert requeue_stale(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=59)) == []
    again = requeue_stale(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=61))
    assert [i for i, _ in again] == [post_id]
    assert requeue_stale(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=62)) == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no server
def test_a_connection_the_server_dropped_costs_one_retry_not_the_claim(db_url: str) -> None:
    """The publishing pool does not ping at checkout: a connection PostgreSQL has dropped
    fails the statement, and the claim is made again on a new connection."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from marketing.db import get_engine, retry_on_disconnect

    pinged, engine = get_engine(db_url), get_engine(db_url, pre_ping=False)
    assert engine is not pinged and engine.pool._pre_ping is False  # type: ignore[attr-defined]
    ids = make_posts(engine, 2)
    claim_due(engine=engine, policy=POLICY, now=NOW)

    def drop_the_pooled_connection() -> None:
        with engine.connect() as conn:  # the one connection the pool will hand out next
            pid = conn.scalar(text("SELECT pg_backend_pid()"))
        with pinged.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    drop_the_pooled_connection()
    with pytest.raises(DBAPIError) as raised:
        begin_attempts(engine=engine, post_ids=[ids[0]], worker="w", now=NOW)
    assert raised.value.connection_invalidated

    drop_the_pooled_connection()
    claims = retry_on_disconnect(
        lambda: begin_attempts(engine=engine, post_ids=ids, worker="w", now=NOW)
    )
    assert [c.post_id for c in claims] == ids
    with session_scope(pinged) as s:
        assert {s.get(Post, i).state for i in ids} == {PostState.PUBLISHING}  # type: ignore[union-attr]


def test_a_beat_renews_open_claims_never_backwards_and_not_those_a_sweeper_took(
    engine: Engine, session: Session
) -> None:
    from marketing.db import utcnow

    ids = make_posts(engine, 4)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    claims = begin_attempts(engine=engine, post_ids=ids, worker="w", now=NOW)
    attempts = [c.attempt_id for c in claims]
    later, ahead = NOW + timedelta(seconds=10), utcnow() + timedelta(days=1)
    record_receipt(engine=engine, claim=claims[3], receipt=receipt(ids[3]), now=NOW)
    with session_scope(engine) as s:  # a lost answer's attempt: reconciled no sooner
        s.get(Attempt, attempts[1]).heartbeat_at = ahead  # type: ignore[union-attr]
        s.get(Attempt, attempts[2]).heartbeat_at = later  # type: ignore[union-attr]

    # The worker stalled: a sweeper takes the claim whose heartbeat is stale.
    taken = abandoned_attempts(engine=engine, policy=POLICY, now=NOW + timedelta(seconds=31))
    assert [c.attempt_id for c in taken] == [attempts[0]]
    assert renew_attempts(engine=engine, attempt_ids=attempts, now=later) == set(attempts[1:3])

    def beat_of(attempt_id: int) -> datetime:
        with session_scope(engine) as s:
            attempt = s.get(Attempt, attempt_id)
            assert attempt is not None
            return attempt.heartbeat_at

    assert beat_of(attempts[1]) == ahead and beat_of(attempts[2]) == later
    assert beat_of(attempts[3]) == NOW  # closed: not beaten


def test_a_lease_holds_what_the_last_beat_confirmed_for_half_the_stale_time() -> None:
    clock = [100.0]
    lease = Lease([1, 2], renewed_at=100.0, stale_after=4, clock=lambda: clock[0])
    assert lease.holds(1) and lease.holds(2) and not lease.holds(3)
    clock[0] = 101.9
    assert lease.holds(1)
    clock[0] = 102.0  # no beat confirmed the claims for half the stale time: stop sending
    assert not lease.holds(1) and not lease.holds(2)
    lease.renewed({2}, at=102.0)  # a sweeper took 1 meanwhile
    assert not lease.holds(1) and lease.holds(2)


def test_the_heartbeat_thread_beats_for_the_claims(engine: Engine) -> None:
    import time

    from tests.support.services import wait_until

    ids = make_posts(engine, 2)
    claim_due(engine=engine, policy=POLICY, now=NOW)
    claims = begin_attempts(engine=engine, post_ids=ids, worker="w", now=NOW)
    attempts = [c.attempt_id for c in claims]
    with heartbeat(
        engine=engine, attempt_ids=attempts, stale_after=0.04, claimed_at=time.monotonic()
    ):

        def beaten() -> bool:
            with session_scope(engine) as s:
                return all(s.get(Attempt, a).heartbeat_at > NOW for a in attempts)  # type: ignore[union-attr]

        wait_until(beaten, timeout=30, what="a beat")
