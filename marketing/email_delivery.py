"""Email fan-out bookkeeping: one ``Delivery`` per consenting subscriber, each sent at most once.

An email post is one publication to many people.  Its deliveries are created when the post
is first claimed (idempotently, so a retry adds only subscribers who consented since),
then sent in batches: a batch is marked ``sending`` in one transaction before its messages
go out and settled in one transaction after, so at most one batch per sending process
(``MARKETING_EMAIL_SENDING_PROCESSES``) is ever in doubt.  A delivery left ``sending`` by a
dead worker becomes ``unconfirmed`` -- an SMTP relay cannot be asked whether it has a
message, so it is never sent again automatically.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from channels.email import Recipient
from marketing import observability
from marketing.db import session_scope, utcnow, write_session
from marketing.models import Delivery, DeliveryState, Subscriber
from marketing.variant_tests import receives

_OPEN = (DeliveryState.PENDING, DeliveryState.SENDING)


@dataclass(frozen=True)
class Outgoing:
    """One delivery about to be sent."""

    delivery_id: int
    recipient: Recipient


def audience_tags(content: dict[str, Any]) -> set[str]:
    audience = content.get("audience") or {}
    return set(audience.get("tags") or []) if isinstance(audience, dict) else set()


def consenting_subscribers(
    *, engine: Engine, community_id: int, content: dict[str, Any], chunk: int = 5000
) -> Iterator[list[int]]:
    """Ids of the community's subscribers who consented and have not unsubscribed (and carry
    one of the audience's tags, if it names any; and, in a variant test, fall in this post's
    part), streamed in chunks."""
    tags = audience_tags(content)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Subscriber.id, Subscriber.tags)
            .where(
                Subscriber.community_id == community_id,
                Subscriber.unsubscribed_at.is_(None),
                Subscriber.consent_at <= utcnow(),
            )
            .order_by(Subscriber.id)
            .execution_options(yield_per=chunk)
        )
        batch: list[int] = []
        for subscriber_id, subscriber_tags in rows:
            if tags and not tags.intersection(subscriber_tags or []):
                continue
            if not receives(content, subscriber_id):  # another part of a variant test
                continue
            batch.append(subscriber_id)
            if len(batch) >= chunk:
                yield batch
                batch = []
        if batch:
            yield batch


def prepare_deliveries(
    *, engine: Engine, post_id: int, community_id: int, content: dict[str, Any]
) -> None:
    """Create a pending delivery for every consenting subscriber that has none yet."""
    for ids in consenting_subscribers(engine=engine, community_id=community_id, content=content):
        with session_scope(engine) as session:
            dialect = session.get_bind().dialect.name
            insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Delivery)
            session.execute(
                insert.on_conflict_do_nothing(index_elements=["post_id", "subscriber_id"]),
                [
                    {"post_id": post_id, "subscriber_id": i, "state": DeliveryState.PENDING}
                    for i in ids
                ],
            )


def take_batch(*, engine: Engine, post_id: int, size: int) -> list[Outgoing]:
    """Mark up to ``size`` pending deliveries ``sending`` and return them.  Subscribers who
    unsubscribed meanwhile are skipped, not sent to."""
    with write_session(engine) as session:
        rows = session.execute(
            select(
                Delivery.id,
                Subscriber.id,
                Subscriber.email,
                Subscriber.name,
                Subscriber.unsubscribed_at,
            )
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.post_id == post_id, Delivery.state == DeliveryState.PENDING)
            .order_by(Delivery.id)
            .limit(size)
        ).all()
        skipped = [r[0] for r in rows if r.unsubscribed_at is not None]
        batch = [
            Outgoing(r[0], Recipient(subscriber_id=r[1], email=r.email, name=r.name))
            for r in rows
            if r.unsubscribed_at is None
        ]
        if skipped:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(skipped))
                .values(state=DeliveryState.SKIPPED, error="unsubscribed before sending")
            )
        if batch:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_([o.delivery_id for o in batch]))
                .values(state=DeliveryState.SENDING)
            )
    return batch


@dataclass
class BatchResult:
    """What happened to each delivery of a batch."""

    sent: list[tuple[int, str]]  # (delivery id, Message-ID)
    failed: list[tuple[int, str]]  # (delivery id, reason)
    unconfirmed: list[tuple[int, str]]
    returned: list[int]  # not attempted (the batch stopped): back to pending


def finish_batch(*, engine: Engine, result: BatchResult, at: datetime | None = None) -> None:
    """Settle a batch in one transaction."""
    at = at or utcnow()
    with session_scope(engine) as session:
        if result.sent:
            session.execute(
                update(Delivery),
                [
                    {"id": i, "state": DeliveryState.SENT, "message_id": m, "sent_at": at}
                    for i, m in result.sent
                ],
            )
        for state, items in (
            (DeliveryState.FAILED, result.failed),
            (DeliveryState.UNCONFIRMED, result.unconfirmed),
        ):
            if items:
                session.execute(
                    update(Delivery),
                    [{"id": i, "state": state, "error": reason[:2000]} for i, reason in items],
                )
        if result.returned:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(result.returned))
                .values(state=DeliveryState.PENDING)
            )
    observability.count_emails(
        sent=len(result.sent), refused=len(result.failed), unconfirmed=len(result.unconfirmed)
    )


def delivery_counts(*, engine: Engine, post_id: int) -> Counter[str]:
    """Deliveries of a post by state."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Delivery.state, func.count())
            .where(Delivery.post_id == post_id)
            .group_by(Delivery.state)
        ).all()
    return Counter({state.value: n for state, n in rows})


def abandon_sending(*, engine: Engine, post_id: int) -> int:
    """After a worker died mid-batch: its ``sending`` deliveries become ``unconfirmed``
    (never re-sent automatically); return how many."""
    with session_scope(engine) as session:
        result = session.execute(
            update(Delivery)
            .where(Delivery.post_id == post_id, Delivery.state == DeliveryState.SENDING)
            .values(
                state=DeliveryState.UNCONFIRMED,
                error="the sending worker stopped; the relay may or may not have it",
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def is_finished(counts: Counter[str]) -> bool:
    """Every delivery has ended (none pending or sending)."""
    return not any(counts.get(state.value) for state in _OPEN)
