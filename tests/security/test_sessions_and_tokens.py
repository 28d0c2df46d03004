"""Issue #12, item 6: sessions and tokens outlived their purpose.  A cookie copied before
sign-out still worked after it; API tokens never expired, could not be revoked and survived a
password change.

Now a session is a server-side record the signed cookie only names (sign-out, a password
change and switching the user off end it); a token expires (90 days unless asked otherwise),
is revoked by `marketing users token-revoke` or on /account/tokens, and by a password
change.  Time is the app's injected clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from marketing.cli import main
from marketing.db import session_scope
from marketing.models import ApiToken, AuditLog, Role, WebSession
from marketing.web import create_app
from marketing.web.app import SESSION_COOKIE
from marketing.web.staff import find_user, issue_token
from tests.security.support import MovableClock
from tests.support.web import PASSWORD, WebClient, add_user

NEW_PASSWORD = "a-brand-new-password"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def app(engine: Engine, clock: MovableClock) -> FastAPI:
    add_user(engine, "somchai", Role.EDITOR)
    add_user(engine, "malee", Role.VIEWER)
    add_user(engine, "admin", Role.ADMIN)
    return create_app(engine=engine, clock=clock)


@pytest.fixture
def somchai(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("somchai")
    yield client
    client.close()


def token(engine: Engine, clock: MovableClock, username: str = "somchai", days: int = 90) -> str:
    with session_scope(engine) as session:
        user = find_user(session=session, username=username)
        return issue_token(session=session, user=user, days=days, now=clock())


def me(app: FastAPI, bearer: str) -> int:
    with TestClient(app) as client:
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {bearer}"})
        return answer.status_code


def with_cookie(app: FastAPI, cookie: str) -> TestClient:
    """Another browser that was handed a copy of a session cookie."""
    return TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: cookie})


def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    # In English: these tests read the command's sentences (Thai is the default).
    result = CliRunner().invoke(
        main, ["--language", "en", *args], input=stdin, catch_exceptions=False
    )
    return result.exit_code, result.output


def test_a_cookie_copied_before_sign_out_is_refused_after_it(
    app: FastAPI, somchai: WebClient
) -> None:
    copied = somchai.http.cookies[SESSION_COOKIE]
    thief = with_cookie(app, copied)
    assert thief.get("/").status_code == 200  # the copy works while the session lasts
    assert somchai.post("/logout").status_code == 303
    assert thief.get("/").status_code == 303  # to the sign-in page
    assert thief.get("/api/v1/me").status_code == 401
    thief.close()


def test_the_database_keeps_only_the_hash_of_a_session_id(
    engine: Engine, somchai: WebClient
) -> None:
    with session_scope(engine) as session:
        row = session.scalars(select(WebSession)).one()
        assert row.ended_at is None and row.address == "testclient"
        assert row.user_agent  # a summary of the browser, for the person and the audit
        cookie = somchai.http.cookies[SESSION_COOKIE]
        assert row.token_hash not in cookie
    # The person sees where they are signed in.
    page = somchai.get("/account").text
    assert "อุปกรณ์ที่เข้าสู่ระบบอยู่" in page and "testclient" in page


def test_a_password_change_on_the_web_ends_other_sessions_and_revokes_tokens(
    app: FastAPI, engine: Engine, clock: MovableClock, somchai: WebClient
) -> None:
    elsewhere = WebClient(app).sign_in("somchai")
    copied = somchai.http.cookies[SESSION_COOKIE]
    bearer = token(engine, clock)
    assert me(app, bearer) == 200
    answer = somchai.post("/account/password", {"current": PASSWORD, "new": NEW_PASSWORD})
    assert answer.status_code == 303
    assert somchai.get("/").status_code == 200  # this browser goes on with a new session
    assert elsewhere.get("/").status_code == 303
    thief = with_cookie(app, copied)  # this browser's cookie from before the change
    assert thief.get("/").status_code == 303
    assert me(app, bearer) == 401
    with session_scope(engine) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "user.password")).one()
        assert entry.detail == {"sessions_ended": 2, "tokens_revoked": 1}
    elsewhere.close()
    thief.close()


def test_a_password_set_from_the_command_line_ends_sessions_and_revokes_tokens(
    app: FastAPI, engine: Engine, clock: MovableClock, somchai: WebClient
) -> None:
    bearer = token(engine, clock)
    code, out = cli("users", "password", "somchai", "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert code == 0 and "1 session(s) ended, 1 token(s) revoked" in out
    assert somchai.get("/").status_code == 303
    assert me(app, bearer) == 401
    assert WebClient(app).sign_in("somchai", NEW_PASSWORD).get("/").status_code == 200


def test_an_expired_token_is_refused(app: FastAPI, engine: Engine, clock: MovableClock) -> None:
    default, short = token(engine, clock), token(engine, clock, days=1)
    clock.advance(days=1, seconds=-1)
    assert me(app, short) == 200
    clock.advance(seconds=1)
    assert me(app, short) == 401
    clock.advance(days=88, seconds=86399)
    assert me(app, default) == 200
    clock.advance(seconds=1)
    assert me(app, default) == 401  # 90 days unless asked otherwise


def test_a_token_life_is_bounded_and_said_on_the_command_line(app: FastAPI, engine: Engine) -> None:
    code, out = cli("users", "token", "somchai", "--days", "0")
    assert code == 2 and "--days" in out
    code, out = cli("users", "token", "somchai", "--days", "400")
    assert code == 2
    code, value = cli("users", "token", "somchai", "--days", "30", "--name", "nightly export")
    assert code == 0 and value.strip().startswith("mkt_")
    with session_scope(engine) as session:
        row = session.scalars(select(ApiToken)).one()
        assert (row.expires_at - row.created_at).days == 30
    code, out = cli("users", "tokens", "somchai")
    assert code == 0 and "nightly" in out and "in use" in out


def test_a_revoked_token_is_refused(app: FastAPI, engine: Engine, clock: MovableClock) -> None:
    first, second, third = token(engine, clock), token(engine, clock), token(engine, clock)
    with session_scope(engine) as session:
        ids = session.scalars(select(ApiToken.id).order_by(ApiToken.id)).all()
    code, out = cli("users", "token-revoke", str(ids[0]))
    assert code == 0 and "1 token(s) revoked" in out
    assert me(app, first) == 401 and me(app, second) == 200
    code, out = cli("users", "token-revoke", "--user", "somchai")
    assert code == 0 and "2 token(s) revoked" in out
    assert me(app, second) == 401 and me(app, third) == 401
    assert cli("users", "token-revoke")[0] == 2  # says what to give
    assert cli("users", "token-revoke", "9999")[0] == 2
    with session_scope(engine) as session:
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.action == "user.token_revoke")
        ).all()
    assert len(actions) == 2


def test_people_revoke_their_own_tokens_on_the_page_and_only_an_admin_others(
    app: FastAPI, engine: Engine, clock: MovableClock, somchai: WebClient
) -> None:
    mine, hers = token(engine, clock), token(engine, clock, "malee")
    with session_scope(engine) as session:
        ids = dict(session.execute(select(ApiToken.user_id, ApiToken.id)).all())
        mine_id = ids[find_user(session=session, username="somchai").id]
        hers_id = ids[find_user(session=session, username="malee").id]
    page = somchai.get("/account/tokens").text
    assert f"/account/tokens/{mine_id}/revoke" in page
    assert f"/account/tokens/{hers_id}/revoke" not in page
    # Someone else's token: refused as if it did not exist, and left alone.
    assert somchai.post(f"/account/tokens/{hers_id}/revoke").status_code == 303
    assert me(app, hers) == 200
    assert somchai.post(f"/account/tokens/{mine_id}/revoke").status_code == 303
    assert me(app, mine) == 401
    assert "ยกเลิกแล้ว" in somchai.get("/account/tokens").text  # revoked
    admin = WebClient(app).sign_in("admin")
    assert f"/account/tokens/{hers_id}/revoke" in admin.get("/account/tokens").text
    assert admin.post(f"/account/tokens/{hers_id}/revoke").status_code == 303
    assert me(app, hers) == 401
    admin.close()


def test_switching_a_user_off_ends_sessions_and_tokens_for_good(
    app: FastAPI, engine: Engine, clock: MovableClock, somchai: WebClient
) -> None:
    bearer = token(engine, clock)
    admin = WebClient(app).sign_in("admin")
    assert admin.post("/admin/users/somchai", {"role": "editor"}).status_code == 303  # off
    assert somchai.get("/").status_code == 303
    assert me(app, bearer) == 401
    # Switched on again: the old session and token stay dead.
    assert (
        admin.post("/admin/users/somchai", {"role": "editor", "active": "true"}).status_code == 303
    )
    assert somchai.get("/").status_code == 303
    assert me(app, bearer) == 401
    admin.close()


def test_a_session_ends_after_twelve_hours(
    app: FastAPI, engine: Engine, clock: MovableClock, somchai: WebClient
) -> None:
    copied = somchai.http.cookies[SESSION_COOKIE]
    clock.advance(hours=11, minutes=59)
    assert somchai.get("/").status_code == 200
    clock.advance(minutes=1)
    thief = with_cookie(app, copied)  # the server decides, not the cookie's own max-age
    assert thief.get("/").status_code == 303
    with session_scope(engine) as session:
        row = session.scalars(select(WebSession)).one()
        assert row.end_reason == "expired"
        assert row.last_seen_at == clock.now.replace(hour=7, minute=59)  # noted while it lived
    thief.close()
