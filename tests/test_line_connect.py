"""Connecting a LINE Official Account from the web app (#16): an admin pastes a channel access
token, the app asks the LINE sandbox whose it is (``/v2/bot/info`` through the adapter and the
official SDK), stores it encrypted and shows the OA's name; a token LINE refuses is refused in
Thai with what to do, and nothing is stored.  A worker then reads the token from the store
(:func:`tasks.wiring.account_of`) and broadcasts with it.  SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import Engine, func, select

from channels.base import OutgoingPost
from channels.line import LineAdapter
from channels.sandbox.line import LineSandbox
from marketing.db import session_scope
from marketing.models import AccountToken, ChannelAccount, ChannelKind, Community, Role, TokenKind
from marketing.settings import reset_settings
from marketing.token_store import load_tokens
from marketing.web import create_app
from tests.support.web import WebClient, add_user, import_sample

TOKEN = "line-connect-token-NAN-5d0c7f1e9a"
OTHER_TOKEN = "line-connect-token-NAN-reissued-77b2"
NAN = "nan-ban-doi-ngoen"
OA_NAME = "ผ้าทอบ้านดอยเงิน (LINE)"


@pytest.fixture
def sandbox() -> Iterator[LineSandbox]:
    server = LineSandbox(seed=5)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def app(engine: Engine, sandbox: LineSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    import_sample(engine)
    monkeypatch.setenv("MARKETING_LINE_API_URL", sandbox.url)
    monkeypatch.setenv("MARKETING_LINE_TIMEOUT", "5")
    monkeypatch.setenv("MARKETING_TOKEN_KEYS", Fernet.generate_key().decode())
    reset_settings()
    from tasks import wiring

    wiring.reset()
    add_user(engine, "admin", Role.ADMIN)
    add_user(engine, "editor", Role.EDITOR)
    yield create_app(engine=engine)
    wiring.reset()
    reset_settings()


def counts(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as session:
        tokens = session.scalar(select(func.count()).select_from(AccountToken)) or 0
        lines = (
            session.scalar(
                select(func.count())
                .select_from(ChannelAccount)
                .where(ChannelAccount.kind == ChannelKind.LINE)
            )
            or 0
        )
    return tokens, lines


def test_a_token_line_refuses_is_refused_in_thai_and_nothing_is_stored(
    app: FastAPI, engine: Engine, sandbox: LineSandbox
) -> None:
    sandbox.register_channel(TOKEN, basic_id="@nanweaving", display_name=OA_NAME)
    before = counts(engine)
    admin = WebClient(app).sign_in("admin")
    refused = admin.post("/accounts/connect/line", {"token": "not-a-token", "community": NAN})
    assert refused.status_code == 400
    assert "LINE ไม่ยอมรับโทเคนเข้าถึงช่องนี้" in refused.text
    assert "แท็บ Messaging API" in refused.text  # what to do
    assert "not-a-token" not in refused.text
    blank = admin.post("/accounts/connect/line", {"token": "  ", "community": NAN})
    assert blank.status_code == 400 and "วางโทเคนเข้าถึงช่อง" in blank.text
    # A revoked token (reissued in the console) is refused the same way.
    sandbox.revoke(TOKEN)
    assert admin.post("/accounts/connect/line", {"token": TOKEN}).status_code == 400
    assert counts(engine) == before
    editor = WebClient(app).sign_in("editor")
    assert editor.post("/accounts/connect/line", {"token": TOKEN}).status_code == 403
    admin.close()
    editor.close()


def test_a_pasted_token_is_checked_stored_encrypted_and_used_by_the_workers(
    app: FastAPI, engine: Engine, sandbox: LineSandbox
) -> None:
    channel = sandbox.register_channel(
        TOKEN, basic_id="@nanweaving", display_name=OA_NAME, friends=12, quota=500
    )
    before = counts(engine)
    admin = WebClient(app).sign_in("admin")
    page = admin.get("/accounts/connect")
    assert page.status_code == 200 and "เชื่อมต่อบัญชีทางการ LINE" in page.text
    done = admin.post(
        "/accounts/connect/line", {"token": TOKEN, "community": NAN}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    shown = admin.get("/accounts/connect")
    assert OA_NAME in shown.text and "@nanweaving" in shown.text
    assert TOKEN not in shown.text
    with session_scope(engine) as session:
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.external_id == "@nanweaving")
        ).one()
        community = session.get(Community, account.community_id)
        assert community is not None and community.slug == NAN
        assert (account.external_id, account.display_name) == ("@nanweaving", OA_NAME)
        row = session.scalars(
            select(AccountToken).where(AccountToken.account_id == account.id)
        ).one()
        assert row.kind == TokenKind.LINE_CHANNEL and TOKEN not in row.access_ciphertext
        stored = load_tokens(session=session, account_id=account.id)
        assert stored is not None and stored.access_token.get_secret_value() == TOKEN
        account_id, slug = account.id, account.slug

    # The token is reissued: pasting the new one updates the same account, now programme-wide.
    sandbox.revoke(TOKEN)
    sandbox.register_channel(
        OTHER_TOKEN,
        basic_id="@nanweaving",
        user_id=channel.user_id,
        display_name=OA_NAME,
        friends=12,
    )
    again = admin.post("/accounts/connect/line", {"token": OTHER_TOKEN}, follow_redirects=False)
    assert again.status_code == 303
    assert counts(engine) == (before[0] + 1, before[1] + 1)

    # A worker builds the account from the store and broadcasts with the new token.
    from tasks import wiring

    account = wiring.account_of(
        account_id=account_id,
        kind="line",
        external_id="@nanweaving",
        display_name=OA_NAME,
        secret_name=None,
        engine=engine,
    )
    adapter = wiring.adapter("line")
    assert isinstance(adapter, LineAdapter)
    adapter.check_account(account)
    receipt = adapter.publish(
        OutgoingPost(marker=f"post-{slug}-0001", account=account, content={"text": "สวัสดี"})
    )
    assert receipt.external_id
    assert len(sandbox.accepted(kind="broadcast")) == 1
    with session_scope(engine) as session:
        assert session.get(ChannelAccount, account_id).community_id is None  # type: ignore[union-attr]
    admin.close()
