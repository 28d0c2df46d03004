"""Staff accounts: passwords (argon2id), API tokens for scripts, and the audit log.

Used by the web app and by ``marketing users``; no HTTP here.

* Passwords are hashed with argon2-cffi's :class:`~argon2.PasswordHasher` (argon2id, RFC 9106
  low-memory profile).  A hash made with older parameters is replaced at the next sign-in.
* An API token is 32 random bytes shown once; the database keeps only its SHA-256 (a random
  token of that length needs no slow hash: there is nothing to guess).
* :func:`audit` writes who did what to which object, in the caller's transaction, so a
  change and its log entry commit together or not at all.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketing.db import utcnow
from marketing.models import ApiToken, AuditLog, Role, User

MIN_PASSWORD_LENGTH = 10
LANGUAGES = ("th", "en")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
TOKEN_PREFIX = "mkt_"

_hasher = PasswordHasher()
# Checked against when the username is unknown, so a wrong name costs as long as a wrong
# password and the answer time does not tell which names exist.
_UNKNOWN_USER_HASH = _hasher.hash(secrets.token_urlsafe(16))


class StaffError(ValueError):
    """A request about staff accounts that cannot be done; the message says why."""


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (refused if shorter than the minimum)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None; records the sign-in time."""
    user = session.scalars(select(User).where(User.username == username.strip().lower())).first()
    stored = user.password_hash if user is not None else _UNKNOWN_USER_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    language: str = "th",
) -> User:
    """A new active user; StaffError if the name is taken or invalid."""
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
    user = User(
        username=username,
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


def issue_token(*, session: Session, user: User, name: str = "") -> str:
    """A new API token for ``user``; the returned value is never stored and cannot be shown
    again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=token_hash(token)))
    session.flush()
    return token


def user_for_token(*, session: Session, token: str, now: datetime | None = None) -> User | None:
    """The active user a live API token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    row.last_used_at = now or utcnow()
    return row.user


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
