"""What guards connecting accounts (#13): only admins start it, the provider's answer counts
only in the session that started it, a user token is never taken for a Page token, and the
sandboxes hold the OAuth rules the flows rely on (a code works once, PKCE is checked, a
revoked grant refreshes nothing, access tokens die after an hour)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from fastapi import FastAPI
from sqlalchemy import Engine, func, select

from channels.sandbox.graph import GraphSandbox
from channels.sandbox.youtube import YouTubeSandbox
from marketing.db import session_scope
from marketing.models import AccountToken, ChannelAccount, Role
from marketing.settings import Settings, reset_settings
from marketing.web import create_app
from marketing.web.connect import ConnectRefused, _check_page_token
from tests.support.web import WebClient, add_user

APP_ID, APP_SECRET = "2468013579", "guard-app-secret"
PAGE = "7001"
CLIENT, SECRET = "guard.apps.googleusercontent.com", "guard-client-secret"
CHANNEL = "UCguardChannel0000000001"
SCOPE = "https://www.googleapis.com/auth/youtube.upload"


@pytest.fixture
def app(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    for name, value in {
        "FACEBOOK_APP_ID": APP_ID,
        "FACEBOOK_APP_SECRET": APP_SECRET,
        "FACEBOOK_DIALOG_URL": "http://127.0.0.1:9",  # never reached: the test stops first
        "GRAPH_API_URL": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(f"MARKETING_{name}", value)
    reset_settings()
    add_user(engine, "admin", Role.ADMIN)
    add_user(engine, "other", Role.ADMIN)
    add_user(engine, "editor", Role.EDITOR)
    return create_app(engine=engine)


def test_a_callback_this_session_did_not_start_is_refused_and_stores_nothing(
    app: FastAPI, engine: Engine
) -> None:
    admin, other = WebClient(app).sign_in("admin"), WebClient(app).sign_in("other")
    started = admin.post("/accounts/connect/facebook")
    assert started.status_code == 303
    dialog = urlsplit(started.headers["location"])
    assert dialog.path == "/v25.0/dialog/oauth"
    query = parse_qs(dialog.query)
    state = query["state"][0]
    assert query["client_id"] == [APP_ID] and "pages_manage_posts" in query["scope"][0]
    # Someone else's browser brings back the answer: refused.
    stolen = other.get(f"/accounts/connect/facebook/callback?code=abc&state={state}")
    assert stolen.status_code == 403 and "ไม่ได้มาจากการเชื่อมต่อที่เริ่มจากหน้านี้" in stolen.text
    # A forged state in the right browser: refused, and the flow is spent.
    assert admin.get("/accounts/connect/facebook/callback?code=a&state=x").status_code == 403
    spent = admin.get(f"/accounts/connect/facebook/callback?code=abc&state={state}")
    assert spent.status_code == 403
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(AccountToken)) == 0
        assert session.scalar(select(func.count()).select_from(ChannelAccount)) == 0
    admin.close()
    other.close()


def test_only_admins_connect_accounts(app: FastAPI) -> None:
    editor = WebClient(app).sign_in("editor")
    assert editor.get("/accounts/connect").status_code == 403
    assert editor.post("/accounts/connect/facebook").status_code == 403
    assert editor.get("/accounts/connect/pick").status_code == 403
    editor.close()


@pytest.fixture
def graph() -> Iterator[GraphSandbox]:
    sandbox = GraphSandbox().start()
    sandbox.register_app(APP_ID, APP_SECRET)
    sandbox.register_page(PAGE, "preset", "เพจทดสอบ")
    sandbox.register_user("u1", "ผู้ดูแลเพจ", [PAGE])
    try:
        yield sandbox
    finally:
        sandbox.stop()


def facebook_code(graph: GraphSandbox) -> str:
    answer = requests.post(
        f"{graph.url}/v25.0/dialog/oauth",
        data={
            "client_id": APP_ID,
            "redirect_uri": "http://127.0.0.1/cb",
            "scope": "pages_show_list,pages_manage_posts",
            "state": "s",
            "decision": "allow",
            "page": PAGE,
            "grant": ["pages_show_list", "pages_manage_posts"],
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


def test_a_facebook_code_works_once_and_a_user_token_is_never_taken_for_a_page_token(
    graph: GraphSandbox,
) -> None:
    code = facebook_code(graph)
    exchange = {
        "client_id": APP_ID,
        "client_secret": APP_SECRET,
        "redirect_uri": "http://127.0.0.1/cb",
        "code": code,
    }
    url = f"{graph.url}/v25.0/oauth/access_token"
    first = requests.get(url, params=exchange, timeout=10).json()
    assert first["access_token"].startswith("EAA") and first["expires_in"] < 3 * 3600
    again = requests.get(url, params=exchange, timeout=10)
    assert again.status_code == 400
    assert again.json()["error"]["message"] == "This authorization code has been used."
    long_lived = requests.get(
        url,
        params={
            "grant_type": "fb_exchange_token",
            "client_id": APP_ID,
            "client_secret": APP_SECRET,
            "fb_exchange_token": first["access_token"],
        },
        timeout=10,
    ).json()
    assert long_lived["expires_in"] > 59 * 86400
    user_token = long_lived["access_token"]
    pages = requests.get(
        f"{graph.url}/v25.0/me/accounts", params={"access_token": user_token}, timeout=10
    ).json()["data"]
    assert [p["id"] for p in pages] == [PAGE]
    page_token = pages[0]["access_token"]
    assert page_token.startswith("EAA") and page_token != user_token

    settings = Settings(
        graph_api_url=graph.url,
        facebook_app_id=APP_ID,
        facebook_app_secret=APP_SECRET,  # type: ignore[arg-type]
    )
    assert _check_page_token(settings, PAGE, page_token)["type"] == "PAGE"
    with pytest.raises(ConnectRefused):
        _check_page_token(settings, PAGE, user_token)  # the user token in its place
    with pytest.raises(ConnectRefused):
        _check_page_token(settings, "7999", page_token)  # another Page's
    graph.deauthorize("u1")
    with pytest.raises(ConnectRefused):
        _check_page_token(settings, PAGE, page_token)


@pytest.fixture
def youtube() -> Iterator[YouTubeSandbox]:
    sandbox = YouTubeSandbox().start()
    sandbox.register_client(CLIENT, SECRET)
    sandbox.register_channel(CHANNEL, "preset", title="ช่องทดสอบ")
    try:
        yield sandbox
    finally:
        sandbox.stop()


def google_code(youtube: YouTubeSandbox, verifier: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    answer = requests.post(
        f"{youtube.url}/o/oauth2/approve",
        data={
            "client_id": CLIENT,
            "redirect_uri": "http://127.0.0.1/cb",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "access_type": "offline",
            "channel_id": CHANNEL,
            "scope": SCOPE,
            "decision": "allow",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


def test_google_checks_pkce_expires_access_tokens_and_refuses_a_revoked_grant(
    youtube: YouTubeSandbox,
) -> None:
    token_url = f"{youtube.url}/token"
    base = {"client_id": CLIENT, "client_secret": SECRET, "redirect_uri": "http://127.0.0.1/cb"}
    wrong = requests.post(
        token_url,
        data={
            **base,
            "grant_type": "authorization_code",
            "code": google_code(youtube, "v" * 50),
            "code_verifier": "w" * 50,
        },
        timeout=10,
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    tokens = requests.post(
        token_url,
        data={
            **base,
            "grant_type": "authorization_code",
            "code": google_code(youtube, "v" * 50),
            "code_verifier": "v" * 50,
        },
        timeout=10,
    ).json()
    assert tokens["access_token"].startswith("ya29.") and tokens["refresh_token"].startswith("1//")
    assert tokens["expires_in"] == 3599 and tokens["scope"] == SCOPE

    def channels(access: str) -> int:
        return requests.get(
            f"{youtube.url}/youtube/v3/channels",
            params={"part": "id", "mine": "true"},
            headers={"Authorization": f"Bearer {access}"},
            timeout=10,
        ).status_code

    # Upload scope only: reading the channel is refused for want of a scope.
    assert channels(tokens["access_token"]) == 403
    youtube.clock.advance(timedelta(hours=1))
    assert channels(tokens["access_token"]) == 401  # an hour on the sandbox clock
    refresh = {**base, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    renewed = requests.post(token_url, data=refresh, timeout=10).json()
    assert renewed["access_token"] != tokens["access_token"] and "refresh_token" not in renewed
    assert youtube.revoke_grant(CHANNEL) == 1
    refused = requests.post(token_url, data=refresh, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
