"""Delegated reconnect links (signed, expiring, single use, audited) and the e-mail sender
test, through the core functions and the web app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, select

from channels.sandbox.smtp import SmtpFault, SmtpSandbox
from marketing.db import session_scope
from marketing.models import AuditLog, ChannelAccount, ChannelKind, ReconnectLink, Role, User
from marketing.reconnect_links import (
    LINK_LIFETIME,
    LinkRefused,
    Refusal,
    create_link,
    find_link,
    register_connect_flow,
    use_link,
)
from marketing.settings import Settings
from marketing.web import create_app
from tests.support.web import WebClient, add_user, import_sample

SECRET = SecretStr("a-web-secret-for-the-tests-only")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def facebook_account(engine: Engine) -> tuple[int, str]:
    with session_scope(engine) as session:
        account = session.scalars(
            select(ChannelAccount)
            .where(ChannelAccount.kind == ChannelKind.FACEBOOK)
            .order_by(ChannelAccount.id)
        ).first()
        assert account is not None
        return account.id, account.slug


def issue(engine: Engine, *, now: datetime = NOW) -> str:
    """A new link's token for the first Facebook account."""
    import_sample(engine)
    with session_scope(engine) as session:
        account_id, _slug = facebook_account(engine)
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        issued = create_link(
            session=session,
            account=account,
            created_by="admin",
            secret=SECRET,
            base_url="https://glo.example.org",
            now=now,
        )
    assert issued.url.startswith("https://glo.example.org/reconnect/")
    assert issued.expires_at == now + LINK_LIFETIME
    return issued.url.rsplit("/", 1)[1]


def refusal(engine: Engine, token: str, now: datetime, secret: SecretStr = SECRET) -> Refusal:
    with session_scope(engine) as session, pytest.raises(LinkRefused) as refused:
        use_link(session=session, token=token, secret=secret, now=now)
    return refused.value.reason


def test_a_link_works_once(engine: Engine) -> None:
    token = issue(engine)
    with session_scope(engine) as session:
        link = use_link(session=session, token=token, secret=SECRET, now=NOW + timedelta(days=1))
        assert link.used_at == NOW + timedelta(days=1)
    assert refusal(engine, token, NOW + timedelta(days=1, seconds=1)) == Refusal.USED


def test_a_link_expires_after_seven_days(engine: Engine) -> None:
    token = issue(engine)
    with session_scope(engine) as session:
        find_link(
            session=session,
            token=token,
            secret=SECRET,
            now=NOW + LINK_LIFETIME - timedelta(seconds=1),
        )
    assert refusal(engine, token, NOW + LINK_LIFETIME) == Refusal.EXPIRED


def test_a_tampered_or_foreign_link_is_invalid(engine: Engine) -> None:
    token = issue(engine)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    assert refusal(engine, flipped, NOW) == Refusal.INVALID
    assert refusal(engine, token, NOW, secret=SecretStr("another-secret")) == Refusal.INVALID
    assert refusal(engine, "x" * 400, NOW) == Refusal.INVALID
    # Signed with our key but naming another nonce: refused by the stored hash.
    from itsdangerous import URLSafeSerializer

    forged = URLSafeSerializer(SECRET.get_secret_value(), salt="glo.reconnect-link").dumps(
        {"l": 1, "n": "guessed"}
    )
    assert refusal(engine, forged, NOW) == Refusal.INVALID
    with session_scope(engine) as session:
        stored = session.scalars(select(ReconnectLink.nonce_hash)).one()
    assert stored not in token and len(stored) == 64


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def relay() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(engine: Engine, relay: SmtpSandbox, clock: Clock) -> FastAPI:
    import_sample(engine)
    add_user(engine, "admin", Role.ADMIN)
    add_user(engine, "editor", Role.EDITOR)
    settings = Settings(
        smtp_host="127.0.0.1",
        smtp_port=relay.port,
        smtp_timeout=5.0,
        email_from="notify@glo.example.org",
    )
    return create_app(engine=engine, settings=settings, clock=clock)


def make_link(client: WebClient, slug: str) -> str:
    page = client.post(f"/accounts/{slug}/reconnect-link")
    assert page.status_code == 200, page.text[:500]
    found = re.search(r'value="(http[^"]+/reconnect/[^"]+)"', page.text)
    assert found, page.text
    return found[1].split("/reconnect/", 1)[1]


def test_an_owner_without_a_staff_account_reconnects_through_the_link_once(
    app: FastAPI, engine: Engine, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketing import reconnect_links

    # The instructions shown where no connect flow is registered (tests/
    # test_delegated_connect.py walks the registered Facebook and Google flows).
    monkeypatch.setattr(reconnect_links, "_FLOWS", {})
    _id, slug = facebook_account(engine)
    admin = WebClient(app).sign_in("admin")
    community_page = admin.get("/communities/nan-ban-doi-ngoen").text
    assert f"/accounts/{slug}/reconnect-link" in community_page
    token = make_link(admin, slug)
    assert (
        WebClient(app).sign_in("editor").post(f"/accounts/{slug}/reconnect-link").status_code == 403
    )

    with TestClient(app, follow_redirects=False) as owner:
        page = owner.get(f"/reconnect/{token}")
        assert page.status_code == 200
        assert "ชุมชนผ้าทอบ้านดอยเงิน" in page.text and "เชื่อมต่อ" in page.text
        assert owner.get(f"/reconnect/{token}").status_code == 200  # opening does not use it
        csrf = CSRF.search(page.text)
        assert csrf
        started = owner.post(f"/reconnect/{token}", data={"csrf_token": csrf[1]})
        assert started.status_code == 200  # no connect flow registered: the instructions
        assert "ผู้ดูแลโครงการ" in started.text
        again = owner.post(f"/reconnect/{token}", data={"csrf_token": csrf[1]})
        assert again.status_code == 410 and "ถูกใช้ไปแล้ว" in again.text
    with session_scope(engine) as session:
        actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions.count("account.reconnect_link") == 1
    assert actions.count("account.reconnect_link_used") == 1


def test_a_registered_connect_flow_receives_the_owner(
    app: FastAPI, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketing import reconnect_links

    monkeypatch.setattr(reconnect_links, "_FLOWS", {})
    register_connect_flow(ChannelKind.FACEBOOK, lambda account: f"/connect/facebook/{account.slug}")
    _id, slug = facebook_account(engine)
    token = make_link(WebClient(app).sign_in("admin"), slug)
    with TestClient(app, follow_redirects=False) as owner:
        csrf = CSRF.search(owner.get(f"/reconnect/{token}").text)
        assert csrf
        started = owner.post(f"/reconnect/{token}", data={"csrf_token": csrf[1]})
        assert started.status_code == 303
        assert started.headers["location"] == f"/connect/facebook/{slug}"


def test_an_expired_or_tampered_link_opens_nothing(
    app: FastAPI, engine: Engine, clock: Clock
) -> None:
    _id, slug = facebook_account(engine)
    token = make_link(WebClient(app).sign_in("admin"), slug)
    with TestClient(app, follow_redirects=False) as owner:
        assert owner.get(f"/reconnect/{token[:-2]}xy").status_code == 404
        clock.moment = NOW + LINK_LIFETIME + timedelta(minutes=1)
        expired = owner.get(f"/reconnect/{token}")
        assert expired.status_code == 410 and "หมดอายุ" in expired.text


def test_notification_choices_and_address_are_saved(app: FastAPI, engine: Engine) -> None:
    editor = WebClient(app).sign_in("editor")
    page = editor.get("/account")
    assert "การแจ้งเตือนทางอีเมล" in page.text
    assert 'value="post_problem"' in page.text and 'value="account_reconnect"' not in page.text
    saved = editor.post(
        "/account/notifications", {"email": "editor@glo.example.org", "kind": ["youtube_quota"]}
    )
    assert saved.status_code == 303
    with session_scope(engine) as session:
        me = session.scalars(select(User).where(User.username == "editor")).one()
        assert me.email == "editor@glo.example.org"
        assert "post_problem" in me.notifications_off
        assert "youtube_quota" not in me.notifications_off
    editor.post("/account/notifications", {"email": "not an address"})
    with session_scope(engine) as session:
        me = session.scalars(select(User).where(User.username == "editor")).one()
        assert me.email == "editor@glo.example.org"


def test_the_sender_test_reaches_the_relay_or_says_what_to_do(
    app: FastAPI, relay: SmtpSandbox
) -> None:
    admin = WebClient(app).sign_in("admin")
    sent = admin.post("/accounts/email-test", {"to": "me@glo.example.org", "back": "/communities"})
    assert sent.status_code == 303 and sent.headers["location"] == "/communities"
    assert "ส่งอีเมลทดสอบจาก notify@glo.example.org" in admin.get("/communities").text
    (message,) = relay.messages
    assert message.mail_from == "notify@glo.example.org"
    assert message.rcpt_tos == ("me@glo.example.org",)
    assert "ทดสอบ" in str(message.message["Subject"])

    relay.inject(SmtpFault(stage="mail", code=550, message="5.7.1 sender not allowed"))
    admin.post("/accounts/email-test", {"to": "me@glo.example.org"})
    page = admin.get("/communities").text
    assert "email:smtp-550" in page and "MARKETING_EMAIL_FROM" in page and "ปฏิเสธ" in page
    assert len(relay.messages) == 1
