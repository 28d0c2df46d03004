"""Staff accounts: passwords (argon2id), web sessions, API tokens for scripts, and the audit
log.

Used by the web app and by ``marketing users``; no HTTP here.

* Passwords are hashed with argon2-cffi's :class:`~argon2.PasswordHasher` (argon2id, RFC 9106
  low-memory profile).  A hash made with older parameters is replaced at the next sign-in.
  Hashing is slow on purpose: callers in the web app run it in a worker thread.
* A web session is a :class:`~marketing.models.WebSession` row; the browser's signed cookie
  holds its random id and the database only the id's SHA-256.  Signing out, a password
  change and switching the user off end it (:func:`end_sessions`).
* An API token is 32 random bytes shown once; the database keeps only its SHA-256 (a random
  token of that length needs no slow hash: there is nothing to guess).  It expires
  (:data:`TOKEN_DAYS` by default) and is revoked by hand or by a password change.
* :func:`audit` writes who did what to which object, in the caller's transaction, so a
  change and its log entry commit together or not at all.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from marketing.db import utcnow
from marketing.models import ApiToken, AuditLog, Role, User, WebSession

if TYPE_CHECKING:
    from campaigns.lifecycle import ApplySummary

MIN_PASSWORD_LENGTH = 10
LANGUAGES = ("th", "en")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
TOKEN_PREFIX = "mkt_"
TOKEN_DAYS = 90  # an API token's life unless its maker asks for another
TOKEN_MAX_DAYS = 366
SESSION_HOURS = 12  # a web session's life from sign-in (the cookie's too)
SESSION_SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often

_hasher = PasswordHasher()


@functools.cache
def _unknown_user_hash() -> str:
    """Checked against when the username is unknown, so a wrong name costs as long as a wrong
    password and the answer time does not tell which names exist.  Made on first use, not at
    import: hashing takes a noticeable moment, and `marketing users ...` imports this module."""
    return _hasher.hash(secrets.token_urlsafe(16))


class StaffError(ValueError):
    """A request about staff accounts that cannot be done; the message says why."""


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (refused if shorter than the minimum)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def check_password(
    *, session: Session, username: str, password: str, now: datetime | None = None
) -> tuple[User | None, str]:
    """The active user with this name and password and ``""``, or None and why not
    (``unknown-name``, ``wrong-password``, ``switched-off``: for the audit log, never for the
    person signing in).  Records the sign-in time.  Slow on purpose (argon2)."""
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    stored = user.password_hash if user is not None else _unknown_user_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None, "unknown-name" if user is None else "wrong-password"
    if user is None:
        return None, "unknown-name"
    if not user.active:
        return None, "switched-off"
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = now or utcnow()
    return user, ""


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None; records the sign-in time."""
    return check_password(session=session, username=username, password=password)[0]


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    language: str = "th",
    email: str = "",
) -> User:
    """A new active user; StaffError if the name is taken, or it or the e-mail address is
    invalid."""
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise StaffError(
            f"{username!r} is not a valid user name: 2-80 characters, lower-case letters, "
            "digits, '.', '_' or '-', starting with a letter or digit"
        )
    if language not in LANGUAGES:
        raise StaffError(f"language must be one of {', '.join(LANGUAGES)}")
    if session.scalars(select(User.id).where(User.username == username)).first() is not None:
        raise StaffError(f"user {username!r} exists already")
    email = email.strip()
    if email:
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError as exc:
            raise StaffError(f"{email!r} is not a valid e-mail address: {exc}") from None
    user = User(
        username=username,
        email=email or None,
        display_name=display_name.strip() or username,
        password_hash=hash_password(password),
        role=role,
        language=language,
    )
    session.add(user)
    session.flush()
    return user


def find_user(*, session: Session, username: str) -> User:
    """The user called ``username``; StaffError if there is none."""
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    if user is None:
        raise StaffError(f"there is no user {username!r}; `marketing users list` shows them")
    return user


def token_hash(token: str) -> str:
    """The SHA-256 of ``token`` in hex, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def set_password(
    *, session: Session, user: User, password: str, now: datetime | None = None
) -> dict[str, int]:
    """Give ``user`` a new password (StaffError if too short); every session of theirs ends
    and every API token is revoked.  Returns how many of each, for the audit log."""
    user.password_hash = hash_password(password)
    now = now or utcnow()
    return {
        "sessions_ended": end_sessions(session=session, user=user, reason="password", now=now),
        "tokens_revoked": revoke_tokens(session=session, user=user, now=now),
    }


def switch_off(*, session: Session, user: User, now: datetime | None = None) -> dict[str, int]:
    """Switch ``user`` off: they can no longer sign in; their sessions end and their tokens
    are revoked (switching them on again gives back neither)."""
    user.active = False
    now = now or utcnow()
    return {
        "sessions_ended": end_sessions(session=session, user=user, reason="disabled", now=now),
        "tokens_revoked": revoke_tokens(session=session, user=user, now=now),
    }


def issue_token(
    *,
    session: Session,
    user: User,
    name: str = "",
    days: int = TOKEN_DAYS,
    now: datetime | None = None,
) -> str:
    """A new API token for ``user`` that expires after ``days``; the returned value is never
    stored and cannot be shown again."""
    if not 1 <= days <= TOKEN_MAX_DAYS:
        raise StaffError(f"a token lives 1 to {TOKEN_MAX_DAYS} days, not {days}")
    now = now or utcnow()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=name,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    session.flush()
    return token


def user_for_token(*, session: Session, token: str, now: datetime | None = None) -> User | None:
    """The active user a live (not revoked, not expired) API token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    now = now or utcnow()
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now or not row.user.active:
        return None
    row.last_used_at = now
    return row.user


def tokens_of(*, session: Session, user: User | None) -> Sequence[ApiToken]:
    """The tokens of ``user`` (everyone's for None), newest first, revoked and expired ones
    included (the page shows their state)."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return session.scalars(query).all()


def revoke_token(*, session: Session, token_id: int, now: datetime | None = None) -> ApiToken:
    """Revoke one token by its id (StaffError if there is none); revoking twice is harmless."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise StaffError(f"there is no token {token_id}; `marketing users tokens` lists them")
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
    return row


def revoke_tokens(*, session: Session, user: User, now: datetime | None = None) -> int:
    """Revoke every token of ``user`` not revoked yet; how many."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def start_session(
    *,
    session: Session,
    user: User,
    address: str = "",
    user_agent: str = "",
    now: datetime | None = None,
) -> str:
    """A new web session for ``user``; returns its id for the cookie (only its hash is kept)."""
    now = now or utcnow()
    sid = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=token_hash(sid),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
            address=address[:100],
            user_agent=user_agent[:200],
        )
    )
    session.flush()
    return sid


def user_for_session(*, session: Session, sid: str, now: datetime | None = None) -> User | None:
    """The active user of a live session id, or None; notes when the session was last seen."""
    if not sid or len(sid) > 100:
        return None
    now = now or utcnow()
    row = session.scalars(
        select(WebSession).where(WebSession.token_hash == token_hash(sid))
    ).first()
    if row is None or row.ended_at is not None or not row.user.active:
        return None
    if row.expires_at <= now:
        row.ended_at, row.end_reason = now, "expired"
        return None
    if now - row.last_seen_at >= SESSION_SEEN_EVERY:
        row.last_seen_at = now
    return row.user


def live_sessions(*, session: Session, user: User, now: datetime) -> Sequence[WebSession]:
    """The sessions of ``user`` that still count, most recently seen first."""
    return session.scalars(
        select(WebSession)
        .where(
            WebSession.user_id == user.id,
            WebSession.ended_at.is_(None),
            WebSession.expires_at > now,
        )
        .order_by(WebSession.last_seen_at.desc(), WebSession.id.desc())
    ).all()


def end_session(*, session: Session, sid: str, reason: str, now: datetime | None = None) -> None:
    """End the session with this id (signing out); nothing if it is unknown or over."""
    session.execute(
        update(WebSession)
        .where(WebSession.token_hash == token_hash(sid), WebSession.ended_at.is_(None))
        .values(ended_at=now or utcnow(), end_reason=reason)
    )


def end_sessions(
    *,
    session: Session,
    user: User,
    reason: str,
    now: datetime | None = None,
) -> int:
    """End every live session of ``user``; how many."""
    result = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user.id, WebSession.ended_at.is_(None))
        .values(ended_at=now or utcnow(), end_reason=reason)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def audit(
    *,
    session: Session,
    user: User | None,
    action: str,
    object_type: str,
    object_id: str | int,
    actor: str | None = None,
    **detail: Any,
) -> AuditLog:
    """Record that ``user`` (or ``actor``, for a change made outside a sign-in) did ``action``
    to an object, in the caller's transaction."""
    entry = AuditLog(
        actor=actor or (user.username if user is not None else "system"),
        user_id=user.id if user is not None else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        detail=detail,
        at=utcnow(),
    )
    session.add(entry)
    return entry


def audit_apply(
    *,
    session: Session,
    summary: ApplySummary,
    user: User | None,
    actor: str | None = None,
    via: str,
) -> AuditLog | None:
    """Record a campaign apply that changed something (the entry the four-eyes rule reads:
    this person may not approve this change); None when nothing changed."""
    from campaigns.lifecycle import APPLY_ACTION  # campaigns loads Jinja2: only when applying

    if not summary.changed:
        return None
    return audit(
        session=session,
        user=user,
        actor=actor,
        action=APPLY_ACTION,
        object_type="campaign",
        object_id=summary.slug,
        added=summary.added,
        updated=summary.updated,
        cancelled=summary.cancelled,
        back_to_draft=summary.back_to_draft,
        via=via,
    )
