"""Publishing each post exactly once: claims, attempts, outcomes and reconciliation.

No Celery and no network here: :mod:`tasks.publishing` calls these functions around the
adapter call, so the rules can be tested without a worker.

The contract, step by step::

    scheduled --claim_due--> queued --begin_attempt--> publishing --record_receipt--> published
        ^                      |  (doorbell lost:           |
        |                      |   requeue_stale re-rings)   +--record_error--> scheduled (retry
        +----------------------+                            |       at next_try_at), failed,
                                                            |       needs_reconnect
                                                            +--(worker died / outcome unknown)
                                                               abandoned_attempts -> reconcile:
                                                               found -> published; absent ->
                                                               scheduled; cannot tell -> unconfirmed

* A post is claimed in a committed transaction (queued -> publishing) and an ``Attempt`` with
  outcome ``unknown`` is written *before* any network call.  If the worker dies, that attempt
  says so, and nothing else may publish the post until it is reconciled.
* A duplicate message, a second beat or a redelivery finds the post no longer ``queued`` and
  does nothing: the claim, not the broker, guarantees "once".
* An attempt whose outcome is unknown is never retried blindly: the channel is asked to find
  the publication by its marker first.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, case, insert, select, update
from sqlalchemy.orm import Session

from channels.base import Capability, Receipt
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    RateLimited,
    TransientError,
)
from marketing import observability
from marketing.db import UTCDateTime, session_scope, utcnow, write_session
from marketing.models import (
    AccountHealth,
    Attempt,
    AttemptOutcome,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Highlight,
    Post,
    PostState,
    channels_that,
)
from marketing.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: Posts that need a person before anything more happens to them.
PROBLEM_STATES = (PostState.FAILED, PostState.UNCONFIRMED, PostState.NEEDS_RECONNECT)
#: Posts that will not change any more on their own.
FINAL_STATES = (PostState.PUBLISHED, PostState.FAILED, PostState.CANCELLED)
#: Ages after publication at which metrics are collected (then daily until the last).
METRICS_AGES = (
    timedelta(hours=1),
    timedelta(hours=6),
    *(timedelta(days=d) for d in range(1, 29)),
)


@dataclass(frozen=True)
class Policy:
    """How hard the pipeline tries and how long it waits; read from the settings."""

    max_transient_failures: int = 5
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0
    attempt_stale_after: float = 60.0
    queue_lease: float = 120.0
    reconcile_max_tries: int = 5
    reconcile_delay: float = 60.0
    dispatch_batch: int = 500
    publish_batch: int = 10
    rate_limit_default: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Policy:
        s = settings or get_settings()
        return cls(
            max_transient_failures=s.max_transient_failures,
            backoff_base=s.backoff_base,
            backoff_cap=s.backoff_cap,
            attempt_stale_after=s.attempt_stale_after,
            queue_lease=s.queue_lease,
            reconcile_max_tries=s.reconcile_max_tries,
            reconcile_delay=s.reconcile_delay,
            dispatch_batch=s.dispatch_batch,
            publish_batch=s.publish_batch,
        )

    def backoff(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``failures``-th transient failure: exponential, capped,
        with full jitter so many posts failing together do not retry together."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(failures - 1, 0))
        return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Claim:
    """A post a worker holds (state ``publishing``) with its open attempt: everything the
    adapter call needs, as plain values."""

    post_id: int
    attempt_id: int
    attempt_number: int
    channel: ChannelKind
    marker: str
    content: dict[str, Any]
    account_id: int
    account_external_id: str
    account_display_name: str
    account_secret_name: str | None
    community_id: int
    started_at: datetime

    @classmethod
    def of(cls, post: Post, attempt: Attempt, account: ChannelAccount) -> Claim:
        """The claim on ``post`` through ``attempt`` (rows read in the claiming transaction)."""
        return cls(
            post_id=post.id,
            attempt_id=attempt.id,
            attempt_number=attempt.number,
            channel=post.channel,
            marker=post.idempotency_key,
            content=dict(post.content),
            account_id=account.id,
            account_external_id=account.external_id,
            account_display_name=account.display_name,
            account_secret_name=account.secret_name,
            community_id=post.community_id,
            started_at=attempt.started_at,
        )


@dataclass
class DispatchResult:
    """What one dispatch pass did."""

    queued: list[tuple[int, ChannelKind]] = field(default_factory=list)
    needs_reconnect: list[int] = field(default_factory=list)


def _locking(session: Session) -> bool:
    return session.get_bind().dialect.name != "sqlite"


def claim_due(*, engine: Engine, policy: Policy, now: datetime | None = None) -> DispatchResult:
    """Move due posts of approved campaigns from scheduled to queued; return them.

    PostgreSQL locks the rows with ``FOR UPDATE SKIP LOCKED`` so a second dispatcher takes
    other rows; SQLite serialises dispatchers with ``BEGIN IMMEDIATE``.  Posts of an account
    that needs reconnecting are not queued: they move to ``needs_reconnect``.
    """
    now = now or utcnow()
    result = DispatchResult()
    with write_session(engine) as session:
        query = (
            select(Post.id, Post.channel, ChannelAccount.health, ChannelAccount.health_message)
            .join(Campaign, Campaign.id == Post.campaign_id)
            .join(ChannelAccount, ChannelAccount.id == Post.channel_account_id)
            .where(
                Post.state == PostState.SCHEDULED,
                Post.next_try_at <= now,
                Campaign.status == CampaignStatus.APPROVED,
            )
            .order_by(Post.next_try_at, Post.id)
            .limit(policy.dispatch_batch)
        )
        if _locking(session):
            query = query.with_for_update(of=Post, skip_locked=True)
        rows = session.execute(query).all()
        healthy = [(r.id, r.channel) for r in rows if r.health == AccountHealth.OK]
        broken = [r for r in rows if r.health != AccountHealth.OK]
        if healthy:
            session.execute(
                update(Post)
                .where(Post.id.in_([i for i, _ in healthy]), Post.state == PostState.SCHEDULED)
                .values(state=PostState.QUEUED, state_changed_at=now)
            )
        for row in broken:
            _needs_reconnect(session, row.id, row.health_message, now)
        result.queued = healthy
        result.needs_reconnect = [r.id for r in broken]
    return result


def _needs_reconnect(session: Session, post_id: int, message: str | None, now: datetime) -> None:
    session.execute(
        update(Post)
        .where(Post.id == post_id)
        .values(
            state=PostState.NEEDS_RECONNECT,
            state_changed_at=now,
            last_error=message or "the channel account needs to be reconnected",
            last_error_code="account_unhealthy",
            action_hint="Renew the account's token (see `marketing accounts`), then run "
            "`marketing accounts reconnected SLUG`: its waiting posts go out again.",
        )
    )


# The statements of every publication, built once: they run for each post, and building a
# statement costs more Python time than PostgreSQL takes to run it.
# One read for the post, its campaign and its account (only the post row is locked).
_CLAIM = (
    select(
        Post.id,
        Post.state,
        Post.attempt_count,
        Post.channel,
        Post.idempotency_key,
        Post.content,
        Post.community_id,
        Campaign.status.label("campaign_status"),
        ChannelAccount.id.label("account_id"),
        ChannelAccount.external_id.label("account_external_id"),
        ChannelAccount.display_name.label("account_display_name"),
        ChannelAccount.secret_name.label("account_secret_name"),
        ChannelAccount.health.label("account_health"),
        ChannelAccount.health_message.label("account_health_message"),
    )
    .join(Campaign, Campaign.id == Post.campaign_id)
    .join(ChannelAccount, ChannelAccount.id == Post.channel_account_id)
    .where(Post.id.in_(bindparam("claim_posts", expanding=True)))
)
_CLAIM_LOCKING = _CLAIM.with_for_update(of=Post, skip_locked=True)
# The rows are locked by the claiming SELECT, so ``attempt_count + 1`` is the number it read.
_START = (
    update(Post)
    .where(Post.id.in_(bindparam("claim_posts", expanding=True)))
    .values(
        attempt_count=Post.attempt_count + 1,
        state=PostState.PUBLISHING,
        state_changed_at=bindparam("claim_now", type_=UTCDateTime()),
    )
)
_OPEN_ATTEMPTS = insert(Attempt).returning(Attempt.post_id, Attempt.id)
# The receipts: the post rows are locked first (by the SELECT), then the attempts, as
# everywhere.  The updates run as one statement each for all the posts (executemany).
_RECEIPT_ROWS = (
    select(Post.id, Post.state, Post.external_id, Post.highlight_id, Post.scheduled_at)
    .where(Post.id.in_(bindparam("receipt_posts", expanding=True)))
    .order_by(Post.id)
)
_RECEIPT_ROWS_LOCKING = _RECEIPT_ROWS.with_for_update(of=Post)
_MARK_PUBLISHED = (
    update(Post)
    .where(Post.id == bindparam("receipt_post"), Post.state != PostState.PUBLISHED)
    .values(
        external_id=bindparam("receipt_external_id"),
        permalink=bindparam("receipt_permalink"),
        published_at=bindparam("receipt_published_at", type_=UTCDateTime()),
        last_error=None,
        last_error_code=None,
        action_hint=None,
        notice=bindparam("receipt_notice"),
        metrics_due_at=bindparam("receipt_metrics_due_at", type_=UTCDateTime()),
        state=PostState.PUBLISHED,
        state_changed_at=bindparam("receipt_now", type_=UTCDateTime()),
    )
)
_CLOSE_ATTEMPT = (
    update(Attempt)
    .where(Attempt.id == bindparam("receipt_attempt"))
    .values(
        outcome=bindparam("receipt_outcome"),
        finished_at=bindparam("receipt_now", type_=UTCDateTime()),
    )
)
_HIGHLIGHT_POSTED = (
    update(Highlight)
    .where(Highlight.id == bindparam("receipt_highlight"))
    .values(last_posted_at=bindparam("receipt_published_at", type_=UTCDateTime()))
)


def begin_attempt(
    *, engine: Engine, post_id: int, worker: str, now: datetime | None = None
) -> Claim | None:
    """Claim one queued post (see :func:`begin_attempts`); None when there is nothing to do."""
    claims = begin_attempts(engine=engine, post_ids=[post_id], worker=worker, now=now)
    return claims[0] if claims else None


def begin_attempts(
    *, engine: Engine, post_ids: Sequence[int], worker: str, now: datetime | None = None
) -> list[Claim]:
    """Claim queued posts for publishing and open an attempt for each, in one committed
    transaction; return the claims in the order of ``post_ids``.

    A post is left out when there is nothing to do for it: it is not queued (a duplicate
    message or a redelivery after it was handled), or another worker holds it, or its
    campaign was paused or cancelled meanwhile (the post is put back or cancelled
    accordingly), or its account needs reconnecting.
    """
    now = now or utcnow()
    with write_session(engine) as session:
        # Core statements on the session's connection: the ORM's execution path costs more
        # than the statements themselves.
        connection = session.connection()
        query = _CLAIM_LOCKING if _locking(session) else _CLAIM
        rows = connection.execute(query, {"claim_posts": list(post_ids)}).all()
        claimable = []
        for row in rows:
            if row.state != PostState.QUEUED:
                continue
            if row.campaign_status == CampaignStatus.CANCELLED:
                _move(session, row.id, PostState.CANCELLED, now)
            elif row.campaign_status != CampaignStatus.APPROVED:
                _move(session, row.id, PostState.SCHEDULED, now)  # paused: taken on resume
            elif row.account_health != AccountHealth.OK:
                _needs_reconnect(session, row.id, row.account_health_message, now)
            else:
                claimable.append(row)
        if not claimable:
            return []
        ids = [row.id for row in claimable]
        connection.execute(_START, {"claim_posts": ids, "claim_now": now})
        opened = connection.execute(
            _OPEN_ATTEMPTS,
            [
                {
                    "post_id": row.id,
                    "number": row.attempt_count + 1,
                    "started_at": now,
                    "heartbeat_at": now,
                    "outcome": AttemptOutcome.UNKNOWN,
                    "worker": worker,
                }
                for row in claimable
            ],
        ).all()
        attempt_of = {post_id: attempt_id for post_id, attempt_id in opened}
        claims = {
            row.id: Claim(
                post_id=row.id,
                attempt_id=attempt_of[row.id],
                attempt_number=row.attempt_count + 1,
                channel=row.channel,
                marker=row.idempotency_key,
                content=dict(row.content),
                account_id=row.account_id,
                account_external_id=row.account_external_id,
                account_display_name=row.account_display_name,
                account_secret_name=row.account_secret_name,
                community_id=row.community_id,
                started_at=now,
            )
            for row in claimable
        }
        return [claims[i] for i in dict.fromkeys(post_ids) if i in claims]


def _move(session: Session, post_id: int, state: PostState, now: datetime) -> None:
    session.execute(
        update(Post).where(Post.id == post_id).values(state=state, state_changed_at=now)
    )


def _set_state(post: Post, state: PostState, now: datetime) -> None:
    post.state = state
    post.state_changed_at = now


class Lease:
    """Which claimed attempts a worker may still send, as its heartbeat last confirmed them.

    A sweeper takes an attempt for reconciliation only once its heartbeat is
    ``stale_after`` old, and then counts a reconcile try on it.  So while the last confirmed
    renewal is less than half that old and no sweeper has counted a try, a call started now
    cannot race a reconciliation (which could find the post absent and send it again).  A
    worker cut off from the database stops sending its batch: the rest is reconciled.
    """

    def __init__(
        self,
        attempt_ids: Sequence[int],
        *,
        renewed_at: float,
        stale_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._held = set(attempt_ids)
        self._renewed_at = renewed_at
        self._valid_for = stale_after / 2
        self._clock = clock
        self._lock = threading.Lock()

    def renewed(self, held: set[int], at: float) -> None:
        """A beat begun at ``at`` (on :attr:`clock`) confirmed the attempts ``held``."""
        with self._lock:
            self._held, self._renewed_at = held, at

    def holds(self, attempt_id: int) -> bool:
        with self._lock:
            fresh = self._clock() - self._renewed_at < self._valid_for
            return fresh and attempt_id in self._held


def renew_attempts(*, engine: Engine, attempt_ids: Sequence[int], now: datetime) -> set[int]:
    """One heartbeat: bring the heartbeat of the attempts still open and not taken by a
    sweeper up to ``now``, and return their ids (committed)."""
    with session_scope(engine) as session:
        held = session.connection().execute(
            update(Attempt)
            .where(
                Attempt.id.in_(list(attempt_ids)),
                Attempt.outcome == AttemptOutcome.UNKNOWN,
                Attempt.reconcile_tries == 0,  # no sweeper has taken it
            )
            # Never backwards: an attempt whose answer was lost has its heartbeat set ahead
            # (record_error), to be reconciled no sooner than that.
            .values(
                heartbeat_at=case((Attempt.heartbeat_at < now, now), else_=Attempt.heartbeat_at)
            )
            .returning(Attempt.id)
        )
        return set(held.scalars())


@contextlib.contextmanager
def heartbeat(
    *, engine: Engine, attempt_ids: Sequence[int], stale_after: float, claimed_at: float
) -> Iterator[Lease]:
    """Keep the heartbeat of the attempts that are still open fresh while the body runs (a
    slow upload stays "alive"; a killed worker's attempts go quiet and are reconciled),
    beating four times per ``stale_after``; yield their :class:`Lease`, renewed from
    ``claimed_at`` (``time.monotonic()`` taken before the claim) by each beat."""
    stop = threading.Event()
    ids = list(attempt_ids)
    lease = Lease(ids, renewed_at=claimed_at, stale_after=stale_after)

    def beat() -> None:
        while not stop.wait(stale_after / 4):
            try:
                at = time.monotonic()
                lease.renewed(renew_attempts(engine=engine, attempt_ids=ids, now=utcnow()), at)
            except Exception:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat for attempts %s failed", ids, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{ids[0]}", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join(5)


def _locked_attempt(session: Session, claim_post_id: int, attempt_id: int) -> tuple[Post, Attempt]:
    query = select(Post).where(Post.id == claim_post_id)
    if _locking(session):
        query = query.with_for_update()
    post = session.scalars(query).one()
    attempt = session.get(Attempt, attempt_id)
    assert attempt is not None
    return post, attempt


def record_receipt(
    *,
    engine: Engine,
    claim: Claim,
    receipt: Receipt,
    outcome: AttemptOutcome = AttemptOutcome.PUBLISHED,
    now: datetime | None = None,
) -> None:
    """The channel has the post: mark it published and close the attempt."""
    record_receipts(engine=engine, published=[(claim, receipt)], outcome=outcome, now=now)


def record_receipts(
    *,
    engine: Engine,
    published: Sequence[tuple[Claim, Receipt]],
    outcome: AttemptOutcome = AttemptOutcome.PUBLISHED,
    now: datetime | None = None,
) -> None:
    """The channel has these posts: mark them published and close their attempts, in one
    transaction."""
    now = now or utcnow()
    with write_session(engine) as session:
        scheduled = _publish(session, published, outcome, now)
    for (claim, receipt), scheduled_at in zip(published, scheduled, strict=True):
        _count_published(claim, receipt, outcome, scheduled_at)


def _count_published(
    claim: Claim, receipt: Receipt, outcome: AttemptOutcome, scheduled_at: datetime | None
) -> None:
    """Metrics of a committed publication (``scheduled_at`` None: it had been marked
    published before, and counted then)."""
    if scheduled_at is None:
        return
    channel = ChannelKind(claim.channel).value
    observability.count_publication(channel=channel, outcome=AttemptOutcome(outcome).value)
    lateness = (receipt.published_at - scheduled_at).total_seconds()
    observability.observe_lateness(channel=channel, seconds=lateness)


def _publish(
    session: Session,
    published: Sequence[tuple[Claim, Receipt]],
    outcome: AttemptOutcome,
    now: datetime,
) -> list[datetime | None]:
    """Mark the claimed posts published and close their attempts with ``outcome``, in the
    caller's write transaction (the one place a post becomes published by a channel);
    return each one's scheduled time, or None for one marked published before."""
    connection = session.connection()  # Core statements: see begin_attempts
    query = _RECEIPT_ROWS_LOCKING if _locking(session) else _RECEIPT_ROWS
    ids = [claim.post_id for claim, _ in published]
    rows = {row.id: row for row in connection.execute(query, {"receipt_posts": ids})}
    fresh: list[dict[str, Any]] = []
    scheduled: list[datetime | None] = []
    for claim, receipt in published:
        row = rows[claim.post_id]
        if row.state == PostState.PUBLISHED:
            # Already settled (e.g. reconciled while our answer was slow): same publication.
            if row.external_id != receipt.external_id:
                log.error(
                    "post %s published twice? %s and %s",
                    claim.post_id,
                    row.external_id,
                    receipt.external_id,
                )
            scheduled.append(None)
            continue
        fresh.append(
            {
                "receipt_post": claim.post_id,
                "receipt_external_id": receipt.external_id,
                "receipt_permalink": receipt.permalink,
                "receipt_published_at": receipt.published_at,
                "receipt_metrics_due_at": next_metrics_due(receipt.published_at, now),
                "receipt_notice": receipt.notice,
                "receipt_now": now,
                "receipt_highlight": row.highlight_id,
            }
        )
        scheduled.append(row.scheduled_at)
    if fresh:
        connection.execute(_MARK_PUBLISHED, fresh)
    connection.execute(
        _CLOSE_ATTEMPT,
        [
            {"receipt_attempt": claim.attempt_id, "receipt_outcome": outcome, "receipt_now": now}
            for claim, _ in published
        ],
    )
    highlighted = [values for values in fresh if values["receipt_highlight"] is not None]
    if highlighted:
        connection.execute(_HIGHLIGHT_POSTED, highlighted)
    return scheduled


def record_error(
    *,
    engine: Engine,
    claim: Claim,
    error: ChannelError,
    policy: Policy,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> PostState:
    """Classify a failed attempt and move the post on; return its new state (see
    :func:`_record_error`)."""
    state = _record_error(engine=engine, claim=claim, error=error, policy=policy, now=now, rng=rng)
    observability.count_publication(
        channel=ChannelKind(claim.channel).value, outcome=_error_outcome(error, state)
    )
    return state


def _error_outcome(error: ChannelError, state: PostState) -> str:
    """The ``outcome`` label of a failed attempt (see :data:`observability.OUTCOMES`)."""
    if isinstance(error, OutcomeUnknown):
        return "outcome_unknown"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, AuthExpired):
        return "needs_reconnect"
    if isinstance(error, TransientError) and state != PostState.FAILED:
        return "transient"
    return "failed"


def _record_error(
    *,
    engine: Engine,
    claim: Claim,
    error: ChannelError,
    policy: Policy,
    now: datetime | None,
    rng: random.Random | None,
) -> PostState:
    """Classify a failed attempt and move the post on; return its new state.

    rate limited -> scheduled no sooner than the channel asked; transient -> scheduled after
    a jittered backoff, or failed after too many; auth expired -> needs_reconnect and the
    account marked unhealthy; permanent -> failed with the channel's message and a hint;
    outcome unknown -> left publishing, for reconciliation (never retried blindly).
    """
    now = now or utcnow()
    with write_session(engine) as session:
        post, attempt = _locked_attempt(session, claim.post_id, claim.attempt_id)
        attempt.error_code = error.code
        attempt.error_message = str(error)[:2000]
        post.last_error = str(error)[:2000]
        post.last_error_code = error.code
        if isinstance(error, OutcomeUnknown):
            # Leave the attempt unknown: the sweeper reconciles it once reconcile_delay has
            # passed (a listing may lag behind a publication that did go through).
            attempt.heartbeat_at = now + timedelta(
                seconds=policy.reconcile_delay - policy.attempt_stale_after
            )
            post.action_hint = "The channel may have the post; it is being checked."
            return post.state
        attempt.finished_at = now
        if isinstance(error, RateLimited):
            attempt.outcome = AttemptOutcome.RATE_LIMITED
            wait = error.retry_after if error.retry_after is not None else policy.rate_limit_default
            _reschedule(post, now + timedelta(seconds=wait), now)
            post.action_hint = f"Rate limited by the channel; retrying after {wait:.0f} s."
        elif isinstance(error, TransientError):
            attempt.outcome = AttemptOutcome.TRANSIENT
            post.transient_failures += 1
            failures = post.transient_failures
            if failures >= policy.max_transient_failures:
                _set_state(post, PostState.FAILED, now)
                post.action_hint = (
                    f"The channel failed {failures} times in a row. Check its status, then "
                    f"`marketing posts retry {post.id}`."
                )
            else:
                wait = policy.backoff(failures, rng)
                _reschedule(post, now + timedelta(seconds=wait), now)
                post.action_hint = f"Temporary failure; retrying after {wait:.0f} s."
        elif isinstance(error, AuthExpired):
            attempt.outcome = AttemptOutcome.AUTH_EXPIRED
            account = session.get(ChannelAccount, post.channel_account_id)
            assert account is not None
            account.health = AccountHealth.NEEDS_RECONNECT
            account.health_message = str(error)
            account.health_checked_at = now
            _set_state(post, PostState.NEEDS_RECONNECT, now)
            post.action_hint = error.hint or (
                f"Reconnect account {account.slug} (renew its token), then "
                f"`marketing accounts reconnected {account.slug}`."
            )
        else:
            attempt.outcome = AttemptOutcome.PERMANENT
            _set_state(post, PostState.FAILED, now)
            post.action_hint = error.hint or (
                "The channel refused this post. Fix the campaign (content or media), apply it "
                f"again, then `marketing posts retry {post.id}`."
            )
        return post.state


def _reschedule(post: Post, when: datetime, now: datetime) -> None:
    post.next_try_at = when
    _set_state(post, PostState.SCHEDULED, now)


def next_metrics_due(published_at: datetime, now: datetime) -> datetime | None:
    """When to collect a post's metrics next: the first collection age still ahead."""
    for age in METRICS_AGES:
        if published_at + age > now:
            return published_at + age
    return None


# --- recovery ------------------------------------------------------------------------------


def requeue_stale(
    *, engine: Engine, policy: Policy, now: datetime | None = None
) -> list[tuple[int, ChannelKind]]:
    """Queued posts whose message may be lost (older than the queue lease): ring again.

    A duplicate message is harmless (the claim in :func:`begin_attempt` decides).
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=policy.queue_lease)
    with write_session(engine) as session:
        query = select(Post.id, Post.channel).where(
            Post.state == PostState.QUEUED, Post.state_changed_at < cutoff
        )
        if _locking(session):
            query = query.with_for_update(skip_locked=True)
        rows = [(r.id, r.channel) for r in session.execute(query).all()]
        if rows:
            session.execute(
                update(Post).where(Post.id.in_([i for i, _ in rows])).values(state_changed_at=now)
            )
    return rows


def abandoned_attempts(
    *, engine: Engine, policy: Policy, now: datetime | None = None
) -> list[Claim]:
    """Take the unknown attempts whose worker went quiet, for reconciliation.

    Each returned attempt's heartbeat is bumped in the same transaction, so a second sweeper
    running at the same time does not take it too.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=policy.attempt_stale_after)
    claims = []
    with write_session(engine) as session:
        query = (
            select(Post, Attempt, ChannelAccount)
            .join(Attempt, and_(Attempt.post_id == Post.id, Attempt.number == Post.attempt_count))
            .join(ChannelAccount, ChannelAccount.id == Post.channel_account_id)
            .where(
                Post.state == PostState.PUBLISHING,
                Attempt.outcome == AttemptOutcome.UNKNOWN,
                Attempt.heartbeat_at < cutoff,
            )
            .limit(policy.dispatch_batch)
        )
        if _locking(session):
            query = query.with_for_update(of=Attempt, skip_locked=True)
        for post, attempt, account in session.execute(query).all():
            attempt.heartbeat_at = now
            attempt.reconcile_tries += 1
            claims.append(Claim.of(post, attempt, account))
    return claims


def record_reconciliation(
    *,
    engine: Engine,
    claim: Claim,
    found: Receipt | None,
    error: Exception | None,
    policy: Policy,
    now: datetime | None = None,
) -> PostState:
    """Settle an abandoned attempt from what the channel said; return the post's new state.

    found -> published; certainly absent (``found`` and ``error`` both None) -> scheduled
    for a new attempt; could not tell -> left for another try, and after
    ``policy.reconcile_max_tries`` -> unconfirmed, for a person.
    """
    now = now or utcnow()
    with write_session(engine) as session:
        state, outcome, scheduled_at = _settle_abandoned(session, claim, found, error, policy, now)
    if outcome == AttemptOutcome.RECONCILED_FOUND and found is not None:
        _count_published(claim, found, outcome, scheduled_at)
    elif outcome is not None:
        observability.count_publication(
            channel=ChannelKind(claim.channel).value, outcome=outcome.value
        )
    return state


def _settle_abandoned(
    session: Session,
    claim: Claim,
    found: Receipt | None,
    error: Exception | None,
    policy: Policy,
    now: datetime,
) -> tuple[PostState, AttemptOutcome | None, datetime | None]:
    """:func:`record_reconciliation`'s transaction: the post's state, the attempt's outcome
    if this settled it, and the post's scheduled time if this published it."""
    post, attempt = _locked_attempt(session, claim.post_id, claim.attempt_id)
    if post.state != PostState.PUBLISHING or attempt.outcome != AttemptOutcome.UNKNOWN:
        return post.state, None, None  # settled meanwhile by the original worker
    if found is not None:
        (scheduled_at,) = _publish(session, [(claim, found)], AttemptOutcome.RECONCILED_FOUND, now)
        return PostState.PUBLISHED, AttemptOutcome.RECONCILED_FOUND, scheduled_at
    if error is None:
        attempt.outcome = AttemptOutcome.RECONCILED_ABSENT
        attempt.finished_at = now
        _reschedule(post, now, now)
        post.action_hint = "An interrupted attempt was checked: not published; retrying."
        return post.state, attempt.outcome, None
    if attempt.reconcile_tries >= policy.reconcile_max_tries:
        attempt.outcome = AttemptOutcome.UNCONFIRMED
        attempt.finished_at = now
        attempt.error_message = f"could not confirm: {error}"[:2000]
        _set_state(post, PostState.UNCONFIRMED, now)
        post.last_error = f"Could not confirm whether it was published: {error}"[:2000]
        post.action_hint = (
            "Look for this post on the channel. If it is there: "
            f"`marketing posts resolve {post.id} --published URL`; if not: "
            f"`marketing posts retry {post.id}`."
        )
        return post.state, attempt.outcome, None
    return post.state, None, None


# --- people's commands ----------------------------------------------------------------------


class PostActionRefused(ValueError):
    """A person asked for something a post's state does not allow.  ``code`` (``no_post``,
    ``not_retryable``, ``account_unhealthy``, ``not_cancellable``, ``not_unconfirmed``,
    ``no_account``) and ``values`` let a page say it in the reader's language."""

    def __init__(self, message: str, *, code: str = "", **values: str | int) -> None:
        super().__init__(message)
        self.code = code
        self.values = values


def retry_post(*, session: Session, post_id: int, now: datetime | None = None) -> Post:
    """Send a failed, unconfirmed or waiting post out again (a person decided it is safe)."""
    now = now or utcnow()
    post = session.get(Post, post_id)
    if post is None:
        raise PostActionRefused(f"there is no post {post_id}", code="no_post", id=post_id)
    if post.state not in PROBLEM_STATES:
        raise PostActionRefused(
            f"post {post_id} is {post.state.value}; only failed, unconfirmed or "
            "needs_reconnect posts can be retried",
            code="not_retryable",
            id=post_id,
            state=post.state.value,
        )
    if post.state == PostState.NEEDS_RECONNECT:
        account = session.get(ChannelAccount, post.channel_account_id)
        if account is not None and account.health != AccountHealth.OK:
            raise PostActionRefused(
                f"account {account.slug} still needs reconnecting; run "
                f"`marketing accounts reconnected {account.slug}` once its token is renewed",
                code="account_unhealthy",
                account=account.slug,
            )
    post.transient_failures = 0  # a person chose to try again: start counting afresh
    post.next_try_at = now
    _set_state(post, PostState.SCHEDULED, now)
    post.action_hint = None
    return post


def cancel_post(*, session: Session, post_id: int, now: datetime | None = None) -> Post:
    """Cancel a post that has not gone out (scheduled, queued or needing a person)."""
    now = now or utcnow()
    post = session.get(Post, post_id)
    if post is None:
        raise PostActionRefused(f"there is no post {post_id}", code="no_post", id=post_id)
    if post.state in (PostState.PUBLISHING, PostState.PUBLISHED, PostState.CANCELLED):
        raise PostActionRefused(
            f"post {post_id} is {post.state.value} and cannot be cancelled",
            code="not_cancellable",
            id=post_id,
            state=post.state.value,
        )
    _set_state(post, PostState.CANCELLED, now)
    return post


def resolve_published(
    *, session: Session, post_id: int, permalink: str, now: datetime | None = None
) -> Post:
    """A person found an unconfirmed post on the channel: record it as published."""
    now = now or utcnow()
    post = session.get(Post, post_id)
    if post is None:
        raise PostActionRefused(f"there is no post {post_id}", code="no_post", id=post_id)
    if post.state != PostState.UNCONFIRMED:
        raise PostActionRefused(
            f"post {post_id} is {post.state.value}, not unconfirmed",
            code="not_unconfirmed",
            id=post_id,
            state=post.state.value,
        )
    post.permalink = permalink
    post.published_at = post.published_at or now
    post.last_error = post.action_hint = None
    post.metrics_due_at = None  # no external id to ask the channel about
    _set_state(post, PostState.PUBLISHED, now)
    return post


def account_reconnected(*, session: Session, slug: str, now: datetime | None = None) -> int:
    """Mark an account healthy again and reschedule its waiting posts; return how many."""
    now = now or utcnow()
    account = session.scalars(select(ChannelAccount).where(ChannelAccount.slug == slug)).first()
    if account is None:
        raise PostActionRefused(
            f"there is no channel account {slug!r}", code="no_account", account=slug
        )
    account.health = AccountHealth.OK
    account.health_message = None
    account.health_checked_at = now
    result = session.execute(
        update(Post)
        .where(Post.channel_account_id == account.id, Post.state == PostState.NEEDS_RECONNECT)
        .values(state=PostState.SCHEDULED, state_changed_at=now, next_try_at=now, action_hint=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- account health -------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountToCheck:
    """A healthy account with posts coming up, and what its check needs."""

    account_id: int
    slug: str
    kind: ChannelKind
    external_id: str
    display_name: str
    secret_name: str | None


def accounts_to_check(
    *,
    engine: Engine,
    within: timedelta = timedelta(hours=24),
    every: timedelta = timedelta(minutes=30),
    now: datetime | None = None,
) -> list[AccountToCheck]:
    """Healthy Facebook and YouTube accounts with a post of an approved campaign due within
    ``within``, not checked in the last ``every``: so an expired token shows before a post
    for it is due."""
    now = now or utcnow()
    with session_scope(engine) as session:
        upcoming = (
            select(Post.channel_account_id)
            .join(Campaign, Campaign.id == Post.campaign_id)
            .where(
                Post.state.in_([PostState.SCHEDULED, PostState.QUEUED]),
                Post.next_try_at <= now + within,
                Campaign.status == CampaignStatus.APPROVED,
            )
            .distinct()
        )
        rows = session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.id.in_(upcoming),
                ChannelAccount.health == AccountHealth.OK,
                ChannelAccount.kind.in_(channels_that(Capability.ACCOUNT_CHECK)),
                (ChannelAccount.health_checked_at.is_(None))
                | (ChannelAccount.health_checked_at < now - every),
            )
        ).all()
        return [
            AccountToCheck(a.id, a.slug, a.kind, a.external_id, a.display_name, a.secret_name)
            for a in rows
        ]


def record_account_check(
    *, engine: Engine, account_id: int, error: ChannelError | None, now: datetime | None = None
) -> AccountHealth:
    """Record the outcome of a token check; return the account's health.  Only a refusal
    that needs a person (auth expired or permission lost) makes an account unhealthy."""
    now = now or utcnow()
    with session_scope(engine) as session:
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        account.health_checked_at = now
        if isinstance(error, AuthExpired):
            account.health = AccountHealth.NEEDS_RECONNECT
            account.health_message = f"{error}" + (f" -- {error.hint}" if error.hint else "")
        elif error is None:
            account.health_message = None
        return account.health
