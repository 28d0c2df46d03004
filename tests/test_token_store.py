"""The encrypted token store (#13): tokens are Fernet ciphertext in the database, readable
under any configured key, rotated under the newest; environment and secrets-file accounts
keep working and a command moves their secrets into the store."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, select, text

from marketing.cli import main
from marketing.db import session_scope
from marketing.models import AccountToken, ChannelAccount, ChannelKind, TokenKind
from marketing.publishing import Claim
from marketing.settings import (
    DevelopmentSecretRefused,
    Settings,
    TokenKeysInvalid,
    TokenUnreadable,
    reset_settings,
)
from marketing.token_store import (
    load_tokens,
    record_refresh,
    store_tokens,
    token_cipher,
)

PAGE_TOKEN = "EAAGsandboxPageTokenForTheStoreTest0123456789"
ACCESS = "ya29.a0AfB_sandboxAccessTokenForTheStoreTest"
REFRESH = "1//0gSandboxRefreshTokenForTheStoreTest"


def keys(monkeypatch: pytest.MonkeyPatch, *values: bytes) -> Settings:
    monkeypatch.setenv("MARKETING_TOKEN_KEYS", ",".join(v.decode() for v in values))
    reset_settings()
    return Settings()


def account(engine: Engine, slug: str, kind: ChannelKind, secret_name: str | None = None) -> int:
    with session_scope(engine) as session:
        row = ChannelAccount(
            slug=slug,
            kind=kind,
            external_id=f"ext-{slug}",
            display_name=slug,
            secret_name=secret_name,
        )
        session.add(row)
        session.flush()
        return row.id


def raw_rows(engine: Engine) -> str:
    """Every value of the token table, as the database holds it."""
    with engine.connect() as conn:
        return repr(conn.execute(text("SELECT * FROM account_token")).all())


def test_tokens_are_ciphertext_at_rest_and_a_refresh_without_refresh_token_keeps_it(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys(monkeypatch, Fernet.generate_key())
    account_id = account(engine, "yt", ChannelKind.YOUTUBE)
    expires = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with session_scope(engine) as session:
        row = session.get(ChannelAccount, account_id)
        assert row is not None
        store_tokens(
            session=session,
            account=row,
            kind=TokenKind.GOOGLE,
            access_token=SecretStr(ACCESS),
            refresh_token=SecretStr(REFRESH),
            access_expires_at=expires,
            scopes=["https://www.googleapis.com/auth/youtube.upload"],
        )
    stored_raw = raw_rows(engine)
    assert ACCESS not in stored_raw and REFRESH not in stored_raw
    assert "ya29." not in stored_raw and "1//" not in stored_raw
    with session_scope(engine) as session:
        found = load_tokens(session=session, account_id=account_id)
    assert found is not None
    assert found.access_token.get_secret_value() == ACCESS
    assert found.refresh_token is not None and found.refresh_token.get_secret_value() == REFRESH
    assert found.access_expires_at == expires
    assert ACCESS not in repr(found) and REFRESH not in repr(found)

    # Google's refresh answer may carry no refresh token: the stored one stays.
    with session_scope(engine) as session:
        record_refresh(
            session=session,
            account_id=account_id,
            access_token=SecretStr("ya29.renewed"),
            refresh_token=None,
            access_expires_at=expires + timedelta(hours=1),
        )
    with session_scope(engine) as session:
        found = load_tokens(session=session, account_id=account_id)
        refreshed_at = session.scalars(select(AccountToken.refreshed_at)).one()
    assert found is not None and found.access_token.get_secret_value() == "ya29.renewed"
    assert found.refresh_token is not None and found.refresh_token.get_secret_value() == REFRESH
    assert refreshed_at is not None


def test_rotation_re_encrypts_under_the_new_key_and_the_old_key_alone_reads_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    keys(monkeypatch, old)
    account_id = account(engine, "page", ChannelKind.FACEBOOK)
    with session_scope(engine) as session:
        row = session.get(ChannelAccount, account_id)
        assert row is not None
        store_tokens(
            session=session,
            account=row,
            kind=TokenKind.FACEBOOK_PAGE,
            access_token=SecretStr(PAGE_TOKEN),
        )
    before = raw_rows(engine)
    keys(monkeypatch, new, old)
    result = CliRunner().invoke(main, ["accounts", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "1 account(s) re-encrypted" in result.output
    assert raw_rows(engine) != before
    keys(monkeypatch, new)  # the old key removed: the service still reads the token
    with session_scope(engine) as session:
        found = load_tokens(session=session, account_id=account_id)
    assert found is not None and found.access_token.get_secret_value() == PAGE_TOKEN
    keys(monkeypatch, old)  # the old key alone reads nothing any more
    with session_scope(engine) as session, pytest.raises(TokenUnreadable) as unreadable:
        load_tokens(session=session, account_id=account_id)
    assert PAGE_TOKEN not in str(unreadable.value)
    result = CliRunner().invoke(main, ["accounts", "rotate-key"])
    assert result.exit_code == 2 and "none of the keys" in result.output


def test_import_secrets_moves_env_tokens_into_the_store_and_publishing_reads_the_store(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import wiring

    keys(monkeypatch, Fernet.generate_key())
    monkeypatch.setenv("MARKETING_SECRET_FB_NAN", PAGE_TOKEN)
    env_id = account(engine, "fb-nan", ChannelKind.FACEBOOK, "FB_NAN")
    missing_id = account(engine, "fb-gone", ChannelKind.FACEBOOK, "FB_GONE")
    email_id = account(engine, "mail", ChannelKind.EMAIL, "SMTP_X")

    def claim(account_id: int, secret: str | None) -> Claim:
        return Claim(
            post_id=1,
            attempt_id=1,
            attempt_number=1,
            channel=ChannelKind.FACEBOOK,
            marker="m",
            content={},
            account_id=account_id,
            account_external_id="ext",
            account_display_name="Page",
            account_secret_name=secret,
            community_id=1,
            started_at=datetime.now(UTC),
        )

    # Before: the environment variable serves the account.
    found = wiring.account_for(claim(env_id, "FB_NAN"), engine=engine)
    assert found.token is not None and found.token.get_secret_value() == PAGE_TOKEN

    result = CliRunner().invoke(main, ["accounts", "import-secrets"])
    assert result.exit_code == 0, result.output
    assert "fb-nan: token moved" in result.output and "1 account(s) moved" in result.output
    assert PAGE_TOKEN not in result.output
    monkeypatch.delenv("MARKETING_SECRET_FB_NAN")
    with session_scope(engine) as session:
        names = {a.id: a.secret_name for a in session.scalars(select(ChannelAccount))}
    assert names == {env_id: None, missing_id: "FB_GONE", email_id: "SMTP_X"}
    assert PAGE_TOKEN not in raw_rows(engine) and "EAA" not in raw_rows(engine)

    found = wiring.account_for(claim(env_id, None), engine=engine)
    assert found.token is not None and found.token.get_secret_value() == PAGE_TOKEN
    assert found.grant is None  # a Page token has nothing to refresh with
    listed = CliRunner().invoke(main, ["accounts", "list"], env={"COLUMNS": "60"})
    assert listed.exit_code == 0, listed.output
    # At 60 columns each account is a card of its own (blank lines between them).
    entry = next(block for block in re.split(r"\n\s*\n", listed.output) if "fb-nan" in block)
    assert "fb-gone" not in entry
    assert "(ที่เก็บแบบเข้ารหัส)" in entry and PAGE_TOKEN not in listed.output  # Thai by default


def test_the_development_key_is_refused_off_this_machine_and_bad_keys_are_named_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_cipher(Settings(public_base_url="http://127.0.0.1:8000"))
    with pytest.raises(DevelopmentSecretRefused) as refused:
        token_cipher(Settings(public_base_url="https://community.example.org"))
    assert refused.value.variables == ["MARKETING_TOKEN_KEYS"]
    # Still among the keys (kept for reading) counts too.
    mixed = f"{Fernet.generate_key().decode()},{Settings().token_keys.get_secret_value()}"
    with pytest.raises(DevelopmentSecretRefused):
        token_cipher(
            Settings(public_base_url="https://community.example.org", token_keys=mixed)  # type: ignore[arg-type]
        )
    with pytest.raises(TokenKeysInvalid, match="key 2 of MARKETING_TOKEN_KEYS") as invalid:
        token_cipher(Settings(token_keys=f"{Fernet.generate_key().decode()},not-a-key-secret"))  # type: ignore[arg-type]
    assert "not-a-key-secret" not in str(invalid.value)


def test_metrics_are_collected_with_the_stored_token(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Page served by the store (no secret name) has its engagement collected with the
    stored token, and stays healthy: collection reads the store as publishing does (#13)."""
    from channels.sandbox.graph import GraphSandbox
    from marketing.models import AccountHealth, MetricSnapshot, PostState
    from tasks import wiring
    from tasks.metrics import collect_metrics
    from tests.support.web import import_sample
    from tests.test_web_connect import add_post, publish_due

    import_sample(engine)
    with GraphSandbox() as graph:
        monkeypatch.setenv("MARKETING_GRAPH_API_URL", graph.url)
        keys(monkeypatch, Fernet.generate_key())
        wiring.reset()
        with session_scope(engine) as session:
            page = session.scalars(
                select(ChannelAccount).where(
                    ChannelAccount.kind == ChannelKind.FACEBOOK,
                    ChannelAccount.community_id.is_not(None),
                )
            ).first()
            assert page is not None
            slug, page_id = page.slug, page.external_id
            store_tokens(
                session=session,
                account=page,
                kind=TokenKind.FACEBOOK_PAGE,
                access_token=SecretStr(PAGE_TOKEN),
            )
            page.secret_name = None
        graph.register_page(page_id, PAGE_TOKEN, "ผ้าทอ")
        post_id = add_post(engine, slug, "store-metrics", {"message": "ผ้าทอน่าน"})
        try:
            assert publish_due(engine) == {post_id: PostState.PUBLISHED}
            graph.clock.advance(timedelta(hours=6))
            assert collect_metrics(force=True) == {"collected": 1, "accounts_failed": 0}
        finally:
            wiring.reset()
    with session_scope(engine) as session:
        health = session.scalars(
            select(ChannelAccount.health).where(ChannelAccount.slug == slug)
        ).one()
        snapshots = session.scalars(
            select(MetricSnapshot).where(MetricSnapshot.post_id == post_id)
        ).all()
    assert health == AccountHealth.OK
    assert len(snapshots) == 1 and (snapshots[0].views or 0) > 0
