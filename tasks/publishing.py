"""Publishing tasks: thin wrappers around :mod:`marketing.publishing`.

``dispatch_due`` (beat) rings the doorbell for due posts, ``publish_posts`` publishes a few
of them (claimed together, published one after another), ``recover`` (beat) re-rings lost
doorbells and reconciles attempts whose worker died.  Tasks carry post ids, never objects;
every decision is made against the database.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from datetime import timedelta

from celery import Task
from sqlalchemy import Engine

from channels import registry
from channels.base import Account, Capability, OutgoingPost, Receipt
from channels.errors import AuthExpired, ChannelError, RateLimited
from marketing.bulk import reconcile_bulk_post, send_bulk_post
from marketing.db import get_engine, retry_on_disconnect, utcnow
from marketing.models import ChannelKind
from marketing.observability import log_context
from marketing.post_variants import is_rest as is_rest_of_post_test
from marketing.post_variants import prepare as prepare_rest_post
from marketing.publishing import (
    Claim,
    Lease,
    Policy,
    abandoned_attempts,
    begin_attempts,
    claim_due,
    heartbeat,
    record_error,
    record_receipts,
    record_reconciliation,
    requeue_stale,
)
from marketing.settings import get_settings
from tasks import wiring
from tasks.app import app
from tasks.housekeeping import record_heartbeat

log = logging.getLogger(__name__)

# How far before an attempt started a publication may be dated and still be "ours".
RECONCILE_SLACK = timedelta(minutes=5)
# Seconds an answered publication may wait for the rest of its batch before its receipt is
# recorded anyway.
RECEIPT_DELAY = 1.0


def publish_queue(channel: ChannelKind | str) -> str:
    """The queue publish tasks of ``channel`` go to (one per channel, so a slow channel does
    not hold up the others)."""
    return registry.queue_for(channel)


def ring(post_ids: Sequence[int], channel: ChannelKind) -> None:
    """Send the doorbell message for queued posts of ``channel``.  After a broker restart a
    pooled producer can be left on a dead channel (see tasks/beat.py): renew the pools and
    try once more.  If that fails too, the posts stay queued and recover() rings again
    later."""
    ids = list(post_ids)
    try:
        publish_posts.apply_async((ids,), queue=publish_queue(channel))
    except Exception:
        log.warning("could not ring for posts %s; renewing broker connections", ids, exc_info=True)
        app.producer_pool.force_close_all()
        app.pool.force_close_all()
        publish_posts.apply_async((ids,), queue=publish_queue(channel))


def ring_all(queued: Sequence[tuple[int, ChannelKind]], batch: int) -> None:
    """Ring for queued posts, up to ``batch`` of one channel to a message (in due order);
    one to a message for a channel that sends to many, since each of those is long, and no
    more than a channel's ``posts_per_message``."""
    by_channel: dict[ChannelKind, list[int]] = {}
    for post_id, channel in queued:
        by_channel.setdefault(channel, []).append(post_id)
    for channel, ids in by_channel.items():
        spec = registry.spec_for(channel)
        size = 1 if spec.can(Capability.SEND_TO_MANY) else batch
        size = min(size, spec.posts_per_message or size)
        for start in range(0, len(ids), size):
            ring(ids[start : start + size], channel)


@app.task(name="marketing.dispatch_due", time_limit=120, soft_time_limit=100)
def dispatch_due() -> int:
    """Queue every due post of approved campaigns; return how many were queued."""
    engine, policy = get_engine(), Policy.from_settings()
    queued, deadline = 0, time.monotonic() + 60
    while True:
        result = claim_due(engine=engine, policy=policy)
        ring_all(result.queued, policy.publish_batch)
        queued += len(result.queued)
        claimed = len(result.queued) + len(result.needs_reconnect)
        if claimed < policy.dispatch_batch or time.monotonic() > deadline:
            break
    record_heartbeat("dispatcher", queued=queued)
    return queued


@app.task(
    name="marketing.publish_posts",
    bind=True,
    time_limit=900,
    soft_time_limit=840,
    acks_late=True,
)
def publish_posts(self: Task, post_ids: list[int]) -> list[str]:
    """Publish the posts that are still queued, one after another; return the state each
    ended in."""
    return _publish_batch(_worker_name(self), post_ids)


@app.task(
    name="marketing.publish_post",
    bind=True,
    time_limit=900,
    soft_time_limit=840,
    acks_late=True,
)
def publish_post(self: Task, post_id: int) -> str:
    """Publish one post if it is still queued; return the state it ended in.  (The
    dispatcher rings :func:`publish_posts`; this one is kept for messages already queued.)"""
    return _publish_batch(_worker_name(self), [post_id])[0]


def _worker_name(task: Task) -> str:
    return f"{socket.gethostname()}:{task.request.hostname or ''}"


def _publish_batch(worker: str, post_ids: Sequence[int]) -> list[str]:
    """Claim ``post_ids`` in one committed transaction, then publish the claimed posts one
    after another, and record their receipts together once the last has been answered (or
    :data:`RECEIPT_DELAY` after the first answer still unrecorded, so a slow channel's
    receipts do not wait for the whole batch).

    Until a receipt is recorded its post is "publishing" with an open attempt, as during
    its call: if the worker dies meanwhile, the sweeper finds the publication by its marker
    (``reconciled_found``); the claimed posts not yet sent are found absent and go out
    again.  The database connections of this path are not pinged at checkout (one round
    trip less each time): the claim and the receipts are retried once on a new connection
    if the server had dropped the old one, which is safe for both (a claim whose COMMIT did
    reach the server finds its posts no longer queued, and they are reconciled like a
    killed worker's; a receipt only marks a post published once).
    """
    engine, policy = get_engine(pre_ping=False), Policy.from_settings()
    outcomes = dict.fromkeys(post_ids, "skipped")
    claimed_at = time.monotonic()
    claims = retry_on_disconnect(
        lambda: begin_attempts(engine=engine, post_ids=post_ids, worker=worker)
    )
    if not claims:
        return [outcomes[post_id] for post_id in post_ids]
    accounts = wiring.accounts_for(claims, engine=engine)
    unrecorded: list[tuple[Claim, Receipt]] = []
    first_answer = 0.0

    def record() -> None:
        retry_on_disconnect(lambda: record_receipts(engine=engine, published=unrecorded))
        unrecorded.clear()

    with heartbeat(
        engine=engine,
        attempt_ids=[claim.attempt_id for claim in claims],
        stale_after=policy.attempt_stale_after,
        claimed_at=claimed_at,
    ) as lease:
        try:
            for claim in claims:
                with log_context(post_id=claim.post_id, attempt_id=claim.attempt_id):
                    result = _publish_claimed(
                        engine, policy, claim, accounts[claim.account_id], lease
                    )
                if isinstance(result, Receipt):
                    if not unrecorded:
                        first_answer = time.monotonic()
                    unrecorded.append((claim, result))
                    outcomes[claim.post_id] = "published"
                    if time.monotonic() - first_answer >= RECEIPT_DELAY:
                        record()
                else:
                    outcomes[claim.post_id] = result
        finally:
            # Also when a publication raised: the answers already in are recorded first.
            if unrecorded:
                record()
    return [outcomes[post_id] for post_id in post_ids]


def _publish_claimed(
    engine: Engine, policy: Policy, claim: Claim, account: Account | AuthExpired, lease: Lease
) -> Receipt | str:
    """Publish one claimed post: its receipt, or the state it ended in when it was not
    published (its outcome recorded, or its claim left to the sweeper) or was sent to
    many."""
    post_id = claim.post_id
    try:
        if isinstance(account, AuthExpired):
            raise account
        wait = wiring.publish_bucket().acquire(f"account:{claim.account_id}")
        if wait > 0:
            # Nothing was sent: a certain refusal, retried when the bucket refills.
            raise RateLimited("publishing rate for this account reached", retry_after=wait)
        if registry.spec_for(claim.channel).can(Capability.SEND_TO_MANY):
            if not _still_held(lease, claim):
                return "publishing"
            sent = send_bulk_post(
                engine=engine,
                claim=claim,
                account=account,
                sender=wiring.bulk_sender(claim.channel),
                batch_size=get_settings().email_batch_size,
            )
            log.info("post %s: sent to many -> %s", post_id, sent)
            return sent
        if is_rest_of_post_test(claim.content):
            # A later post of a test over the campaign's posts: the decided variant,
            # stored before it goes out; until the decision, nothing is sent.
            prepared = prepare_rest_post(engine=engine, claim=claim, now=utcnow())
            if isinstance(prepared, timedelta):
                raise RateLimited(
                    "waiting for the variant test to end before posting the winner",
                    code=f"{claim.channel.value}:variant-waiting",
                    retry_after=max(1.0, prepared.total_seconds()),
                )
            claim = prepared
        if not _still_held(lease, claim):
            return "publishing"
        receipt = wiring.publisher(claim.channel).publish(
            OutgoingPost(marker=claim.marker, account=account, content=claim.content)
        )
    except ChannelError as error:
        state = record_error(engine=engine, claim=claim, error=error, policy=policy)
        log.info("post %s: %s -> %s", post_id, type(error).__name__, state.value)
        return state.value
    # Any other exception propagates and leaves the attempt "unknown" (and those of the
    # batch's posts not yet sent): the sweeper reconciles them with the channel, never
    # retrying blindly.
    log.info("post %s: published as %s", post_id, receipt.external_id)
    return receipt


def _still_held(lease: Lease, claim: Claim) -> bool:
    """Whether the claim may still be sent (see :class:`Lease`); checked just before the
    call.  If not, the heartbeat could not confirm it lately (the database out of reach, or
    a sweeper took it): a call now could race its reconciliation, which settles it."""
    if lease.holds(claim.attempt_id):
        return True
    log.warning("post %s: claim not confirmed lately; left to reconciliation", claim.post_id)
    return False


@app.task(name="marketing.recover", time_limit=300, soft_time_limit=280)
def recover() -> dict[str, int]:
    """Re-ring lost doorbells and settle attempts whose worker went quiet."""
    engine, policy = get_engine(), Policy.from_settings()
    rerung = requeue_stale(engine=engine, policy=policy)
    for post_id, channel in rerung:
        ring([post_id], channel)
    settled = 0
    for claim in abandoned_attempts(engine=engine, policy=policy):
        reconcile(claim, policy)
        settled += 1
    record_heartbeat("recovery", rerung=len(rerung), reconciled=settled)
    return {"rerung": len(rerung), "reconciled": settled}


def reconcile(claim: Claim, policy: Policy) -> None:
    """Ask the channel whether an abandoned attempt published, and record the answer."""
    with log_context(post_id=claim.post_id, attempt_id=claim.attempt_id):
        _reconcile(claim, policy)


def _reconcile(claim: Claim, policy: Policy) -> None:
    engine = get_engine()
    if registry.spec_for(claim.channel).can(Capability.SEND_TO_MANY):
        reconcile_bulk_post(engine=engine, claim=claim, policy=policy)
        return
    found, error = None, None
    try:
        account = wiring.account_for(claim)
        found = wiring.publisher(claim.channel).find_published(
            OutgoingPost(marker=claim.marker, account=account, content=claim.content),
            since=claim.started_at - RECONCILE_SLACK,
        )
    except Exception as exc:  # any doubt means "cannot tell", never "absent"
        log.warning("post %s: reconciliation could not tell: %s", claim.post_id, exc)
        error = exc
    state = record_reconciliation(
        engine=engine, claim=claim, found=found, error=error, policy=policy, now=utcnow()
    )
    log.info("post %s reconciled -> %s", claim.post_id, state.value)
