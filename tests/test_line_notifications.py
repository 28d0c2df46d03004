"""Staff notification digests also through the programme's LINE Official Account (#16): the
notifications core run over an injected clock sends each digest by e-mail (SMTP sandbox) and,
when a LINE account is configured, multicasts it in Thai to the staff LINE ids through
LineAdapter.notify (the official SDK against the LINE sandbox), once however often it runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine

from channels.sandbox.line import LineSandbox
from channels.sandbox.smtp import SmtpSandbox
from marketing.db import session_scope
from marketing.models import AccountHealth, ChannelAccount, ChannelKind, TokenKind
from marketing.notifications import run
from marketing.settings import Settings
from marketing.token_store import store_tokens
from tests.test_notifications import (
    PAGE_TOKEN,
    TEN,
    fail_post,
    mails_to,
    people,
    settings_for,
    world,
)

TOKEN = "line-notify-token-GLO-31f0a9"


@pytest.fixture
def relay() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def line() -> Iterator[LineSandbox]:
    server = LineSandbox(seed=9)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def line_settings(
    engine: Engine, relay: SmtpSandbox, line: LineSandbox
) -> tuple[Settings, list[str]]:
    """The programme's OA (token in the encrypted store) and two staff who follow it."""
    staff = [line.user_id(), line.user_id()]
    channel = line.register_channel(
        TOKEN, basic_id="@glo", display_name="สลากสร้างสรรค์", friends=[*staff, line.user_id()]
    )
    settings = settings_for(relay).model_copy(
        update={
            "line_api_url": line.url,
            "line_timeout": 5.0,
            "token_keys": SecretStr(Fernet.generate_key().decode()),
            "notify_line_account": "glo-line",
            "notify_line_users": ",".join(staff),
        }
    )
    with session_scope(engine) as session:
        account = ChannelAccount(
            slug="glo-line",
            kind=ChannelKind.LINE,
            external_id=channel.user_id,
            display_name="สลากสร้างสรรค์",
            health=AccountHealth.OK,
        )
        session.add(account)
        session.flush()
        store_tokens(
            session=session,
            account=account,
            kind=TokenKind.LINE_CHANNEL,
            access_token=SecretStr(TOKEN),
            settings=settings,
        )
    return settings, staff


def test_a_digest_reaches_staff_on_line_once_in_thai(
    engine: Engine, relay: SmtpSandbox, line: LineSandbox
) -> None:
    people(engine)
    account_id, campaign_id = world(engine)
    settings, staff = line_settings(engine, relay, line)
    fail_post(engine, account_id=account_id, campaign_id=campaign_id, at=TEN)
    assert run(engine=engine, settings=settings, now=TEN).line_sent == 0  # hour not over
    done = run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    assert done.sent >= 1 and done.line_sent == 1
    assert len(mails_to(relay, "editor@glo.example.org")) == 1  # e-mail as before
    sent = line.accepted(kind="multicast")
    assert len(sent) == 1
    assert sorted(sent[0].recipients) == sorted(staff)
    text = sent[0].messages[0]["text"]
    assert text.startswith("[GLO] โพสต์ที่ล้มเหลว") and "คุณทีมงาน" in text
    assert "สงกรานต์ที่น่าน" in text and "/posts/" in text
    assert PAGE_TOKEN not in text and TOKEN not in text
    # Later runs claim nothing new: nothing more on LINE.
    again = run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=30))
    assert again.line_sent == 0 and len(line.accepted(kind="multicast")) == 1


def test_a_refused_line_token_leaves_the_mail_alone(
    engine: Engine, relay: SmtpSandbox, line: LineSandbox
) -> None:
    people(engine)
    account_id, campaign_id = world(engine)
    settings, _staff = line_settings(engine, relay, line)
    line.revoke(TOKEN)
    fail_post(engine, account_id=account_id, campaign_id=campaign_id, at=TEN)
    run(engine=engine, settings=settings, now=TEN)
    done = run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    assert done.line_sent == 0 and done.sent >= 1
    assert len(mails_to(relay, "editor@glo.example.org")) == 1
    assert line.accepted() == []
