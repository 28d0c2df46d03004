"""Connecting a Facebook Page and a YouTube channel from the web app, in a real Chromium,
through the sandboxes' own consent pages (#13).

An admin first tries a partial grant (a Page and a permission unticked): a Thai message names
the missing permission and nothing is stored.  Then the admin connects one Page (the other left
unticked) and one channel, tying each to a community.  Posts go out through them with the
real SDKs; two hours later on the sandbox clock the YouTube token has expired and is renewed
by google-auth by itself (the refresh token stays stored); an upload YouTube forces to
private is recorded and shown; the grant revoked, the account needs reconnecting.  After all
of it the database (the SQLite file, or a pg_dump of PostgreSQL) holds none of the tokens the
sandboxes issued, and after key rotation the tokens are readable under the new key alone.
Revoked once more, the admins' notification digest (the notifications core run over an hour of
an injected clock, the mail seen in the SMTP sandbox) carries a delegated link; opened in a
fresh browser with no staff account it reconnects that one channel through the sandbox's
consent page, and the waiting post goes out.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, func, select

from channels.sandbox.graph import GraphSandbox
from channels.sandbox.smtp import SmtpSandbox
from channels.sandbox.youtube import YouTubeSandbox
from marketing.db import session_scope, utcnow
from marketing.models import (
    AccountHealth,
    AccountToken,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    Community,
    Post,
    PostState,
    Role,
    User,
)
from marketing.publishing import Policy, claim_due
from marketing.settings import TokenUnreadable, reset_settings
from marketing.token_store import load_tokens, rotate_keys
from marketing.web import create_app
from tests.support.services import free_port
from tests.support.web import PASSWORD, ServerThread, add_user, import_sample
from tests.test_web_browser import ARTIFACTS, CHROMIUM

APP_ID, APP_SECRET = "1357924680", "sandbox-app-secret"
CLIENT_ID, CLIENT_SECRET = "glo-sandbox.apps.googleusercontent.com", "sandbox-client-secret"
PAGE_NAN, PAGE_PHRAE = "9001001", "9001002"
CHANNEL = "UCconnectSandbox00000001"
NAN, PHRAE = "nan-ban-doi-ngoen", "phrae-ban-thung-khram"
PREFIXES = (b"EAA", b"ya29.", b"1//")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: run `bash scripts/services.sh` (apt chromium)")
    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def sandboxes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[GraphSandbox, YouTubeSandbox, str]]:
    """The Graph and YouTube sandboxes with an app, a user managing two Pages and a Google
    account with a channel; the settings point the app and the adapters at them."""
    import_sample(engine)
    graph = GraphSandbox().start()
    youtube = YouTubeSandbox(seed=3).start()
    graph.register_app(APP_ID, APP_SECRET)
    # Preset Page tokens nobody uses: only tokens issued through Login act here.
    graph.register_page(PAGE_NAN, "unused-preset-nan", "ผ้าทอบ้านดอยเงิน (เพจ)")
    graph.register_page(PAGE_PHRAE, "unused-preset-phrae", "หม้อห้อมบ้านทุ่งคราม (เพจ)")
    graph.register_user("fb-user-1", "มาลี ใจดี", [PAGE_NAN, PAGE_PHRAE])
    youtube.register_client(CLIENT_ID, CLIENT_SECRET)
    youtube.register_channel(CHANNEL, "unused-preset-channel", title="ช่องหม้อห้อมบ้านทุ่งคราม")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    for name, value in {
        "PUBLIC_BASE_URL": base,
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
    from tasks import wiring

    wiring.reset()
    try:
        yield graph, youtube, str(port)
    finally:
        wiring.reset()
        graph.stop()
        youtube.stop()


def add_post(engine: Engine, account_slug: str, key: str, content: dict[str, Any]) -> int:
    """A post due now on ``account_slug``, in an approved campaign."""
    now = utcnow()
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.slug == "connect")).first()
        if campaign is None:
            campaign = Campaign(
                slug="connect",
                name="บัญชีที่เชื่อมต่อ",
                source_text="-",
                source_hash="-",
                status=CampaignStatus.APPROVED,
            )
            session.add(campaign)
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == account_slug)
        ).one()
        assert account.community_id is not None
        post = Post(
            campaign=campaign,
            community_id=account.community_id,
            channel_account_id=account.id,
            channel=account.kind,
            idempotency_key=key,
            occurrence_key=key,
            scheduled_at=now,
            next_try_at=now,
            content=content,
            content_hash=key,
        )
        session.add(post)
        session.flush()
        return post.id


def publish_due(engine: Engine) -> dict[int, PostState]:
    """What the worker does, in this process: claim what is due and publish each post
    through the real adapters; the posts' states after."""
    from tasks.publishing import publish_post

    result = claim_due(engine=engine, policy=Policy.from_settings(), now=utcnow())
    for post_id, _channel in result.queued:
        publish_post(post_id)
    with session_scope(engine) as session:
        return {
            p.id: p.state
            for p in session.scalars(select(Post).where(Post.id.in_([i for i, _ in result.queued])))
        }


def stored(engine: Engine, slug: str) -> Any:
    with session_scope(engine) as session:
        account = session.scalars(select(ChannelAccount).where(ChannelAccount.slug == slug)).one()
        return load_tokens(session=session, account_id=account.id)


def database_bytes(engine: Engine, db_url: str) -> bytes:
    """Everything the database holds, as a backup would: the SQLite file (and its WAL), or
    a plain-format pg_dump."""
    engine.dispose()
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        files = [path, *path.parent.glob(path.name + "-*")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    url = engine.url
    dump = subprocess.run(
        [
            "pg_dump",
            "--no-owner",
            "-h",
            str(url.host or "127.0.0.1"),
            "-p",
            str(url.port or 5432),
            "-U",
            str(url.username or "postgres"),
            str(url.database),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return dump.stdout


def test_connect_a_page_and_a_channel_publish_refresh_revoke_and_leave_no_token_behind(
    browser: Any,
    engine: Engine,
    db_url: str,
    sandboxes: tuple[GraphSandbox, YouTubeSandbox, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every library's debug lines, token requests included
    graph, youtube, port = sandboxes
    add_user(engine, "admin", Role.ADMIN)
    server = ServerThread(create_app(engine=engine), port=int(port)).start()
    context = browser.new_context(viewport={"width": 390, "height": 900})
    page = context.new_page()
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(server.url + "/login")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_load_state("load")
        page.goto(server.url + "/accounts/connect")
        assert "เชื่อมต่อบัญชี" in page.inner_text("h1")

        # -- a partial grant: one Page and one permission unticked -------------------------
        page.click("form[action='/accounts/connect/facebook'] button")
        page.wait_for_load_state("load")
        assert page.url.startswith(graph.url + "/v25.0/dialog/oauth")
        page.uncheck(f"input[name=page][value='{PAGE_PHRAE}']")
        page.uncheck("input[name=grant][value='read_insights']")
        page.click("button[value=allow]")
        page.wait_for_load_state("load")
        page.screenshot(path=str(ARTIFACTS / "connect-01-partial.png"), full_page=True)
        message = page.inner_text("main")
        assert "read_insights" in message
        assert "Facebook ไม่ได้ให้สิทธิ์" in message and "ไม่มีการเชื่อมต่อใด" in message
        with session_scope(engine) as session:
            assert session.scalar(select(func.count()).select_from(AccountToken)) == 0
            ids = set(session.scalars(select(ChannelAccount.external_id)))
            assert PAGE_NAN not in ids and PAGE_PHRAE not in ids

        # -- Facebook: one Page ticked, tied to its community ------------------------------
        page.goto(server.url + "/accounts/connect")
        page.click("form[action='/accounts/connect/facebook'] button")
        page.wait_for_load_state("load")
        page.uncheck(f"input[name=page][value='{PAGE_PHRAE}']")
        page.click("button[value=allow]")
        page.wait_for_load_state("load")
        assert page.url.split("#")[0] == server.url + "/accounts/connect/pick"
        assert page.locator("select").count() == 1  # only the Page that was shared
        page.select_option(f"select[name='tie-{PAGE_NAN}']", NAN)
        page.screenshot(path=str(ARTIFACTS / "connect-02-pick-page.png"), full_page=True)
        page.click("form[action='/accounts/connect/pick'] button[type=submit]")
        page.wait_for_load_state("load")
        assert "เชื่อมต่อแล้ว" in page.inner_text("body")
        page_token = stored(engine, f"fb-{PAGE_NAN}")
        assert page_token is not None
        # The Page's own token, as /me/accounts gave it -- never the user token.
        issued = graph._page_tokens.get(page_token.access_token.get_secret_value())
        assert issued is not None and issued.page_id == PAGE_NAN
        assert page_token.lifetime_ends_at is not None  # data access expiry, for warnings
        with session_scope(engine) as session:
            ids = set(session.scalars(select(ChannelAccount.external_id)))
            assert PAGE_PHRAE not in ids  # unticked: nothing stored for it

        # -- YouTube: consent with PKCE, offline access, tied to a community ---------------
        page.goto(server.url + "/accounts/connect")
        page.click("form[action='/accounts/connect/youtube'] button")
        page.wait_for_load_state("load")
        assert page.url.startswith(youtube.url + "/o/oauth2/auth")
        assert "code_challenge_method=S256" in page.url and "access_type=offline" in page.url
        page.click("button[value=allow]")
        page.wait_for_load_state("load")
        assert page.url.split("#")[0] == server.url + "/accounts/connect/pick"
        page.select_option(f"select[name='tie-{CHANNEL}']", PHRAE)
        page.click("form[action='/accounts/connect/pick'] button[type=submit]")
        page.wait_for_load_state("load")
        page.screenshot(path=str(ARTIFACTS / "connect-03-connected.png"), full_page=True)
        channel_slug = f"yt-{CHANNEL.lower()}"
        first = stored(engine, channel_slug)
        assert first is not None and first.refresh_token is not None
        refresh = first.refresh_token.get_secret_value()
        # A consent screen in Testing: the grant's 7 days are recorded, for warnings.
        assert first.lifetime_ends_at is not None
        assert abs(first.lifetime_ends_at - utcnow() - timedelta(days=7)) < timedelta(minutes=5)
        assert refresh.startswith("1//") and first.access_token.get_secret_value().startswith(
            "ya29."
        )
        assert channel_slug in page.inner_text("main") and f"fb-{PAGE_NAN}" in page.inner_text(
            "main"
        )

        # -- a campaign publishes through them (real SDKs, the pipeline's own code) -------
        video = tmp_path / "data" / "media" / "clip.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
        clip = {"title": "หม้อห้อมบ้านทุ่งคราม", "video": str(video), "privacy": "public"}
        fb_post = add_post(engine, f"fb-{PAGE_NAN}", "connect-fb-1", {"message": "ผ้าทอน่าน"})
        yt_post = add_post(engine, channel_slug, "connect-yt-1", clip)
        assert publish_due(engine) == {fb_post: PostState.PUBLISHED, yt_post: PostState.PUBLISHED}
        assert len(graph.published(PAGE_NAN)) == 1

        # -- two hours later the access token has expired; google-auth renews it ----------
        youtube.clock.advance(timedelta(hours=2))
        later = add_post(engine, channel_slug, "connect-yt-2", clip)
        youtube.force_private = True  # an unaudited Google project
        assert publish_due(engine) == {later: PostState.PUBLISHED}
        renewed = stored(engine, channel_slug)
        assert renewed is not None and renewed.refresh_token is not None
        assert renewed.refresh_token.get_secret_value() == refresh  # kept, not blanked
        assert renewed.access_token.get_secret_value() != first.access_token.get_secret_value()
        with session_scope(engine) as session:
            notice = session.get(Post, later)
            assert notice is not None and notice.notice == "youtube:forced-private"
        page.goto(f"{server.url}/posts/{later}")
        page.screenshot(path=str(ARTIFACTS / "connect-04-forced-private.png"), full_page=True)
        assert "YouTube ตั้งวิดีโอนี้เป็นส่วนตัว" in page.inner_text("main")

        # -- the grant revoked: the account needs reconnecting ------------------------------
        assert youtube.revoke_grant(CHANNEL) == 1
        youtube.clock.advance(timedelta(hours=2))  # the renewed token has expired too
        revoked = add_post(engine, channel_slug, "connect-yt-3", clip)
        assert publish_due(engine) == {revoked: PostState.NEEDS_RECONNECT}
        with session_scope(engine) as session:
            account = session.scalars(
                select(ChannelAccount).where(ChannelAccount.slug == channel_slug)
            ).one()
            assert account.health == AccountHealth.NEEDS_RECONNECT
            community = session.get(Community, account.community_id)
            assert community is not None and community.slug == PHRAE

        # -- the admin reconnects that one channel; its waiting post goes out -------------
        page.goto(server.url + "/accounts/connect")
        assert "ต้องเชื่อมต่อใหม่" in page.inner_text("main")
        page.click(
            f"form[action='/accounts/connect/youtube']:has(input[value='{channel_slug}']) button"
        )
        page.wait_for_load_state("load")
        page.click("button[value=allow]")
        page.wait_for_load_state("load")
        # Tied to its community already: the picker keeps it.
        assert page.locator(f"select[name='tie-{CHANNEL}']").input_value() == PHRAE
        page.click("form[action='/accounts/connect/pick'] button[type=submit]")
        page.wait_for_load_state("load")
        with session_scope(engine) as session:
            account = session.scalars(
                select(ChannelAccount).where(ChannelAccount.slug == channel_slug)
            ).one()
            assert account.health == AccountHealth.OK
        assert publish_due(engine) == {revoked: PostState.PUBLISHED}

        # -- revoked again: the admins' digest carries a link its owner reconnects with ----
        delegated_post = revoke_and_wait(engine, youtube, channel_slug, clip)
        link = mailed_reconnect_link(engine, server.url)
        owner = browser.new_context(viewport={"width": 390, "height": 900})  # no staff account
        try:
            assert owner.cookies() == []
            visitor = owner.new_page()
            visitor.goto(link)
            assert "ช่องหม้อห้อมบ้านทุ่งคราม" in visitor.inner_text("main")
            visitor.click("form[action^='/reconnect/'] button[type=submit]")
            visitor.wait_for_load_state("load")
            assert visitor.url.startswith(youtube.url + "/o/oauth2/auth")  # that channel's flow
            visitor.click("button[value=allow]")
            visitor.wait_for_load_state("load")
            visitor.screenshot(path=str(ARTIFACTS / "connect-05-delegated.png"), full_page=True)
            assert "เชื่อมต่อบัญชีใหม่แล้ว" in visitor.inner_text("main")
            # The grant ended with the flow, and never opened a staff page.
            visitor.goto(server.url + "/accounts/connect")
            assert urlsplit(visitor.url).path == "/login"
        finally:
            owner.close()
        with session_scope(engine) as session:
            account = session.scalars(
                select(ChannelAccount).where(ChannelAccount.slug == channel_slug)
            ).one()
            assert account.health == AccountHealth.OK
            assert session.get(Community, account.community_id).slug == PHRAE  # type: ignore[union-attr]
        assert publish_due(engine) == {delegated_post: PostState.PUBLISHED}
    finally:
        context.close()
        server.stop()

    # -- no token the sandboxes issued is in the database or a dump of it ------------------
    issued_tokens = graph.issued_tokens() + youtube.issued_tokens()
    assert len(issued_tokens) >= 6
    everything = database_bytes(engine, db_url)
    assert len(everything) > 10_000
    assert [t for t in issued_tokens if t.encode() in everything] == []
    assert [p for p in PREFIXES if p in everything] == []
    logged = caplog.text
    assert "oauth" in logged.lower()  # the flows did log
    assert [t[:12] for t in issued_tokens if t in logged] == []

    # -- rotation: readable under the new key alone, not under the old one -----------------
    old = get_key()
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("MARKETING_TOKEN_KEYS", f"{new},{old}")
    reset_settings()
    with session_scope(engine) as session:
        assert rotate_keys(session=session) == 2
    monkeypatch.setenv("MARKETING_TOKEN_KEYS", new)
    reset_settings()
    page_again = stored(engine, f"fb-{PAGE_NAN}")
    assert page_again is not None
    assert page_again.access_token.get_secret_value() == page_token.access_token.get_secret_value()
    monkeypatch.setenv("MARKETING_TOKEN_KEYS", old)
    reset_settings()
    with pytest.raises(TokenUnreadable):
        stored(engine, f"fb-{PAGE_NAN}")


def revoke_and_wait(
    engine: Engine, youtube: YouTubeSandbox, channel_slug: str, clip: dict[str, Any]
) -> int:
    """Revoke the channel's grant in the sandbox and let a post find it out; the post."""
    assert youtube.revoke_grant(CHANNEL) == 1
    youtube.clock.advance(timedelta(hours=2))
    post = add_post(engine, channel_slug, "connect-yt-4", clip)
    assert publish_due(engine) == {post: PostState.NEEDS_RECONNECT}
    return post


def mailed_reconnect_link(engine: Engine, base_url: str) -> str:
    """Run the notifications core over an hour of an injected clock, with the admin reading
    mail; the delegated link in the admin's digest, as the SMTP sandbox received it."""
    from marketing.notifications import run
    from marketing.settings import get_settings

    with session_scope(engine) as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        admin.email = "admin@glo.example.org"
    with SmtpSandbox() as relay:
        settings = get_settings().model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": relay.port,
                "smtp_timeout": 5.0,
                "email_from": "notify@glo.example.org",
            }
        )
        noticed = utcnow()
        run(engine=engine, settings=settings, now=noticed)
        assert relay.messages == []  # a digest: once its hour is over
        run(engine=engine, settings=settings, now=noticed + timedelta(hours=1, minutes=5))
        mails = [
            str(m.message.get_body(("plain",)).get_content())  # type: ignore[union-attr]
            for m in relay.messages
            if "admin@glo.example.org" in m.rcpt_tos and "เชื่อมต่อใหม่" in str(m.message["Subject"])
        ]
    assert len(mails) == 1 and "ช่องหม้อห้อมบ้านทุ่งคราม" in mails[0]
    links = [w for w in mails[0].split() if w.startswith(base_url + "/reconnect/")]
    assert len(links) == 1, mails[0]
    return links[0]


def get_key() -> str:
    from marketing.settings import get_settings

    return get_settings().token_keys.get_secret_value()
