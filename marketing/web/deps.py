"""What every request needs: a database session, the signed-in user, role checks and CSRF.

Who is asking
    A script sends ``Authorization: Bearer <token>`` (see :func:`marketing.web.staff.issue_token`);
    a person has a session cookie, signed with ``MARKETING_WEB_SECRET`` by Starlette's
    ``SessionMiddleware``, holding the random id of a server-side session record
    (:class:`~marketing.models.WebSession`).  The record, not the cookie, says whether the
    session still counts: signing out, a password change or switching the user off end it,
    so a copy of the cookie taken before is worth nothing after.

CSRF
    A session holds a random token (the synchronizer-token pattern).  Every form carries it in
    a hidden ``csrf_token`` field; a script that uses a session instead of a bearer token
    sends it as ``X-CSRF-Token``.  A state-changing request authenticated by the cookie
    without the matching token is refused (403) before the endpoint runs.  Bearer requests
    need no token: a browser never adds that header on its own.  SameSite=Lax on the cookie
    is a second line, not the defence.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from marketing.db import session_factory
from marketing.models import Role, User
from marketing.settings import Settings
from marketing.web.staff import end_session, start_session, user_for_session, user_for_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
SESSION_ID = "sid"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """Nobody (valid) is signed in."""


class NotAllowed(Exception):
    """The user's role does not allow this."""

    def __init__(self, needed: Role, reason: str | None = None) -> None:
        super().__init__(reason or f"needs the {needed.value} role")
        self.needed = needed
        self.reason = reason


class CsrfRejected(Exception):
    """A state-changing request by session cookie without the session's CSRF token."""


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def now_of(request: Request) -> datetime:
    """What time it is for the app (its injected clock), aware, in UTC."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock().astimezone(UTC)


def today_of(request: Request) -> date:
    """Today in the app's time zone, by the app's clock."""
    return now_of(request).astimezone(settings_of(request).zone).date()


def client_address(request: Request) -> str:
    """The address the request came from (uvicorn's proxy-header setting decides whether a
    proxy's ``X-Forwarded-For`` is believed)."""
    return request.client.host if request.client else ""


def db(request: Request) -> Iterator[Session]:
    """A session for this request; endpoints commit what they change, the rest rolls back."""
    session = session_factory(engine_of(request))()
    try:
        yield session
    finally:
        session.close()


def sign_in(request: Request, session: Session, user: User) -> None:
    """Start a session for ``user`` (a fresh one: no fixation of an earlier session); the
    caller commits."""
    sid = start_session(
        session=session,
        user=user,
        address=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
        now=now_of(request),
    )
    request.session.clear()
    request.session[SESSION_ID] = sid
    request.session[CSRF_FIELD] = secrets.token_urlsafe(32)


def sign_out(request: Request, session: Session, reason: str = "sign-out") -> None:
    """End this browser's session (the record and the cookie); the caller commits."""
    sid = request.session.get(SESSION_ID)
    if isinstance(sid, str):
        end_session(session=session, sid=sid, reason=reason, now=now_of(request))
    request.session.clear()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def check_csrf(request: Request) -> None:
    """Raise CsrfRejected unless the request carries the session's token (form or header)."""
    expected = request.session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfRejected()


def optional_user(request: Request, session: Annotated[Session, Depends(db)]) -> User | None:
    """The user behind this request (bearer token or session), or None."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise SignInRequired()
        user = user_for_token(session=session, token=token.strip(), now=now_of(request))
        if user is None:
            raise SignInRequired()
        session.commit()  # last_used_at
        request.state.via_token = True
        return user
    sid = request.session.get(SESSION_ID)
    if not isinstance(sid, str):
        return None
    user = user_for_session(session=session, sid=sid, now=now_of(request))
    if session.dirty:
        session.commit()  # last_seen_at, or the end of an expired session
    if user is None:
        request.session.clear()
        return None
    return user


def require(role: Role) -> Callable[..., Awaitable[User]]:
    """A dependency: the signed-in user if their role allows ``role``; for a state-changing
    request by session cookie, the CSRF token must match too."""

    async def dependency(
        request: Request, user: Annotated[User | None, Depends(optional_user)]
    ) -> User:
        if user is None:
            raise SignInRequired()
        if request.method not in SAFE_METHODS and not getattr(request.state, "via_token", False):
            await check_csrf(request)
        request.state.user = user
        if not user.role.allows(role):
            raise NotAllowed(role)
        return user

    dependency.__name__ = f"require_{role.value}"
    return dependency


viewer = require(Role.VIEWER)
editor = require(Role.EDITOR)
approver = require(Role.APPROVER)
admin = require(Role.ADMIN)

# Parameter types for endpoints: ``user: Editor`` signs in, checks the role and CSRF.
DB = Annotated[Session, Depends(db)]
MaybeUser = Annotated[User | None, Depends(optional_user)]
Viewer = Annotated[User, Depends(viewer)]
Editor = Annotated[User, Depends(editor)]
Approver = Annotated[User, Depends(approver)]
Admin = Annotated[User, Depends(admin)]
