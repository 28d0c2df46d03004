"""Telling staff what needs them: e-mail digests through the configured SMTP relay.

No Celery here: ``tasks.notify.send_digests`` calls :func:`run` every minute, so the rules are
tested without a worker.

Who gets what (a person must have an e-mail address, be active, and not have switched the
kind off on their settings page; every kind is on by default):

==================  ==============================================  ===================
kind                what happened                                   to (role or above)
==================  ==============================================  ===================
account_reconnect   an account's token expired, was revoked or      admin (they connect
                    lost its permission (with a delegated link      accounts and make
                    for its owner, and the page to do it oneself)   the links)
account_expiring    a stored token's known lifetime ends within     admin
                    ``EXPIRY_WARNING`` (7 days): a Page's data
                    access, a Google grant in Testing (with a
                    delegated link, to reconnect before it breaks)
post_problem        a post failed, or its outcome is unknown        editor (they retry
                    (unconfirmed)                                   and check posts)
draft_waiting       a campaign was applied and waits for approval   approver (never told
                                                                    of their own drafts)
youtube_quota       YouTube's daily upload quota is spent           editor
==================  ==============================================  ===================

The contract, step by step::

    notice_events  (state in the database -> NotificationEvent rows, keyed, idempotent)
         |   each event belongs to the clock hour in which it was noticed (its window)
         v
    claim          one NotificationDigest row per (person, kind, window), inserted with
         |         ON CONFLICT DO NOTHING and committed *before* the relay is called
         v
    send           sent | failed (the relay refused for good) | unconfirmed (the relay may
                   have it: never again) | released (the relay could not be reached: the row
                   is deleted, so the next run claims and tries again)

* A digest goes out once its hour has ended (plus ``GRACE``, for an event noticed on the
  last second by a beat whose clock lags): events noticed at 10:00, 10:20 and 10:50 make one
  e-mail soon after 11:00; one noticed at 11:05 makes a second after 12:00.  So a person gets
  at most one e-mail of a kind per hour, and waits at most about an hour for one.
* Two beats, a restarted worker or a redelivered message find the claim and send nothing:
  the unique (person, kind, window) row, not the broker, guarantees "once".
* Events are found from the state the pipeline already keeps (posts' states and times,
  accounts' health, campaigns' status, YouTube attempts refused by the quota ledger), so no
  producer has to remember to call anything; :func:`record_event` is there for one that
  wants to say something the state does not show.
* Nothing secret goes into an event or a mail: names, states and times only -- never a
  token, and never a channel's raw error text.
"""

from __future__ import annotations

import email.utils
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from channels.email import EmailAdapter, EmailSession, email_adapter_from_settings
from channels.errors import ChannelError, OutcomeUnknown, TransientError
from channels.quota import PACIFIC, REFUSAL_CODE_PREFIX, next_reset, quota_day
from marketing.db import get_engine, utcnow, write_session
from marketing.models import (
    AccountHealth,
    AccountToken,
    Attempt,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    DigestState,
    NotificationDigest,
    NotificationEvent,
    NotificationKind,
    Post,
    PostState,
    Role,
    User,
)
from marketing.reconnect_links import accounts_page, create_link
from marketing.settings import Settings, get_settings
from marketing.web.i18n import Clock, language_of
from marketing.web.notices import EventView, digest_mail
from marketing.web.staff import audit

log = logging.getLogger(__name__)

LINE_TEXT_MAX = 5000  # characters in one LINE text message

WINDOW = timedelta(hours=1)
#: How long after its hour a digest waits, for an event noticed at the hour's last moment.
GRACE = timedelta(minutes=2)
#: How far back state is read for new events, and digests are still sent.
LOOKBACK = timedelta(hours=24)
#: Who may act on each kind: that role and every role above it are told.
AUDIENCE: dict[NotificationKind, Role] = {
    NotificationKind.ACCOUNT_RECONNECT: Role.ADMIN,
    NotificationKind.ACCOUNT_EXPIRING: Role.ADMIN,
    NotificationKind.POST_PROBLEM: Role.EDITOR,
    NotificationKind.DRAFT_WAITING: Role.APPROVER,
    NotificationKind.YOUTUBE_QUOTA: Role.EDITOR,
}
UNHEALTHY = (AccountHealth.NEEDS_RECONNECT, AccountHealth.PERMISSION_LOST)
#: How long before a token's known lifetime ends (``AccountToken.lifetime_ends_at``) admins
#: are told, so the account is reconnected before its first post fails.
EXPIRY_WARNING = timedelta(days=7)
#: The kinds whose mails carry a delegated reconnect link per account.
LINKED_KINDS = (NotificationKind.ACCOUNT_RECONNECT, NotificationKind.ACCOUNT_EXPIRING)


def window_of(moment: datetime) -> datetime:
    """The start of the clock hour (UTC) that holds ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def kinds_for(role: Role) -> list[NotificationKind]:
    """The kinds a person with ``role`` may receive."""
    return [kind for kind, needed in AUDIENCE.items() if role.allows(needed)]


def wants(user: User, kind: NotificationKind) -> bool:
    """Whether ``user`` is sent ``kind`` digests: role, address, active and their choice."""
    return (
        user.active
        and bool(user.email)
        and user.role.allows(AUDIENCE[kind])
        and kind.value not in (user.notifications_off or [])
    )


def set_choices(*, user: User, enabled: Sequence[NotificationKind]) -> None:
    """Keep ``enabled`` (of the kinds the user's role allows) on and switch the rest off."""
    user.notifications_off = sorted(k.value for k in NotificationKind if k not in set(enabled))


def _insert_ignoring_conflict(session: Session, table: Any, values: dict[str, Any]) -> int | None:
    """INSERT ``values`` unless a unique key already holds them; the new row's id, or None."""
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = builder(table).values(**values).on_conflict_do_nothing().returning(table.c.id)
    inserted: int | None = session.execute(statement).scalar()
    return inserted


def record_event(
    *,
    session: Session,
    kind: NotificationKind,
    key: str,
    object_type: str,
    object_id: str | int,
    occurred_at: datetime,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Note that ``kind`` happened (once per ``key``) in the window of ``now``; True if it
    was new.  The caller commits."""
    inserted = _insert_ignoring_conflict(
        session,
        NotificationEvent.__table__,
        {
            "key": key[:200],
            "kind": kind.value,
            "window_start": window_of(now),
            "occurred_at": occurred_at,
            "recorded_at": now,
            "object_type": object_type,
            "object_id": str(object_id),
            "detail": detail or {},
        },
    )
    return inserted is not None


def _stamp(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%f") if moment else "never"


def notice_events(*, session: Session, now: datetime, lookback: timedelta = LOOKBACK) -> int:
    """Turn what the database shows into events (each at most once); how many were new.
    The caller commits."""
    since = now - lookback
    new = 0
    communities: dict[int, str] = {
        row.id: row.name_th for row in session.execute(select(Community.id, Community.name_th))
    }

    # An account is told of once per time it breaks: an event stays open until the account
    # is seen healthy again (its detail gets "resolved"), however often its health is
    # re-checked meanwhile.  The key counts the earlier breakdowns, so two runs at once
    # insert the same key and one of them nothing.
    earlier: dict[str, list[NotificationEvent]] = defaultdict(list)
    for event in session.scalars(
        select(NotificationEvent).where(
            NotificationEvent.kind == NotificationKind.ACCOUNT_RECONNECT
        )
    ):
        earlier[event.object_id].append(event)
    for account in session.scalars(select(ChannelAccount).order_by(ChannelAccount.id)):
        past = earlier.get(str(account.id), [])
        still_open = [e for e in past if not e.detail.get("resolved")]
        if account.health not in UNHEALTHY:
            for event in still_open:
                event.detail = {**event.detail, "resolved": now.isoformat()}
            continue
        if still_open:
            continue
        new += record_event(
            session=session,
            kind=NotificationKind.ACCOUNT_RECONNECT,
            key=f"account:{account.id}:{len(past) + 1}",
            object_type="account",
            object_id=account.id,
            occurred_at=account.health_checked_at or now,
            now=now,
            detail=_account_detail(session, account, communities, health=account.health.value),
        )

    # A lifetime about to end is told of once per recorded end: reconnecting records a new
    # end (a new key, told of again when that one nears); an account already broken is
    # told of as needing reconnecting instead.
    expiring = session.execute(
        select(ChannelAccount, AccountToken.lifetime_ends_at)
        .join(AccountToken, AccountToken.account_id == ChannelAccount.id)
        .where(
            AccountToken.lifetime_ends_at.is_not(None),
            AccountToken.lifetime_ends_at <= now + EXPIRY_WARNING,
            AccountToken.lifetime_ends_at > now - lookback,
        )
        .order_by(ChannelAccount.id)
    ).all()
    for account, ends in expiring:
        if account.health in UNHEALTHY or ends is None:
            continue
        ends = ends if ends.tzinfo else ends.replace(tzinfo=UTC)
        new += record_event(
            session=session,
            kind=NotificationKind.ACCOUNT_EXPIRING,
            key=f"account-expiring:{account.id}:{_stamp(ends)}",
            object_type="account",
            object_id=account.id,
            occurred_at=now,
            now=now,
            detail=_account_detail(session, account, communities, ends=ends.isoformat()),
        )

    problems = session.execute(
        select(Post, Campaign.name)
        .join(Campaign, Campaign.id == Post.campaign_id)
        .where(
            Post.state.in_([PostState.FAILED, PostState.UNCONFIRMED]),
            Post.state_changed_at >= since,
        )
    ).all()
    for post, campaign_name in problems:
        new += record_event(
            session=session,
            kind=NotificationKind.POST_PROBLEM,
            key=f"post:{post.id}:{post.state.value}:{_stamp(post.state_changed_at)}",
            object_type="post",
            object_id=post.id,
            occurred_at=post.state_changed_at,
            now=now,
            detail={
                "campaign": campaign_name,
                "community": communities.get(post.community_id, ""),
                "channel": post.channel.value,
                "state": post.state.value,
            },
        )

    for campaign in session.scalars(
        select(Campaign).where(
            Campaign.status == CampaignStatus.DRAFT, Campaign.updated_at >= since
        )
    ):
        new += record_event(
            session=session,
            kind=NotificationKind.DRAFT_WAITING,
            key=f"campaign:{campaign.id}:{campaign.source_hash}",
            object_type="campaign",
            object_id=campaign.id,
            occurred_at=campaign.updated_at,
            now=now,
            detail={
                "campaign": campaign.name,
                "slug": campaign.slug,
                "created_by": campaign.created_by,
            },
        )

    first_refusal = session.execute(
        select(func.min(Attempt.started_at))
        .join(Post, Post.id == Attempt.post_id)
        .where(
            Post.channel == ChannelKind.YOUTUBE,
            Attempt.error_code.like(f"{REFUSAL_CODE_PREFIX}%"),
            Attempt.started_at >= max(since, now - timedelta(days=1)),
        )
    ).scalar()
    if first_refusal is not None:
        day = quota_day(first_refusal)
        new += record_event(
            session=session,
            kind=NotificationKind.YOUTUBE_QUOTA,
            key=f"youtube-quota:{day.isoformat()}",
            object_type="quota",
            object_id=day.isoformat(),
            occurred_at=first_refusal,
            now=now,
            detail={
                "day": day.isoformat(),
                "reset": next_reset(first_refusal).astimezone(PACIFIC).isoformat(),
            },
        )
    return new


@dataclass(frozen=True)
class Claimed:
    """A digest this run holds (its row committed in state ``sending``)."""

    digest_id: int
    user_id: int
    kind: NotificationKind
    window_start: datetime


@dataclass
class RunResult:
    noticed: int = 0
    sent: int = 0
    failed: int = 0
    unconfirmed: int = 0
    released: int = 0
    line_sent: int = 0  # digests also sent through the programme's LINE Official Account


def _events_of(
    session: Session, kind: NotificationKind, window_start: datetime
) -> list[NotificationEvent]:
    return list(
        session.scalars(
            select(NotificationEvent)
            .where(
                NotificationEvent.kind == kind,
                NotificationEvent.window_start == window_start,
            )
            .order_by(NotificationEvent.occurred_at, NotificationEvent.id)
        )
    )


def _for(user: User, events: Sequence[NotificationEvent]) -> list[NotificationEvent]:
    """The events ``user`` should hear of: never a draft they applied themselves."""
    return [
        e
        for e in events
        if not (
            e.kind == NotificationKind.DRAFT_WAITING and e.detail.get("created_by") == user.username
        )
    ]


def claim_digests(*, engine: Engine, now: datetime, grace: timedelta = GRACE) -> list[Claimed]:
    """Claim every digest that is due (its hour ended, not yet claimed by anyone); the
    claims are committed before this returns."""
    claimed: list[Claimed] = []
    # BEGIN IMMEDIATE on SQLite: two runs take turns instead of failing to upgrade a lock.
    with write_session(engine) as session:
        windows = session.execute(
            select(NotificationEvent.kind, NotificationEvent.window_start)
            .where(
                NotificationEvent.window_start <= now - WINDOW - grace,
                NotificationEvent.window_start >= window_of(now - LOOKBACK),
            )
            .distinct()
        ).all()
        if not windows:
            return []
        users = session.scalars(
            select(User).where(User.active.is_(True), User.email.is_not(None)).order_by(User.id)
        ).all()
        for kind, window_start in sorted(windows, key=lambda w: (w[1], w[0].value)):
            events = _events_of(session, kind, window_start)
            for user in users:
                if not wants(user, kind) or not _for(user, events):
                    continue
                digest_id = _insert_ignoring_conflict(
                    session,
                    NotificationDigest.__table__,
                    {
                        "user_id": user.id,
                        "kind": kind.value,
                        "window_start": window_start,
                        "state": DigestState.SENDING.value,
                        "events": len(_for(user, events)),
                        "address": user.email,
                        "claimed_at": now,
                    },
                )
                if digest_id is not None:
                    claimed.append(Claimed(digest_id, user.id, kind, window_start))
    return claimed


def notification_message(
    *, subject: str, text: str, sender: str, to: str, domain: str, now: datetime
) -> EmailMessage:
    """A plain-text UTF-8 message from the service to one member of staff."""
    message = EmailMessage(policy=SMTP)
    message["Subject"] = subject
    message["From"] = Address("GLO", addr_spec=sender)
    message["To"] = to
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = email.utils.make_msgid("glo-notify", domain=domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    message.set_content(text)
    return message


def send_claimed(
    *,
    engine: Engine,
    claims: Sequence[Claimed],
    settings: Settings,
    now: datetime,
    adapter: EmailAdapter | None = None,
) -> RunResult:
    """Send each claimed digest through the relay and record what became of it."""
    result = RunResult()
    if not claims:
        return result
    adapter = adapter or email_adapter_from_settings(settings)
    sender = settings.email_from
    domain = sender.rpartition("@")[2] or "localhost"
    smtp: EmailSession | None = None
    try:
        for claim in claims:
            with write_session(engine) as session:
                user = session.get(User, claim.user_id)
                digest = session.get(NotificationDigest, claim.digest_id)
                assert user is not None and digest is not None
                events = _for(user, _events_of(session, claim.kind, claim.window_start))
                links: dict[str, str] = {}
                if claim.kind in LINKED_KINDS:
                    for event in events:
                        account = session.get(ChannelAccount, int(event.object_id))
                        if account is None:
                            continue
                        issued = create_link(
                            session=session,
                            account=account,
                            created_by="notifications",
                            secret=settings.web_secret,
                            base_url=settings.public_base_url,
                            now=now,
                        )
                        links[event.object_id] = issued.url
                        audit(
                            session=session,
                            user=None,
                            actor="notifications",
                            action="account.reconnect_link",
                            object_type="account",
                            object_id=account.slug,
                            link_id=issued.link_id,
                            expires_at=issued.expires_at.isoformat(),
                            mailed_to=user.username,
                        )
                language = language_of(user.language)
                mail = digest_mail(
                    kind=claim.kind,
                    events=[
                        EventView(e.kind, e.object_id, e.occurred_at, dict(e.detail))
                        for e in events
                    ],
                    name=user.display_name or user.username,
                    language=language,
                    clock=Clock(
                        language=language, buddhist_era=user.buddhist_era, zone=settings.zone
                    ),
                    window_start=claim.window_start,
                    base_url=settings.public_base_url,
                    links=links,
                )
                message = notification_message(
                    subject=mail.subject,
                    text=mail.text,
                    sender=sender,
                    to=digest.address,
                    domain=domain,
                    now=now,
                )
                digest.message_id = str(message["Message-ID"])
            # The links are committed before the mail that carries them goes out.
            state: DigestState | None = DigestState.SENT
            error_code: str | None = None
            try:
                if smtp is None:
                    smtp = adapter.connect()
                smtp.send(message)
            except OutcomeUnknown as exc:
                state, error_code = DigestState.UNCONFIRMED, exc.code
            except TransientError as exc:
                state, error_code = None, exc.code
            except ChannelError as exc:
                state, error_code = DigestState.FAILED, exc.code
            with write_session(engine) as session:
                if state is None:
                    # Nothing reached the relay: let the next run claim it again.
                    session.execute(
                        delete(NotificationDigest).where(NotificationDigest.id == claim.digest_id)
                    )
                    result.released += 1
                    log.warning("notification digest %s not sent: %s", claim.digest_id, error_code)
                    continue
                session.execute(
                    update(NotificationDigest)
                    .where(NotificationDigest.id == claim.digest_id)
                    .values(
                        state=state,
                        error_code=error_code,
                        sent_at=now if state == DigestState.SENT else None,
                    )
                )
            if state == DigestState.SENT:
                result.sent += 1
            elif state == DigestState.UNCONFIRMED:
                result.unconfirmed += 1
            else:
                result.failed += 1
    finally:
        if smtp is not None:
            smtp.close()
    return result


def line_recipients(settings: Settings) -> list[str]:
    """The staff LINE user ids of ``MARKETING_NOTIFY_LINE_USERS`` (empty ones dropped)."""
    return [u.strip() for u in settings.notify_line_users.split(",") if u.strip()]


def send_line_notices(*, engine: Engine, claims: Sequence[Claimed], settings: Settings) -> int:
    """When a LINE account is configured for staff notifications, send each digest claimed
    in this run (one per kind and hour, in Thai, without the delegated links e-mail carries:
    a LINE chat is not one person's mailbox) to the staff LINE ids through
    :meth:`channels.line.LineAdapter.notify`, under a retry key from the digest's kind and
    hour so a repeat is never delivered twice.  Returns how many were sent; a failure is
    logged and leaves the e-mail digests as they are."""
    users = line_recipients(settings)
    if not settings.notify_line_account or not users or not claims:
        return 0
    from pydantic import SecretStr

    from channels.base import Account
    from channels.line import LineSettings, line_adapter
    from channels.ratelimit import MemoryTokenBucket
    from marketing.settings import MissingSecret, get_secret
    from marketing.token_store import load_tokens
    from marketing.web.i18n import translations

    sent = 0
    windows = sorted({(c.kind, c.window_start) for c in claims}, key=lambda w: (w[1], w[0].value))
    with write_session(engine) as session:
        row = session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.slug == settings.notify_line_account,
                ChannelAccount.kind == ChannelKind.LINE,
            )
        ).first()
        if row is None:
            log.warning("no LINE account %s for notifications", settings.notify_line_account)
            return 0
        stored = load_tokens(session=session, account_id=row.id, settings=settings)
        token: SecretStr | None = stored.access_token if stored else None
        if token is None and row.secret_name:
            try:
                token = get_secret(row.secret_name, settings)
            except MissingSecret:
                token = None
        account = Account(
            kind=ChannelKind.LINE.value,
            external_id=row.external_id,
            display_name=row.display_name,
            token=token,
        )
        clock = Clock(language="th", buddhist_era=True, zone=settings.zone)
        texts = []
        for kind, window_start in windows:
            events = _events_of(session, kind, window_start)
            mail = digest_mail(
                kind=kind,
                events=[
                    EventView(e.kind, e.object_id, e.occurred_at, dict(e.detail)) for e in events
                ],
                name=translations("th").gettext("the team"),
                language="th",
                clock=clock,
                window_start=window_start,
                base_url=settings.public_base_url,
            )
            marker = str(
                uuid.uuid5(
                    uuid.NAMESPACE_URL, f"glo-notify:{kind.value}:{window_start.isoformat()}"
                )
            )
            texts.append((marker, f"{mail.subject}\n\n{mail.text}"[:LINE_TEXT_MAX]))
    adapter = line_adapter(
        LineSettings.model_validate(settings, from_attributes=True),
        hourly=MemoryTokenBucket(rate=1, capacity=1),  # multicasts are not spaced hourly
    )
    for marker, text in texts:
        try:
            adapter.notify(account, users, text, marker=marker)
        except ChannelError as exc:
            log.warning("LINE notification %s not sent: %s", marker, exc.code)
            continue
        sent += 1
    return sent


def run(
    *,
    engine: Engine | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    adapter: EmailAdapter | None = None,
) -> RunResult:
    """Notice new events, then claim and send every digest that is due."""
    settings = settings or get_settings()
    now = now or utcnow()
    engine = engine or get_engine()
    with write_session(engine) as session:
        noticed = notice_events(session=session, now=now)
    claims = claim_digests(engine=engine, now=now)
    result = send_claimed(engine=engine, claims=claims, settings=settings, now=now, adapter=adapter)
    result.line_sent = send_line_notices(engine=engine, claims=claims, settings=settings)
    result.noticed = noticed
    return result


def digests_of(*, session: Session, user: User) -> list[NotificationDigest]:
    """The person's latest digests, newest first (for their settings page)."""
    return list(
        session.scalars(
            select(NotificationDigest)
            .where(NotificationDigest.user_id == user.id)
            .order_by(NotificationDigest.window_start.desc(), NotificationDigest.id.desc())
            .limit(20)
        )
    )


def _account_detail(
    session: Session, account: ChannelAccount, communities: dict[int, str], **extra: str
) -> dict[str, str]:
    """What an account event's digest line shows, with ``extra`` (its health, or its end)."""
    return {
        "name": account.display_name,
        "slug": account.slug,
        "channel": account.kind.value,
        **extra,
        "community": communities.get(account.community_id or 0, ""),
        "page": accounts_page(session=session, account=account),
    }
