"""A post to many sent by several forked sending processes (``marketing.bulk``): each
consenting subscriber gets the letter once, unsubscribed and not-yet-consenting ones never,
and a sending process that dies mid-batch leaves its batch unconfirmed -- never sent again
-- while the rest goes out on the next try."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, insert, select, update

from channels.base import Account
from channels.email import EmailAdapter
from channels.errors import TransientError
from channels.sandbox.smtp import SmtpFault, SmtpSandbox
from channels.tracking import TrackingLinks
from marketing.bulk import send_bulk_post
from marketing.db import session_scope
from marketing.models import Community, Delivery, DeliveryState, Post, PostState, Subscriber
from marketing.publishing import Claim, begin_attempt
from tests.support.web import email_post, import_sample

COMMUNITY = "nan-ban-doi-ngoen"
SENDER = "community@example.org"
CONSENTED = datetime(2026, 1, 1, tzinfo=UTC)
NOT_YET = datetime(2999, 1, 1, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as running:
        yield running


def adapter(sandbox: SmtpSandbox) -> EmailAdapter:
    return EmailAdapter(
        host="127.0.0.1",
        port=sandbox.port,
        links=TrackingLinks("https://glo.example.org", SecretStr("test-secret")),
        unsubscribe_mailto="unsubscribe@example.org",
        local_hostname="worker.test",
        timeout=60.0,
    )


def claimed_post(engine: Engine, members: int) -> tuple[Claim, dict[str, set[int]]]:
    """An email post to the community, now claimed, with ``members`` more subscribers of
    whom every tenth has unsubscribed and every seventh consents only in 2999; the ids of
    the community's subscribers who may and may not receive it."""
    import_sample(engine)
    post_id = email_post(engine, community=COMMUNITY, sent=False)
    with session_scope(engine) as session:
        community_id = session.scalars(
            select(Community.id).where(Community.slug == COMMUNITY)
        ).one()
        session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"member{i}@example.org",
                    "name": f"คุณสมาชิก {i}",
                    "community_id": community_id,
                    "consent_source": "แบบฟอร์มออนไลน์",
                    "consent_at": NOT_YET if i % 7 == 3 else CONSENTED,
                    "unsubscribed_at": CONSENTED + timedelta(days=1) if i % 10 == 5 else None,
                    "tags": [],
                }
                for i in range(members)
            ],
        )
        session.execute(update(Post).where(Post.id == post_id).values(state=PostState.QUEUED))
        rows = session.execute(
            select(Subscriber.id, Subscriber.unsubscribed_at, Subscriber.consent_at).where(
                Subscriber.community_id == community_id
            )
        ).all()
    claim = begin_attempt(engine=engine, post_id=post_id, worker="test")
    assert claim is not None
    never = {
        r.id
        for r in rows
        if r.unsubscribed_at is not None or r.consent_at.replace(tzinfo=UTC) >= NOT_YET
    }
    return claim, {"receive": {r.id for r in rows} - never, "never": never}


def send(engine: Engine, claim: Claim, sandbox: SmtpSandbox, *, processes: int) -> str:
    return send_bulk_post(
        engine=engine,
        claim=claim,
        account=Account(kind="email", external_id=SENDER, display_name="ชุมชน"),
        sender=adapter(sandbox),
        batch_size=10,
        processes=processes,
    )


def states(engine: Engine, post_id: int) -> dict[int, DeliveryState]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Delivery.subscriber_id, Delivery.state).where(Delivery.post_id == post_id)
        ).all()
    return {subscriber: state for subscriber, state in rows}


def test_several_sending_processes_send_each_consenting_subscriber_one_letter(
    engine: Engine, sandbox: SmtpSandbox
) -> None:
    claim, who = claimed_post(engine, members=95)
    refused = "member12@example.org"
    sandbox.inject(SmtpFault(stage="rcpt", code=550, recipients=frozenset({refused}), times=None))

    assert send(engine, claim, sandbox, processes=3) == "published"

    received = Counter(m.subscriber_id for m in sandbox.messages)
    assert set(received) == who["receive"] - {_subscriber(engine, refused)}
    assert set(received.values()) == {1}
    ended = states(engine, claim.post_id)
    assert set(ended) == who["receive"]  # no delivery at all for the others
    assert Counter(ended.values()) == {
        DeliveryState.SENT: len(who["receive"]) - 1,
        DeliveryState.FAILED: 1,
    }
    # every process said QUIT: none is left behind
    assert _sending_processes() == []


def test_a_sending_process_killed_mid_batch_leaves_it_unconfirmed_and_never_resent(
    engine: Engine, sandbox: SmtpSandbox
) -> None:
    claim, who = claimed_post(engine, members=60)
    # The first message's answer never comes in time: its process is killed meanwhile.
    sandbox.inject(SmtpFault(action="stall", stage="data", seconds=30))
    killer = threading.Thread(target=_kill_senders_once_stalled, args=(sandbox,), daemon=True)
    killer.start()
    with pytest.raises(TransientError) as stopped:
        send(engine, claim, sandbox, processes=2)
    killer.join(10)
    assert stopped.value.code == "email:sender-stopped"
    after_kill = states(engine, claim.post_id)
    assert DeliveryState.SENDING not in after_kill.values()
    doubtful = {s for s, state in after_kill.items() if state == DeliveryState.UNCONFIRMED}
    stalled = sandbox.messages[0].subscriber_id
    assert stalled in doubtful  # the relay has it, and the worker cannot know

    sandbox.clear()  # from here on, only what the retry sends
    assert send(engine, claim, sandbox, processes=2) == "published"

    resent = Counter(m.subscriber_id for m in sandbox.messages)
    assert not doubtful & set(resent)  # an unconfirmed letter is never sent again
    assert set(resent.values()) <= {1}
    ended = states(engine, claim.post_id)
    assert set(ended) == who["receive"]
    assert {s for s, state in ended.items() if state == DeliveryState.UNCONFIRMED} == doubtful
    assert {s for s, state in ended.items() if state == DeliveryState.SENT} >= set(resent)
    assert _sending_processes() == []


def _subscriber(engine: Engine, address: str) -> int:
    with session_scope(engine) as session:
        return session.scalars(select(Subscriber.id).where(Subscriber.email == address)).one()


def _kill_senders_once_stalled(sandbox: SmtpSandbox) -> None:
    """SIGKILL every sending process once the relay holds the stalled message."""
    for _ in range(2000):
        if sandbox.messages:
            break
        threading.Event().wait(0.01)
    for pid in _sending_processes():
        os.kill(pid, signal.SIGKILL)


def _sending_processes() -> list[int]:
    """Live children of this process that are forks of it (same command line): the
    sending processes, not the database or relay a fixture started."""
    me = os.getpid()
    mine = Path(f"/proc/{me}/cmdline").read_bytes()
    found = []
    for task in Path(f"/proc/{me}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                stat = Path(f"/proc/{child}/stat").read_text()
                same = Path(f"/proc/{child}/cmdline").read_bytes() == mine
            except OSError:
                continue
            if same and stat.rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(child))
    return found
