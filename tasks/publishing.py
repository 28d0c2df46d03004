"""Publishing tasks: thin wrappers around :mod:`marketing.publishing`.

``dispatch_due`` (beat) rings the doorbell for due posts, ``publish_post`` publishes one,
``recover`` (beat) re-rings lost doorbells and reconciles attempts whose worker died.  Tasks
carry post ids, never objects; every decision is made against the database.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta

from celery import Task

from channels import registry
from channels.base import Capability, OutgoingPost
from channels.errors import ChannelError, RateLimited
from marketing.bulk import reconcile_bulk_post, send_bulk_post
from marketing.db import get_engine, utcnow
from marketing.models import ChannelKind
from marketing.observability import add_log_context, log_context
from marketing.post_variants import is_rest as is_rest_of_post_test
from marketing.post_variants import prepare as prepare_rest_post
from marketing.publishing import (
    Claim,
    Policy,
    abandoned_attempts,
    begin_attempt,
    claim_due,
    heartbeat,
    record_error,
    record_receipt,
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


def publish_queue(channel: ChannelKind | str) -> str:
    """The queue publish tasks of ``channel`` go to (one per channel, so a slow channel does
    not hold up the others)."""
    return registry.queue_for(channel)


def ring(post_id: int, channel: ChannelKind) -> None:
    """Send the doorbell message for a queued post.  After a broker restart a pooled
    producer can be left on a dead channel (see tasks/beat.py): renew the pools and try once
    more.  If that fails too, the post stays queued and recover() rings again later."""
    try:
        publish_post.apply_async((post_id,), queue=publish_queue(channel))
    except Exception:
        log.warning(
            "could not ring for post %s; renewing broker connections", post_id, exc_info=True
        )
        app.producer_pool.force_close_all()
        app.pool.force_close_all()
        publish_post.apply_async((post_id,), queue=publish_queue(channel))


@app.task(name="marketing.dispatch_due", time_limit=120, soft_time_limit=100)
def dispatch_due() -> int:
    """Queue every due post of approved campaigns; return how many were queued."""
    engine, policy = get_engine(), Policy.from_settings()
    queued, deadline = 0, time.monotonic() + 60
    while True:
        result = claim_due(engine=engine, policy=policy)
        for post_id, channel in result.queued:
            ring(post_id, channel)
        queued += len(result.queued)
        claimed = len(result.queued) + len(result.needs_reconnect)
        if claimed < policy.dispatch_batch or time.monotonic() > deadline:
            break
    record_heartbeat("dispatcher", queued=queued)
    return queued


@app.task(
    name="marketing.publish_post",
    bind=True,
    time_limit=900,
    soft_time_limit=840,
    acks_late=True,
)
def publish_post(self: Task, post_id: int) -> str:
    """Publish one post if it is still queued; return the state it ended in."""
    with log_context(post_id=post_id):
        return _publish_post(self, post_id)


def _publish_post(self: Task, post_id: int) -> str:
    engine, policy = get_engine(), Policy.from_settings()
    worker = f"{socket.gethostname()}:{self.request.hostname or ''}"
    claim = begin_attempt(engine=engine, post_id=post_id, worker=worker)
    if claim is None:
        return "skipped"
    add_log_context(attempt_id=claim.attempt_id)
    try:
        wait = wiring.publish_bucket().acquire(f"account:{claim.account_id}")
        if wait > 0:
            # Nothing was sent: a certain refusal, retried when the bucket refills.
            raise RateLimited("publishing rate for this account reached", retry_after=wait)
        account = wiring.account_for(claim)
        with heartbeat(
            engine=engine, attempt_id=claim.attempt_id, every=policy.attempt_stale_after / 4
        ):
            if registry.spec_for(claim.channel).can(Capability.SEND_TO_MANY):
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
            receipt = wiring.publisher(claim.channel).publish(
                OutgoingPost(marker=claim.marker, account=account, content=claim.content)
            )
    except ChannelError as error:
        state = record_error(engine=engine, claim=claim, error=error, policy=policy)
        log.info("post %s: %s -> %s", post_id, type(error).__name__, state.value)
        return state.value
    # Any other exception propagates and leaves the attempt "unknown": the sweeper
    # reconciles it with the channel, never retrying blindly.
    record_receipt(engine=engine, claim=claim, receipt=receipt)
    log.info("post %s: published as %s", post_id, receipt.external_id)
    return "published"


@app.task(name="marketing.recover", time_limit=300, soft_time_limit=280)
def recover() -> dict[str, int]:
    """Re-ring lost doorbells and settle attempts whose worker went quiet."""
    engine, policy = get_engine(), Policy.from_settings()
    rerung = requeue_stale(engine=engine, policy=policy)
    for post_id, channel in rerung:
        ring(post_id, channel)
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
