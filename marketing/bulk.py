"""Sending a post to many: its deliveries in batches over one session of a
:class:`channels.base.BulkSender` (e-mail today).

The deliveries (one per consenting subscriber, each sent at most once) are kept by
:mod:`marketing.email_delivery`; this module is the loop that sends them, called by the
publish task for every channel that can ``SEND_TO_MANY``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from channels.base import Account, BulkSender, Receipt
from channels.errors import ChannelError, OutcomeUnknown, PermanentError, RateLimited
from marketing.db import utcnow
from marketing.email_delivery import (
    BatchResult,
    Outgoing,
    abandon_sending,
    delivery_counts,
    finish_batch,
    is_finished,
    prepare_deliveries,
    take_batch,
)
from marketing.publishing import Claim, Policy, record_receipt, record_reconciliation
from marketing.variant_tests import chosen_content, decide_rest, is_rest, variant_of

log = logging.getLogger(__name__)

# When this many refusals come in a row before anything was sent, the problem is the post
# (sender, content, relay policy), not its recipients: stop and fail the post.
REFUSALS_BEFORE_STOPPING = 10


def send_bulk_post(
    *, engine: Engine, claim: Claim, account: Account, sender: BulkSender, batch_size: int
) -> str:
    """Send every pending delivery of a post to many; mark the post published when all have
    ended.  Channel errors that concern the whole post propagate to the caller."""
    kind = claim.channel.value
    content = claim.content
    if is_rest(content):
        decided = decide_rest(engine=engine, post_id=claim.post_id, now=utcnow())
        if isinstance(decided, timedelta):  # the variants are still out: wait, send nothing
            raise RateLimited(
                "waiting for the variant test to end before sending to the rest",
                code=f"{kind}:variant-waiting",
                retry_after=max(1.0, decided.total_seconds()),
            )
        content = chosen_content(content, decided)
    problems = sender.content_problems(content)
    if problems:
        listed = "; ".join(f"{p.field} {p.message}" for p in problems)
        raise PermanentError(f"the {kind} cannot be sent: {listed}", code=f"{kind}:invalid-content")
    prepare_deliveries(
        engine=engine,
        post_id=claim.post_id,
        community_id=claim.community_id,
        content=content,
    )

    def build(outgoing: Outgoing) -> Any:
        return sender.render(
            content,
            outgoing.recipient,
            post_id=claim.post_id,
            marker=claim.marker,
            sender_address=account.external_id,
        )

    sent_any, refusals = False, 0
    # Messages are built (pure, no I/O) on a second thread while this one waits for the
    # channel's answers: building and the round trips overlap instead of adding up.  A
    # short GIL switch interval lets this thread take each answer at once rather than up to
    # 5 ms later (the default), when the builder holds the interpreter.
    with (
        _switch_interval(0.0002),
        sender.connect() as session,
        ThreadPoolExecutor(1, f"{kind}-build") as builder,
    ):
        while batch := take_batch(engine=engine, post_id=claim.post_id, size=batch_size):
            built = [builder.submit(build, outgoing) for outgoing in batch]
            result = BatchResult(sent=[], failed=[], unconfirmed=[], returned=[])
            stop: ChannelError | None = None
            for index, (outgoing, future) in enumerate(zip(batch, built, strict=True)):
                try:
                    message = future.result()
                    session.send(message)
                except PermanentError as error:  # this recipient (or address) was refused
                    result.failed.append((outgoing.delivery_id, str(error)))
                    refusals += 1
                    if not sent_any and refusals >= REFUSALS_BEFORE_STOPPING:
                        stop = error
                except OutcomeUnknown as error:  # the channel may have it: never resend
                    result.unconfirmed.append((outgoing.delivery_id, str(error)))
                except ChannelError as error:  # transient, rate limited, auth: whole post
                    stop = error
                    result.returned = [o.delivery_id for o in batch[index:]]
                else:
                    result.sent.append((outgoing.delivery_id, message.message_id))
                    sent_any, refusals = True, 0
                if stop is not None:
                    if not result.returned:
                        result.returned = [o.delivery_id for o in batch[index + 1 :]]
                    for pending in built[index + 1 :]:
                        pending.cancel()
                    break
            finish_batch(engine=engine, result=result)
            if stop is not None:
                raise stop
    counts = delivery_counts(engine=engine, post_id=claim.post_id)
    if not is_finished(counts):  # another worker's batch is still out; it will finish
        return "publishing"
    # A part of a variant test may be empty (a small audience): nothing to send is done.
    if (
        not counts.get("sent")
        and not counts.get("unconfirmed")
        and not (counts == {} and variant_of(content) is not None)
    ):
        raise PermanentError(
            f"no {kind} was sent: the community has no consenting subscriber in this audience"
            if not counts
            else f"every recipient was refused ({counts.get('failed', 0)})",
            code=f"{kind}:no-recipients",
            hint="Import subscribers with their consent (`marketing communities import`), "
            "or change the campaign's audience, then retry the post.",
        )
    record_receipt(
        engine=engine,
        claim=claim,
        receipt=Receipt(
            external_id=f"{kind}:{claim.marker}",
            permalink=None,
            published_at=utcnow(),
            raw=dict(counts),
        ),
    )
    return "published"


@contextlib.contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    """Run the body with the interpreter's thread switch interval set to ``seconds``."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def reconcile_bulk_post(*, engine: Engine, claim: Claim, policy: Policy) -> None:
    """A worker died while sending: its in-flight batch becomes unconfirmed (the channel
    cannot be asked), and the post is rescheduled to send what is still pending."""
    doubtful = abandon_sending(engine=engine, post_id=claim.post_id)
    if doubtful:
        log.warning(
            "post %s: %s message(s) left unconfirmed by a stopped worker", claim.post_id, doubtful
        )
    record_reconciliation(engine=engine, claim=claim, found=None, error=None, policy=policy)
