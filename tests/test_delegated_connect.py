"""Delegated reconnect wired to the connect flows (#13): a used reconnect link lets a visitor
without a staff account through the Facebook or Google flow for that one account -- and
nowhere else.  Driven through the web app (TestClient) against the Graph and YouTube
sandboxes' own consent endpoints, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from channels.sandbox.graph import GraphSandbox
from channels.sandbox.youtube import YouTubeSandbox
from marketing.db import session_scope
from marketing.models import (
    AccountHealth,
    AccountToken,
    AuditLog,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Post,
    PostState,
    Role,
)
from marketing.settings import reset_settings
from marketing.token_store import load_tokens
from marketing.web import create_app
from tests.support.web import WebClient, add_user, import_sample

APP_ID, APP_SECRET = "8642097531", "delegated-app-secret"
CLIENT_ID, CLIENT_SECRET = "delegated.apps.googleusercontent.com", "delegated-client-secret"
PAGE_MINE, PAGE_OTHER = "5550001", "5550002"
CHANNEL_MINE, CHANNEL_OTHER = "UCdelegatedMine000000001", "UCdelegatedOther00000002"
BASE = "http://127.0.0.1"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ONLY_THIS = "ใช้ได้กับบัญชี"


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GraphSandbox, YouTubeSandbox]]:
    graph = GraphSandbox().start()
    youtube = YouTubeSandbox(seed=5).start()
    graph.register_app(APP_ID, APP_SECRET)
    graph.register_page(PAGE_MINE, "unused-preset-mine", "เพจของเจ้าของ")
    graph.register_page(PAGE_OTHER, "unused-preset-other", "เพจอื่น")
    graph.register_user("owner", "เจ้าของเพจ", [PAGE_MINE, PAGE_OTHER])
    youtube.register_client(CLIENT_ID, CLIENT_SECRET)
    youtube.register_channel(CHANNEL_MINE, "unused-preset-mine", title="ช่องของเจ้าของ")
    youtube.register_channel(CHANNEL_OTHER, "unused-preset-other", title="ช่องอื่น")
    for name, value in {
        "PUBLIC_BASE_URL": BASE,
        "GRAPH_API_URL": graph.url,
        "FACEBOOK_DIALOG_URL": graph.url,
        "FACEBOOK_APP_ID": APP_ID,
        "FACEBOOK_APP_SECRET": APP_SECRET,
        "GOOGLE_CLIENT_ID": CLIENT_ID,
        "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "GOOGLE_AUTH_URI": youtube.url + "/o/oauth2/auth",
        "GOOGLE_TOKEN_URI": youtube.url + "/token",
        "YOUTUBE_ROOT_URL": youtube.url + "/",
        "TOKEN_KEYS": Fernet.generate_key().decode(),
        "GOOGLE_CONSENT_TESTING": "true",
    }.items():
        monkeypatch.setenv(f"MARKETING_{name}", value)
    reset_settings()
    try:
        yield graph, youtube
    finally:
        graph.stop()
        youtube.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(engine: Engine, sandboxes: tuple[GraphSandbox, YouTubeSandbox], clock: Clock) -> FastAPI:
    import_sample(engine)
    add_user(engine, "admin", Role.ADMIN)
    return create_app(engine=engine, clock=clock)


def broken_account(engine: Engine, kind: ChannelKind, external_id: str) -> tuple[str, int]:
    """The sample's first ``kind`` account, made to stand for ``external_id`` and broken, with
    one post waiting for it; its slug and the post's id."""
    with session_scope(engine) as session:
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.kind == kind).order_by(ChannelAccount.id)
        ).first()
        assert account is not None and account.community_id is not None
        account.external_id = external_id
        account.health = AccountHealth.NEEDS_RECONNECT
        campaign = Campaign(
            slug="waiting",
            name="โพสต์ที่รอ",
            source_text="-",
            source_hash="-",
            status=CampaignStatus.APPROVED,
        )
        post = Post(
            campaign=campaign,
            community_id=account.community_id,
            channel_account_id=account.id,
            channel=kind,
            idempotency_key="waiting-1",
            occurrence_key="waiting-1",
            scheduled_at=NOW,
            next_try_at=NOW,
            content={"message": "สวัสดี"},
            content_hash="waiting-1",
            state=PostState.NEEDS_RECONNECT,
        )
        session.add_all([campaign, post])
        session.flush()
        return account.slug, post.id


def other_account(engine: Engine, kind: ChannelKind, slug: str) -> str:
    """Another account of the same kind (a slug the visitor must not reach)."""
    with session_scope(engine) as session:
        account = session.scalars(select(ChannelAccount).where(ChannelAccount.slug == slug)).one()
        other = ChannelAccount(
            slug=f"{slug}-other",
            kind=kind,
            external_id="someone-else",
            display_name="บัญชีอื่น",
            community_id=account.community_id,
            health=AccountHealth.NEEDS_RECONNECT,
        )
        session.add(other)
        return other.slug


def owner_with_grant(app: FastAPI, slug: str) -> tuple[TestClient, str]:
    """A fresh browser (no staff account) that used a link for ``slug``; where it was sent."""
    admin = WebClient(app).sign_in("admin")
    page = admin.post(f"/accounts/{slug}/reconnect-link")
    found = re.search(r'value="http[^"]+/reconnect/([^"]+)"', page.text)
    assert found, page.text[:500]
    admin.close()
    owner = TestClient(app, base_url=BASE, follow_redirects=False)
    opened = owner.get(f"/reconnect/{found[1]}")
    csrf = CSRF.search(opened.text)
    assert csrf
    started = owner.post(f"/reconnect/{found[1]}", data={"csrf_token": csrf[1]})
    assert started.status_code == 303, started.text[:500]
    owner.headers["x-test-csrf"] = csrf[1]
    return owner, started.headers["location"]


def facebook_consent(graph: GraphSandbox, dialog: str, pages: list[str]) -> str:
    """Tick ``pages`` and every permission on the sandbox's Login dialog; the callback path."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(dialog).query).items()}
    answer = requests.post(
        dialog,
        data={
            "page": pages,
            "grant": query["scope"].replace(",", " ").split(),
            "decision": "allow",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:300]
    back = urlsplit(answer.headers["location"])
    return f"{back.path}?{back.query}"


def google_consent(youtube: YouTubeSandbox, consent: str, channel: str) -> str:
    """Choose ``channel`` and allow on the sandbox's Google consent; the callback path."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(consent).query).items()}
    answer = requests.post(
        f"{youtube.url}/o/oauth2/approve",
        data={**query, "scope": query["scope"].split(), "channel_id": channel, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:300]
    back = urlsplit(answer.headers["location"])
    return f"{back.path}?{back.query}"


def actions(engine: Engine) -> list[tuple[str, str, Any]]:
    with session_scope(engine) as session:
        return [
            (a.actor, a.action, dict(a.detail))
            for a in session.scalars(select(AuditLog).order_by(AuditLog.id))
        ]


def test_the_link_reconnects_its_facebook_page_only_and_refuses_every_other_step(
    app: FastAPI, engine: Engine, sandboxes: tuple[GraphSandbox, YouTubeSandbox]
) -> None:
    graph, _youtube = sandboxes
    slug, post_id = broken_account(engine, ChannelKind.FACEBOOK, PAGE_MINE)
    other = other_account(engine, ChannelKind.FACEBOOK, slug)
    owner, target = owner_with_grant(app, slug)
    assert target == "/accounts/connect/facebook/delegated"
    csrf = owner.headers.pop("x-test-csrf")

    # Nothing but that one account's flow: not the staff pages, not the picker, not the
    # accounts page, not an admin's action, not another account, not another channel.
    for path in ("/accounts/connect", "/accounts/connect/pick", "/communities", "/"):
        answer = owner.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    made = owner.post(f"/accounts/{other}/reconnect-link", data={"csrf_token": csrf})
    assert made.status_code == 303 and made.headers["location"].startswith("/login")
    picked = owner.post("/accounts/connect/pick", data={"csrf_token": csrf})
    assert picked.status_code == 303 and picked.headers["location"].startswith("/login")
    another = owner.post("/accounts/connect/facebook", data={"csrf_token": csrf, "account": other})
    assert another.status_code == 403 and ONLY_THIS in another.text
    youtube = owner.post("/accounts/connect/youtube", data={"csrf_token": csrf})
    assert youtube.status_code == 403 and ONLY_THIS in youtube.text
    assert owner.get("/accounts/connect/youtube/delegated").status_code == 403
    assert owner.post("/accounts/connect/facebook").status_code == 403  # no CSRF token

    # Its own flow: both Pages ticked in the dialog, only the link's Page is stored.
    dialog = owner.get(target)
    assert dialog.status_code == 303 and dialog.headers["location"].startswith(graph.url)
    back = owner.get(facebook_consent(graph, dialog.headers["location"], [PAGE_MINE, PAGE_OTHER]))
    assert back.status_code == 200, back.text[:800]
    assert "เชื่อมต่อบัญชีใหม่แล้ว" in back.text and "เพจของเจ้าของ" not in back.text
    with session_scope(engine) as session:
        account = session.scalars(select(ChannelAccount).where(ChannelAccount.slug == slug)).one()
        assert account.health == AccountHealth.OK and account.secret_name is None
        tokens = load_tokens(session=session, account_id=account.id)
        assert tokens is not None and tokens.access_token.get_secret_value().startswith("EAA")
        assert session.scalar(select(func.count()).select_from(AccountToken)) == 1
        assert (
            session.scalars(
                select(ChannelAccount).where(ChannelAccount.external_id == PAGE_OTHER)
            ).first()
            is None
        )
        assert session.get(Post, post_id).state == PostState.SCHEDULED  # type: ignore[union-attr]
        still_broken = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == other)
        ).one()
        assert still_broken.health == AccountHealth.NEEDS_RECONNECT
    log = actions(engine)
    connected = [d for actor, a, d in log if a == "account.connected"]
    assert len(connected) == 1 and connected[0]["external_id"] == PAGE_MINE
    assert [actor for actor, a, _ in log if a == "account.connected"] == ["delegated link"]
    assert connected[0]["rescheduled"] == 1 and connected[0]["link_id"]
    assert len([a for _, a, _ in log if a == "account.delegated_refused"]) == 3

    # The grant ended with the flow: the same browser cannot start again.
    again = owner.get(target)
    assert again.status_code == 303 and again.headers["location"].startswith("/login")
    owner.close()


def test_a_dialog_without_the_links_page_stores_nothing(
    app: FastAPI, engine: Engine, sandboxes: tuple[GraphSandbox, YouTubeSandbox]
) -> None:
    graph, _youtube = sandboxes
    slug, post_id = broken_account(engine, ChannelKind.FACEBOOK, PAGE_MINE)
    owner, target = owner_with_grant(app, slug)
    dialog = owner.get(target).headers["location"]
    back = owner.get(facebook_consent(graph, dialog, [PAGE_OTHER]))
    assert back.status_code == 403 and "ไม่ได้ติ๊กเพจ" in back.text
    assert '/accounts/connect"' not in back.text  # no way into the staff pages offered
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(AccountToken)) == 0
        assert (
            session.scalar(
                select(func.count())
                .select_from(ChannelAccount)
                .where(ChannelAccount.external_id == PAGE_OTHER)
            )
            == 0
        )
        assert session.get(Post, post_id).state == PostState.NEEDS_RECONNECT  # type: ignore[union-attr]
    refused = [d for actor, a, d in actions(engine) if a == "account.delegated_refused"]
    assert [d["why"] for d in refused] == ["page not ticked"]
    owner.close()


def test_the_link_reconnects_its_youtube_channel_and_not_another(
    app: FastAPI, engine: Engine, sandboxes: tuple[GraphSandbox, YouTubeSandbox]
) -> None:
    _graph, youtube = sandboxes
    slug, post_id = broken_account(engine, ChannelKind.YOUTUBE, CHANNEL_MINE)
    owner, target = owner_with_grant(app, slug)
    assert target == "/accounts/connect/youtube/delegated"
    assert owner.get("/accounts/connect/facebook/delegated").status_code == 403
    # The Google account chosen owns another channel: refused, nothing stored.
    consent = owner.get(target).headers["location"]
    wrong = owner.get(google_consent(youtube, consent, CHANNEL_OTHER))
    assert wrong.status_code == 403 and "ไม่ได้เป็นเจ้าของช่อง" in wrong.text
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(AccountToken)) == 0
    # The grant lasts until the flow is done: the owner tries again with the right account.
    consent = owner.get(target).headers["location"]
    back = owner.get(google_consent(youtube, consent, CHANNEL_MINE))
    assert back.status_code == 200 and "เชื่อมต่อบัญชีใหม่แล้ว" in back.text, back.text[:800]
    with session_scope(engine) as session:
        account = session.scalars(select(ChannelAccount).where(ChannelAccount.slug == slug)).one()
        assert account.health == AccountHealth.OK
        tokens = load_tokens(session=session, account_id=account.id)
        assert tokens is not None and tokens.refresh_token is not None
        assert tokens.refresh_token.get_secret_value().startswith("1//")
        # A grant in Testing lives 7 days, by the app's clock: the expiry notice's end.
        assert tokens.lifetime_ends_at is not None
        assert tokens.lifetime_ends_at.replace(tzinfo=UTC) == NOW + timedelta(days=7)
        assert session.get(Post, post_id).state == PostState.SCHEDULED  # type: ignore[union-attr]
    refused = [d for actor, a, d in actions(engine) if a == "account.delegated_refused"]
    assert [d["why"] for d in refused] == ["other account", "channel not owned"]
    owner.close()


def test_the_grant_lasts_an_hour(
    app: FastAPI, engine: Engine, clock: Clock, sandboxes: tuple[GraphSandbox, YouTubeSandbox]
) -> None:
    slug, _post = broken_account(engine, ChannelKind.FACEBOOK, PAGE_MINE)
    owner, target = owner_with_grant(app, slug)
    assert owner.get(target).status_code == 303
    assert urlsplit(owner.get(target).headers["location"]).path.endswith("/dialog/oauth")
    clock.moment = NOW + timedelta(hours=1, minutes=1)
    late = owner.get(target)
    assert late.status_code == 303 and late.headers["location"].startswith("/login")
    owner.close()
