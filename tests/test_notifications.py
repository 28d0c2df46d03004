"""Notification digests: who is told what, at most one e-mail per kind and hour, in Thai,
sent once even by two runs at the same time -- seen in the SMTP sandbox over a real socket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from channels.sandbox.smtp import SmtpFault, SmtpSandbox
from marketing.db import session_scope
from marketing.models import (
    AccountHealth,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    DigestState,
    NotificationDigest,
    NotificationKind,
    Post,
    PostState,
    ReconnectLink,
    Role,
    User,
)
from marketing.notifications import run, set_choices
from marketing.reconnect_links import find_link
from marketing.settings import Settings
from tests.support.services import RedisServer

TEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PAGE_TOKEN = "EAAGlo" + "x" * 40  # what a Page token looks like: must never be mailed


@pytest.fixture
def relay() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as sandbox:
        yield sandbox


def settings_for(relay: SmtpSandbox) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=relay.port,
        smtp_timeout=5.0,
        email_from="notify@glo.example.org",
        public_base_url="http://127.0.0.1:8000",
    )


def people(engine: Engine) -> None:
    """Staff of each role, with addresses; one editor reads English, one has no address."""
    with session_scope(engine) as session:
        for name, role, email, language in (
            ("viewer", Role.VIEWER, "viewer@glo.example.org", "th"),
            ("editor", Role.EDITOR, "editor@glo.example.org", "th"),
            ("editor-en", Role.EDITOR, "editor-en@glo.example.org", "en"),
            ("editor-nomail", Role.EDITOR, "", "th"),
            ("approver", Role.APPROVER, "approver@glo.example.org", "th"),
            ("admin", Role.ADMIN, "admin@glo.example.org", "th"),
        ):
            # Rows made directly: argon2 for six users would be most of the test's time.
            session.add(
                User(
                    username=name,
                    display_name=name,
                    password_hash="-",
                    role=role,
                    language=language,
                    email=email or None,
                )
            )


def world(engine: Engine) -> tuple[int, int]:
    """A community with a Facebook Page and an approved campaign; (account id, campaign id)."""
    with session_scope(engine) as session:
        community = Community(
            slug="nan-ban-doi-ngoen", name_th="บ้านดอยเงิน", name_en="Ban Doi Ngoen", province="น่าน"
        )
        session.add(community)
        session.flush()
        account = ChannelAccount(
            slug="doi-ngoen-page",
            kind=ChannelKind.FACEBOOK,
            external_id="1001",
            display_name="เพจบ้านดอยเงิน",
            secret_name="DOI_NGOEN_PAGE_TOKEN",
            community_id=community.id,
        )
        campaign = Campaign(
            slug="songkran",
            name="สงกรานต์ที่น่าน",
            source_text="-",
            source_hash="h1",
            status=CampaignStatus.APPROVED,
            created_by="editor",
        )
        session.add_all([account, campaign])
        session.flush()
        return account.id, campaign.id


def fail_post(engine: Engine, *, account_id: int, campaign_id: int, at: datetime) -> int:
    with session_scope(engine) as session:
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        post = Post(
            campaign_id=campaign_id,
            community_id=account.community_id,
            channel_account_id=account_id,
            channel=ChannelKind.FACEBOOK,
            idempotency_key=f"k-{at.isoformat()}",
            occurrence_key=at.isoformat(),
            scheduled_at=at,
            next_try_at=at,
            content={"message": "สวัสดี"},
            content_hash="-",
            state=PostState.FAILED,
            state_changed_at=at,
            last_error=f"Graph refused token {PAGE_TOKEN}",
        )
        session.add(post)
        session.flush()
        return post.id


def mails_to(relay: SmtpSandbox, address: str) -> list[str]:
    """The plain-text bodies the relay accepted for ``address``, oldest first."""
    found = []
    for received in relay.messages:
        if address in received.rcpt_tos:
            body = received.message.get_body(("plain",))
            assert body is not None
            found.append(str(body.get_content()))
    return found


def test_events_of_one_hour_make_one_email_and_the_next_hour_another(
    engine: Engine, relay: SmtpSandbox
) -> None:
    people(engine)
    account_id, campaign_id = world(engine)
    settings = settings_for(relay)
    posts = []
    for minutes in (0, 20, 50):
        at = TEN + timedelta(minutes=minutes)
        posts.append(fail_post(engine, account_id=account_id, campaign_id=campaign_id, at=at))
        run(engine=engine, settings=settings, now=at)
    assert mails_to(relay, "editor@glo.example.org") == []  # the hour is not over yet

    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    first = mails_to(relay, "editor@glo.example.org")
    assert len(first) == 1
    assert all(f"/posts/{post_id}" in first[0] for post_id in posts)

    at = TEN + timedelta(hours=1, minutes=5)
    late = fail_post(engine, account_id=account_id, campaign_id=campaign_id, at=at)
    run(engine=engine, settings=settings, now=at)
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=40))
    assert len(mails_to(relay, "editor@glo.example.org")) == 1
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=2, minutes=3))
    both = mails_to(relay, "editor@glo.example.org")
    assert len(both) == 2
    assert f"/posts/{late}" in both[1] and f"/posts/{posts[0]}" not in both[1]


def test_each_role_and_choice_is_honoured(engine: Engine, relay: SmtpSandbox) -> None:
    people(engine)
    account_id, campaign_id = world(engine)
    with session_scope(engine) as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        set_choices(user=admin, enabled=[NotificationKind.ACCOUNT_RECONNECT])
    fail_post(engine, account_id=account_id, campaign_id=campaign_id, at=TEN)
    settings = settings_for(relay)
    run(engine=engine, settings=settings, now=TEN)
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    told = {address for m in relay.messages for address in m.rcpt_tos}
    # Editors and above may act on a failed post; the admin switched it off; the viewer
    # cannot act; one editor has no address.
    assert told == {
        "editor@glo.example.org",
        "editor-en@glo.example.org",
        "approver@glo.example.org",
    }


def test_the_mail_is_thai_english_by_choice_and_carries_no_token(
    engine: Engine, relay: SmtpSandbox
) -> None:
    people(engine)
    account_id, campaign_id = world(engine)
    fail_post(engine, account_id=account_id, campaign_id=campaign_id, at=TEN)
    settings = settings_for(relay)
    run(engine=engine, settings=settings, now=TEN)
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    thai = relay.messages[[m.rcpt_tos for m in relay.messages].index(("editor@glo.example.org",))]
    assert "โพสต์" in str(thai.message["Subject"])
    body = mails_to(relay, "editor@glo.example.org")[0]
    assert "สวัสดี" in body and "ล้มเหลว" in body and "2569" in body  # Buddhist era
    english = mails_to(relay, "editor-en@glo.example.org")[0]
    assert "Hello" in english and "failed" in english
    for message in relay.messages:
        assert PAGE_TOKEN.encode() not in message.raw
        assert b"EAA" not in message.raw


def test_an_account_to_reconnect_reaches_admins_with_a_working_delegated_link(
    engine: Engine, relay: SmtpSandbox
) -> None:
    people(engine)
    account_id, _campaign = world(engine)
    with session_scope(engine) as session:
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        account.health = AccountHealth.NEEDS_RECONNECT
        account.health_checked_at = TEN + timedelta(minutes=7)
    settings = settings_for(relay)
    run(engine=engine, settings=settings, now=TEN + timedelta(minutes=8))
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    assert {a for m in relay.messages for a in m.rcpt_tos} == {"admin@glo.example.org"}
    body = mails_to(relay, "admin@glo.example.org")[0]
    assert "เพจบ้านดอยเงิน" in body and "ต้องเชื่อมต่อใหม่" in body
    link = next(word for word in body.split() if "/reconnect/" in word)
    token = link.rsplit("/", 1)[1]
    with session_scope(engine) as session:
        found = find_link(
            session=session, token=token, secret=settings.web_secret, now=TEN + timedelta(hours=2)
        )
        assert found.account_id == account_id
        assert session.scalars(select(ReconnectLink.nonce_hash)).one() not in body
    # Still broken, and checked again (the metrics collector notes each failure): no new
    # event, no new mail.
    with session_scope(engine) as session:
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        account.health_checked_at = TEN + timedelta(hours=1, minutes=30)
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=31))
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=2, minutes=3))
    assert len(relay.messages) == 1
    # Reconnected, then broken again: told again.
    for health, minutes in ((AccountHealth.OK, 10), (AccountHealth.NEEDS_RECONNECT, 20)):
        with session_scope(engine) as session:
            account = session.get(ChannelAccount, account_id)
            assert account is not None
            account.health = health
        run(engine=engine, settings=settings, now=TEN + timedelta(hours=2, minutes=minutes))
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=3, minutes=3))
    assert len(mails_to(relay, "admin@glo.example.org")) == 2


def test_a_draft_reaches_approvers_but_never_the_one_who_applied_it(
    engine: Engine, relay: SmtpSandbox
) -> None:
    people(engine)
    with session_scope(engine) as session:
        session.add(
            Campaign(
                slug="draft-by-approver",
                name="ร่างของผู้อนุมัติ",
                source_text="-",
                source_hash="d1",
                status=CampaignStatus.DRAFT,
                created_by="approver",
                updated_at=TEN,
                created_at=TEN,
            )
        )
    settings = settings_for(relay)
    run(engine=engine, settings=settings, now=TEN + timedelta(minutes=1))
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    assert {a for m in relay.messages for a in m.rcpt_tos} == {"admin@glo.example.org"}
    assert "/campaigns/draft-by-approver" in mails_to(relay, "admin@glo.example.org")[0]


def test_two_runs_at_once_send_each_digest_once(engine: Engine, relay: SmtpSandbox) -> None:
    people(engine)
    account_id, campaign_id = world(engine)
    for minutes in (0, 20, 50):
        fail_post(
            engine,
            account_id=account_id,
            campaign_id=campaign_id,
            at=TEN + timedelta(minutes=minutes),
        )
    settings = settings_for(relay)
    run(engine=engine, settings=settings, now=TEN + timedelta(minutes=50))  # noticed at 10:50
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def beat() -> None:
        try:
            start.wait(timeout=10)
            run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    recipients = [a for m in relay.messages for a in m.rcpt_tos]
    assert sorted(recipients) == sorted(
        ["editor@glo.example.org", "editor-en@glo.example.org", "approver@glo.example.org"]
        + ["admin@glo.example.org"]
    )
    # A worker restarted later finds the claims and sends nothing again.
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=30))
    assert len(relay.messages) == 4
    with session_scope(engine) as session:
        states = session.scalars(select(NotificationDigest.state)).all()
    assert states == [DigestState.SENT] * 4


def test_a_relay_refusal_is_recorded_and_a_busy_relay_is_tried_again(
    engine: Engine, relay: SmtpSandbox
) -> None:
    people(engine)
    account_id, campaign_id = world(engine)
    fail_post(engine, account_id=account_id, campaign_id=campaign_id, at=TEN)
    settings = settings_for(relay)
    run(engine=engine, settings=settings, now=TEN)
    relay.inject(
        SmtpFault(stage="rcpt", code=550, recipients=frozenset({"editor@glo.example.org"}))
    )
    relay.inject(
        SmtpFault(stage="rcpt", code=451, recipients=frozenset({"approver@glo.example.org"}))
    )
    result = run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    assert (result.failed, result.released) == (1, 1)
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=4))
    assert len(mails_to(relay, "approver@glo.example.org")) == 1
    assert mails_to(relay, "editor@glo.example.org") == []
    with session_scope(engine) as session:
        refused = session.scalars(
            select(NotificationDigest).where(NotificationDigest.state == DigestState.FAILED)
        ).one()
        assert refused.address == "editor@glo.example.org"
        assert refused.error_code == "email:smtp-550"


def test_users_add_takes_an_email_address_and_refuses_a_bad_one(engine: Engine) -> None:
    from click.testing import CliRunner

    from marketing.cli import main

    def add(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            main, ["users", "add", *args, "--password-stdin"], input="a-long-password\n"
        )
        return result.exit_code, result.output

    code, out = add("nok", "--role", "editor", "--email", "nok@glo.example.org")
    assert code == 0, out
    code, out = add("dang", "--email", "not an address")
    assert code == 2 and "not a valid e-mail address" in out
    with session_scope(engine) as session:
        users = {u.username: u.email for u in session.scalars(select(User))}
    assert users == {"nok": "nok@glo.example.org"}


def test_a_spent_youtube_quota_is_told_once_a_day(engine: Engine, relay: SmtpSandbox) -> None:
    from marketing.models import Attempt, AttemptOutcome

    people(engine)
    _account_id, campaign_id = world(engine)
    with session_scope(engine) as session:
        community_id = session.scalars(select(Community.id)).one()
        channel = ChannelAccount(
            slug="doi-ngoen-channel",
            kind=ChannelKind.YOUTUBE,
            external_id="UCdoingoen",
            display_name="ช่องบ้านดอยเงิน",
            community_id=community_id,
        )
        session.add(channel)
        session.flush()
        for minutes in (5, 35):  # two uploads refused by the ledger, one event
            at = TEN + timedelta(minutes=minutes)
            post = Post(
                campaign_id=campaign_id,
                community_id=community_id,
                channel_account_id=channel.id,
                channel=ChannelKind.YOUTUBE,
                idempotency_key=f"yt-{minutes}",
                occurrence_key=str(minutes),
                scheduled_at=at,
                next_try_at=at + timedelta(hours=20),
                content={"title": "วิดีโอ"},
                content_hash="-",
                state=PostState.SCHEDULED,
                state_changed_at=at,
            )
            session.add(post)
            session.flush()
            session.add(
                Attempt(
                    post_id=post.id,
                    number=1,
                    started_at=at,
                    finished_at=at,
                    outcome=AttemptOutcome.RATE_LIMITED,
                    error_code="quota:uploads",
                )
            )
    settings = settings_for(relay)
    run(engine=engine, settings=settings, now=TEN + timedelta(minutes=6))
    run(engine=engine, settings=settings, now=TEN + timedelta(minutes=36))
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=1, minutes=3))
    run(engine=engine, settings=settings, now=TEN + timedelta(hours=2, minutes=3))
    mails = mails_to(relay, "editor@glo.example.org")
    assert len(mails) == 1 and "โควตายูทูบ" in mails[0]


@pytest.mark.slow
def test_the_beat_task_sends_digests_from_a_real_worker(
    engine: Engine,
    db_url: str,
    relay: SmtpSandbox,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    from celery import Celery

    from marketing.db import utcnow
    from marketing.notifications import notice_events
    from tests.support.services import CeleryWorker, running, wait_until

    people(engine)
    account_id, campaign_id = world(engine)
    earlier = utcnow() - timedelta(hours=2)  # the worker runs on the real clock
    fail_post(engine, account_id=account_id, campaign_id=campaign_id, at=earlier)
    with session_scope(engine) as session:
        assert notice_events(session=session, now=earlier) == 1
    env = {
        "MARKETING_DATABASE_URL": db_url,
        "MARKETING_BROKER_URL": redis_server.url,
        "MARKETING_DATA_DIR": str(tmp_path / "data"),
        "MARKETING_SMTP_HOST": "127.0.0.1",
        "MARKETING_SMTP_PORT": str(relay.port),
        "MARKETING_EMAIL_FROM": "notify@glo.example.org",
    }
    with running(CeleryWorker(env, log_dir=tmp_path)):
        client = Celery(broker=redis_server.url)
        client.conf.task_serializer = "json"
        for _ in range(2):  # a duplicate ring sends nothing more
            client.send_task("marketing.send_notifications", queue="default")
        wait_until(
            lambda: len(mails_to(relay, "approver@glo.example.org")) == 1,
            timeout=60,
            what="the digest in the SMTP sandbox",
        )

        def settled() -> bool:
            with session_scope(engine) as session:
                return (
                    session.scalars(select(NotificationDigest.state)).all()
                    == [DigestState.SENT] * 4
                )

        wait_until(settled, timeout=60, what="four digests recorded as sent")
    assert len(mails_to(relay, "editor@glo.example.org")) == 1
