"""Warned ahead of expiry (#13): a stored token's known end within seven days is told to admins
once per recorded end, in the hourly digest, with a delegated reconnect link -- by an injected
clock, on SQLite and PostgreSQL, seen in the SMTP sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from channels.sandbox.smtp import SmtpSandbox
from marketing.db import session_scope
from marketing.models import (
    AccountHealth,
    ChannelAccount,
    NotificationEvent,
    NotificationKind,
    TokenKind,
    User,
)
from marketing.notifications import EXPIRY_WARNING, run, set_choices
from marketing.reconnect_links import find_link
from marketing.token_store import store_tokens
from tests.test_notifications import TEN, mails_to, people, settings_for, world

TOKEN = "EAAGloExpiry" + "y" * 40


@pytest.fixture
def relay() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as sandbox:
        yield sandbox


def store(engine: Engine, account_id: int, ends_in: timedelta) -> None:
    """The account's Page token in the store, its data access ending ``ends_in`` after TEN."""
    with session_scope(engine) as session:
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        store_tokens(
            session=session,
            account=account,
            kind=TokenKind.FACEBOOK_PAGE,
            access_token=SecretStr(TOKEN),
            lifetime_ends_at=TEN + ends_in,
            scopes=["pages_manage_posts"],
        )


def events(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(NotificationEvent)
                .where(NotificationEvent.kind == NotificationKind.ACCOUNT_EXPIRING)
            )
            or 0
        )


def test_admins_are_warned_once_a_week_before_a_token_ends_with_a_delegated_link(
    engine: Engine, relay: SmtpSandbox
) -> None:
    people(engine)
    account_id, _campaign = world(engine)
    settings = settings_for(relay)
    store(engine, account_id, timedelta(days=10))
    run(engine=engine, settings=settings, now=TEN)
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    assert relay.messages == [] and events(engine) == 0  # ten days left: not yet

    warned_at = TEN + timedelta(days=10) - EXPIRY_WARNING
    run(engine=engine, settings=settings, now=warned_at)
    assert relay.messages == []  # a digest: after its hour
    run(engine=engine, settings=settings, now=warned_at + timedelta(hours=1, minutes=3))
    assert {a for m in relay.messages for a in m.rcpt_tos} == {"admin@glo.example.org"}
    body = mails_to(relay, "admin@glo.example.org")[0]
    assert "เพจบ้านดอยเงิน" in body and "โทเคนจะใช้ไม่ได้ตั้งแต่" in body and "2569" in body
    subject = str(relay.messages[0].message["Subject"])
    assert "ก่อนโทเคนหมดอายุ (1)" in subject, subject
    assert TOKEN.encode() not in relay.messages[0].raw and b"EAA" not in relay.messages[0].raw
    link = next(word for word in body.split() if "/reconnect/" in word)
    with session_scope(engine) as session:
        found = find_link(
            session=session,
            token=link.rsplit("/", 1)[1],
            secret=settings.web_secret,
            now=warned_at + timedelta(hours=2),
        )
        assert found.account_id == account_id

    # Every later run until the end: the same end, told once.
    for days in (1, 2, 3):
        run(engine=engine, settings=settings, now=warned_at + timedelta(days=days))
        run(engine=engine, settings=settings, now=warned_at + timedelta(days=days, hours=1))
    assert len(relay.messages) == 1 and events(engine) == 1

    # Reconnected: a new end, told again when it nears -- unless the admin chose not to hear.
    store(engine, account_id, timedelta(days=20))
    with session_scope(engine) as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        set_choices(
            user=admin,
            enabled=[k for k in NotificationKind if k != NotificationKind.ACCOUNT_EXPIRING],
        )
    second = TEN + timedelta(days=20) - EXPIRY_WARNING + timedelta(minutes=1)
    run(engine=engine, settings=settings, now=second)
    run(engine=engine, settings=settings, now=second + timedelta(hours=1, minutes=3))
    assert events(engine) == 2 and len(relay.messages) == 1


def test_a_broken_account_is_told_as_broken_not_as_expiring(
    engine: Engine, relay: SmtpSandbox
) -> None:
    people(engine)
    account_id, _campaign = world(engine)
    store(engine, account_id, timedelta(days=2))
    with session_scope(engine) as session:
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        account.health = AccountHealth.NEEDS_RECONNECT
        account.health_checked_at = TEN
    settings = settings_for(relay)
    run(engine=engine, settings=settings, now=TEN)
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    assert events(engine) == 0
    assert (
        len(relay.messages) == 1 and "ต้องเชื่อมต่อใหม่" in mails_to(relay, "admin@glo.example.org")[0]
    )
