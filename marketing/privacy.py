"""Requests under Thailand's PDPA: what the programme holds about a person, erasing it, and
keeping individual tracking no longer than needed.

* :func:`export_subscriber` -- every row about one e-mail address, as JSON-able data: the
  subscriber rows (one per community), their consent evidence, deliveries, e-mail events,
  and audit entries and import jobs that name the address.
* :func:`erase_subscriber` -- the person is gone from every row: each subscriber row becomes
  an anonymous stand-in (no address, name or tags; consent withdrawn), their deliveries and
  events stay attached to it without anything that names them, and audit entries and import
  results that named the address have it replaced.  Deliveries and events are kept (not
  deleted) because the reports are recomputed from them: the programme's totals -- e-mails
  sent, opens, clicks, unsubscribes -- stay what they were.  The erasure is audited under a
  SHA-256 of the address, never the address.
* :func:`purge_tracking_events` -- events of posts published longer ago than the retention
  time are counted into :class:`~marketing.models.EmailEventTally` and deleted (housekeeping).

Erasure does not reach into backups, so each erasure also appends the address's SHA-256 to
an erasure list outside the database (:func:`note_erasure`, ``<data folder>/erasures.txt``),
and :func:`reapply_erasures` erases those people again from a restored database.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, cast, delete, func, select, text
from sqlalchemy.orm import Session

from channels.base import Capability
from marketing.db import utcnow, write_session
from marketing.models import (
    AuditLog,
    Campaign,
    ChannelKind,
    Community,
    Delivery,
    EmailEvent,
    EmailEventKind,
    EmailEventTally,
    ImportJob,
    Post,
    Subscriber,
    channels_that,
)

__all__ = [
    "ERASED",
    "address_hash",
    "erase_subscriber",
    "export_subscriber",
    "note_erasure",
    "purge_tracking_events",
    "reapply_erasures",
]

ERASED = "[erased]"
ERASED_DOMAIN = "erased.invalid"  # RFC 2606: never deliverable


class NobodyFound(LookupError):
    """No subscriber has this address."""


def address_hash(address: str) -> str:
    """The SHA-256 of a normalised address: what the audit log keeps of an erased person."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _subscribers(session: Session, address: str) -> list[Subscriber]:
    wanted = address.strip().lower()
    return list(
        session.scalars(
            select(Subscriber).where(func.lower(Subscriber.email) == wanted).order_by(Subscriber.id)
        )
    )


def _naming(session: Session, model: Any, column: Any, address: str) -> list[Any]:
    """Rows of ``model`` whose JSON ``column`` mentions ``address`` (any case)."""
    needle = address.strip().lower()
    return list(
        session.scalars(
            select(model).where(func.lower(cast(column, String)).contains(needle, autoescape=True))
        )
    )


def export_subscriber(*, session: Session, address: str) -> dict[str, Any]:
    """Everything held about ``address`` (NobodyFound if no subscriber has it)."""
    people = _subscribers(session, address)
    if not people:
        raise NobodyFound(address)
    ids = [p.id for p in people]
    communities = dict(
        session.execute(
            select(Community.id, Community.slug).where(
                Community.id.in_({p.community_id for p in people})
            )
        ).all()
    )
    deliveries = session.execute(
        select(Delivery, Post.channel, Post.content, Campaign.slug)
        .join(Post, Post.id == Delivery.post_id)
        .join(Campaign, Campaign.id == Post.campaign_id)
        .where(Delivery.subscriber_id.in_(ids))
        .order_by(Delivery.id)
    ).all()
    events = session.scalars(
        select(EmailEvent).where(EmailEvent.subscriber_id.in_(ids)).order_by(EmailEvent.id)
    ).all()
    audits = _naming(session, AuditLog, AuditLog.detail, address)
    imports = _naming(session, ImportJob, ImportJob.result, address)
    return {
        "address": address.strip(),
        "exported_at": utcnow().isoformat(),
        "subscribers": [
            {
                "id": p.id,
                "email": p.email,
                "name": p.name,
                "community": communities.get(p.community_id),
                "tags": list(p.tags),
                "created_at": _iso(p.created_at),
                "updated_at": _iso(p.updated_at),
                "unsubscribed_at": _iso(p.unsubscribed_at),
                "line_user_id": p.line_user_id,
                "consent": {
                    "source": p.consent_source,
                    "at": _iso(p.consent_at),
                    "form": p.consent_form,
                    "address": p.consent_address,
                },
            }
            for p in people
        ],
        "deliveries": [
            {
                "id": d.id,
                "subscriber_id": d.subscriber_id,
                "post_id": d.post_id,
                "campaign": campaign,
                "subject": (content or {}).get("subject"),
                "state": d.state.value,
                "message_id": d.message_id,
                "sent_at": _iso(d.sent_at),
                "error": d.error,
            }
            for d, _channel, content, campaign in deliveries
        ],
        "email_events": [
            {
                "id": e.id,
                "subscriber_id": e.subscriber_id,
                "post_id": e.post_id,
                "kind": e.kind.value,
                "url": e.url,
                "occurred_at": _iso(e.occurred_at),
            }
            for e in events
        ],
        "audit_log": [
            {
                "id": a.id,
                "at": _iso(a.at),
                "actor": a.actor,
                "action": a.action,
                "object": f"{a.object_type}:{a.object_id}",
                "detail": a.detail,
            }
            for a in audits
        ],
        "import_jobs": [
            {"id": j.id, "file_name": j.file_name, "at": _iso(j.created_at), "result": j.result}
            for j in imports
        ],
    }


def _scrub(value: Any, words: list[str]) -> Any:
    """``value`` (JSON-able) with every word of ``words`` replaced by :data:`ERASED`."""
    dumped = json.dumps(value, ensure_ascii=False)
    for word in words:
        if not word:
            continue
        lowered = dumped.lower()
        start = lowered.find(word.lower())
        while start != -1:
            dumped = dumped[:start] + ERASED + dumped[start + len(word) :]
            lowered = dumped.lower()
            start = lowered.find(word.lower(), start + len(ERASED))
    return json.loads(dumped)


def erase_subscriber(
    *, session: Session, address: str, reason: str, actor: str, now: datetime | None = None
) -> dict[str, int]:
    """Erase ``address`` from every row (see the module docstring); return what was changed.
    NobodyFound if no subscriber has it."""
    now = now or utcnow()
    people = _subscribers(session, address)
    if not people:
        raise NobodyFound(address)
    ids = [p.id for p in people]
    words = sorted({address.strip(), *(p.email for p in people)}, key=len, reverse=True)
    names = [p.name for p in people if p.name.strip()]
    counts = {"subscribers": len(people)}
    counts["deliveries"] = (
        session.scalar(select(func.count()).where(Delivery.subscriber_id.in_(ids))) or 0
    )
    counts["email_events"] = (
        session.scalar(select(func.count()).where(EmailEvent.subscriber_id.in_(ids))) or 0
    )
    for delivery in session.scalars(
        select(Delivery).where(Delivery.subscriber_id.in_(ids), Delivery.error.is_not(None))
    ):
        delivery.error = ERASED  # a relay's refusal often quotes the address
    for event in session.scalars(
        select(EmailEvent).where(EmailEvent.subscriber_id.in_(ids), EmailEvent.url.is_not(None))
    ):
        if event.url and any(w.lower() in event.url.lower() for w in words):
            event.url = None
    for person in people:
        person.email = f"{secrets.token_hex(12)}@{ERASED_DOMAIN}"
        person.name = ""
        person.tags = []
        person.consent_source = ERASED
        person.consent_form = None
        person.consent_address = None
        person.line_user_id = None
        person.unsubscribed_at = person.unsubscribed_at or now
    scrubbed = 0
    for model, column in ((AuditLog, "detail"), (ImportJob, "result")):
        for row in {
            r.id: r for w in words for r in _naming(session, model, getattr(model, column), w)
        }.values():
            setattr(row, column, _scrub(getattr(row, column), [*words, *names]))
            scrubbed += 1
    counts["entries_scrubbed"] = scrubbed
    session.add(
        AuditLog(
            actor=actor,
            action="subscriber.erase",
            object_type="subscriber",
            object_id=address_hash(address)[:16],
            detail={"address_sha256": address_hash(address), "reason": reason, **counts},
            at=now,
        )
    )
    session.flush()
    return counts


def wipe_free_space(engine: Engine) -> None:
    """Make erased values unrecoverable from the database files: SQLite zeroes freed space
    (VACUUM) and empties its write-ahead log; PostgreSQL's VACUUM reclaims the dead rows of
    the tables an erasure touches."""
    if engine.dialect.name == "sqlite":
        # Outside any transaction (the engine's connections always BEGIN): the raw connection
        # runs in autocommit, as VACUUM needs.
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
        return
    tables = ("subscriber", "delivery", "email_event", "audit_log", "import_job")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM {', '.join(tables)}"))


def purge_tracking_events(
    *, engine: Engine, older_than: timedelta, now: datetime | None = None
) -> int:
    """Count the e-mail events of posts published more than ``older_than`` ago into
    :class:`EmailEventTally` (as the rollup counts them: people for opens and clicks,
    events for unsubscribes), then delete them; return how many were deleted."""
    now = now or utcnow()
    cutoff = now - older_than
    with write_session(engine) as session:
        # Events recorded while this runs are left for the next run, never deleted uncounted.
        newest = session.scalar(select(func.max(EmailEvent.id))) or 0
        old_posts = select(Post.id).where(
            Post.channel.in_(channels_that(Capability.SEND_TO_MANY)),
            Post.published_at.is_not(None),
            Post.published_at < cutoff,
        )
        tallies: dict[tuple[int, ChannelKind, date], dict[str, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        for kind, name in ((EmailEventKind.OPEN, "opens"), (EmailEventKind.CLICK, "clicks")):
            first = (
                select(
                    EmailEvent.post_id,
                    EmailEvent.subscriber_id,
                    func.min(EmailEvent.day).label("day"),
                )
                .where(
                    EmailEvent.kind == kind,
                    EmailEvent.post_id.in_(old_posts),
                    EmailEvent.id <= newest,
                )
                .group_by(EmailEvent.post_id, EmailEvent.subscriber_id)
                .subquery()
            )
            for row in session.execute(
                select(Post.community_id, Post.channel, first.c.day, func.count().label("n"))
                .join(Post, Post.id == first.c.post_id)
                .group_by(Post.community_id, Post.channel, first.c.day)
            ):
                tallies[(row.community_id, row.channel, row.day)][name] += int(row.n)
        for row in session.execute(
            select(Post.community_id, Post.channel, EmailEvent.day, func.count().label("n"))
            .join(Post, Post.id == EmailEvent.post_id)
            .where(
                EmailEvent.kind == EmailEventKind.UNSUBSCRIBE,
                EmailEvent.post_id.in_(old_posts),
                EmailEvent.id <= newest,
            )
            .group_by(Post.community_id, Post.channel, EmailEvent.day)
        ):
            tallies[(row.community_id, row.channel, row.day)]["unsubscribes"] += int(row.n)
        for (community_id, channel, day), values in tallies.items():
            tally = session.scalars(
                select(EmailEventTally).where(
                    EmailEventTally.community_id == community_id,
                    EmailEventTally.channel == channel,
                    EmailEventTally.day == day,
                )
            ).one_or_none()
            if tally is None:
                tally = EmailEventTally(
                    community_id=community_id,
                    channel=channel,
                    day=day,
                    opens=0,
                    clicks=0,
                    unsubscribes=0,
                )
                session.add(tally)
            tally.opens += values["opens"]
            tally.clicks += values["clicks"]
            tally.unsubscribes += values["unsubscribes"]
        deleted = session.execute(
            delete(EmailEvent).where(EmailEvent.post_id.in_(old_posts), EmailEvent.id <= newest)
        )
        return int(getattr(deleted, "rowcount", 0) or 0)


def note_erasure(*, path: Path, address: str, now: datetime | None = None) -> None:
    """Append the SHA-256 of an erased ``address`` to the erasure list at ``path`` (created
    private to its owner), so a restore of an older backup can erase them again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as fh:
        fh.write(f"{address_hash(address)} {(now or utcnow()).isoformat(timespec='seconds')}\n")


def erased_hashes(path: Path) -> set[str]:
    """The address hashes in the erasure list at ``path`` (empty if there is none)."""
    if not path.is_file():
        return set()
    found = set()
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        digest = line.split(" ", 1)[0].strip()
        if len(digest) == 64:
            found.add(digest)
    return found


def reapply_erasures(*, session: Session, hashes: set[str], actor: str) -> int:
    """Erase again every subscriber whose address hash is in ``hashes`` (after a restore of
    a backup older than the erasure); return how many people were erased."""
    if not hashes:
        return 0
    addresses = {
        email.strip().lower()
        for email in session.scalars(select(Subscriber.email))
        if address_hash(email) in hashes
    }
    for address in sorted(addresses):
        erase_subscriber(
            session=session,
            address=address,
            reason="erased before; re-applied after a restore",
            actor=actor,
        )
    return len(addresses)
