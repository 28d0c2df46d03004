"""Signing in and out, a person's own settings, and (for admins) users and the audit log."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from limits.errors import StorageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from marketing.models import ApiToken, AuditLog, Role, User
from marketing.notifications import digests_of, kinds_for
from marketing.web.deps import (
    DB,
    Admin,
    MaybeUser,
    Viewer,
    check_csrf,
    client_address,
    now_of,
    sign_in,
    sign_out,
)
from marketing.web.i18n import LANGUAGES, language_of
from marketing.web.notices import kind_labels
from marketing.web.rendering import clock_for, flash, gettext_for, render
from marketing.web.staff import (
    StaffError,
    audit,
    check_password,
    create_user,
    find_user,
    live_sessions,
    set_password,
    switch_off,
    tokens_of,
)
from marketing.web.throttle import SignInThrottle, SignInThrottled

router = APIRouter(include_in_schema=False)

AUDIT_PAGE = 100


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
def login_page(
    request: Request,
    user: MaybeUser,
    next_: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next_), status_code=303)
    return render(request, "login.html", user=None, next=safe_next(next_), error=None)


def _throttled(
    request: Request, until: datetime, template: str, user: User | None, next_: str = "/"
) -> Response:
    """The page that says when to try again (429, with Retry-After)."""
    _ = gettext_for(user)
    seconds = max(1, math.ceil((until - now_of(request)).total_seconds()))
    answer = render(
        request,
        template,
        user=user,
        status_code=429,
        next=next_,
        error=_(
            "Too many failed sign-ins. Try again after %(time)s (in about %(minutes)s minutes)."
        )
        % {"time": clock_for(request, user).when(until), "minutes": math.ceil(seconds / 60)},
    )
    answer.headers["Retry-After"] = str(seconds)
    return answer


def _audit_failure(
    request: Request,
    session: Session,
    *,
    action: str,
    name: str,
    reason: str,
    locked_until: datetime | None,
) -> None:
    """A refused password in the audit log: the name tried, where from and why (never the
    password)."""
    name = name.strip()[:80]
    audit(
        session=session,
        user=None,
        actor=name or "-",
        action=action,
        object_type="user",
        object_id=name.lower() or "-",
        address=client_address(request),
        reason=reason,
        locked_until=locked_until.isoformat() if locked_until else None,
    )


def _login(
    request: Request, session: Session, username: str, password: str, target: str
) -> Response:
    """The blocking part of signing in (throttle, argon2, database), run in a worker thread."""
    _ = gettext_for(None)
    throttle: SignInThrottle = request.app.state.throttle
    try:
        attempt = throttle.begin(name=username, address=client_address(request))
    except SignInThrottled as exc:
        return _throttled(request, exc.until, "login.html", None, target)
    except StorageError:
        return render(
            request,
            "login.html",
            user=None,
            status_code=503,
            next=target,
            error=_(
                "Signing in is not possible now: the sign-in counter (Redis) does not answer. "
                "Try again in a few minutes, or tell the administrator."
            ),
        )
    user, reason = check_password(
        session=session, username=username, password=password, now=now_of(request)
    )
    if user is None:
        session.rollback()
        locked_until = attempt.failed()
        _audit_failure(
            request,
            session,
            action="user.sign_in_failed",
            name=username,
            reason=reason,
            locked_until=locked_until,
        )
        session.commit()
        return render(
            request,
            "login.html",
            user=None,
            status_code=401,
            next=target,
            error=_("Wrong user name or password."),
        )
    attempt.succeeded()
    audit(
        session=session,
        user=user,
        action="user.sign_in",
        object_type="user",
        object_id=user.id,
        address=client_address(request),
    )
    sign_in(request, session, user)
    session.commit()
    return RedirectResponse(target, status_code=303)


@router.post("/login")
async def login(request: Request, session: DB) -> Response:
    await check_csrf(request)
    form = await request.form()
    username = str(form.get("username") or "")[:200]
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or "/"))
    # argon2 takes tens of milliseconds of CPU on purpose: never on the event loop.
    return await run_in_threadpool(_login, request, session, username, password, target)


@router.post("/logout")
def logout(request: Request, user: Viewer, session: DB) -> Response:
    sign_out(request, session)
    session.commit()
    return RedirectResponse("/login", status_code=303)


@router.get("/account")
def account_page(request: Request, user: Viewer, session: DB) -> Response:
    sessions = live_sessions(session=session, user=user, now=now_of(request))
    labels = kind_labels(language_of(user.language))
    return render(
        request,
        "account.html",
        user=user,
        error=None,
        sessions=sessions,
        notification_kinds=[(k.value, labels[k.value]) for k in kinds_for(user.role)],
        digests=digests_of(session=session, user=user),
    )


@router.post("/account")
def account_save(
    request: Request,
    language: Annotated[str, Form()],
    user: Viewer,
    session: DB,
    buddhist_era: Annotated[bool, Form()] = False,
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    me = session.get(User, user.id)
    assert me is not None
    me.language = language if language in LANGUAGES else me.language
    me.buddhist_era = buddhist_era
    if display_name.strip():
        me.display_name = display_name.strip()
    audit(
        session=session,
        user=me,
        action="user.preferences",
        object_type="user",
        object_id=me.id,
        language=me.language,
        buddhist_era=me.buddhist_era,
    )
    session.commit()
    _ = gettext_for(me)
    flash(request, _("Your settings were saved."))
    return RedirectResponse("/account", status_code=303)


@router.post("/account/password")
def account_password(
    request: Request,
    current: Annotated[str, Form()],
    new: Annotated[str, Form()],
    user: Viewer,
    session: DB,
) -> Response:
    _ = gettext_for(user)
    throttle: SignInThrottle = request.app.state.throttle
    try:
        # The current password is a guess like any other: the same counts apply.
        attempt = throttle.begin(name=user.username, address=client_address(request))
    except SignInThrottled as exc:
        return _throttled(request, exc.until, "account.html", user)
    me, reason = check_password(session=session, username=user.username, password=current)
    if me is None:
        session.rollback()
        _audit_failure(
            request,
            session,
            action="user.password_failed",
            name=user.username,
            reason=reason,
            locked_until=attempt.failed(),
        )
        session.commit()
        return render(
            request,
            "account.html",
            user=user,
            status_code=400,
            error=_("The current password is wrong."),
        )
    attempt.succeeded()
    try:
        ended = set_password(session=session, user=me, password=new, now=now_of(request))
    except StaffError:
        session.rollback()
        return render(
            request,
            "account.html",
            user=user,
            status_code=400,
            error=_("A password needs at least 10 characters."),
        )
    audit(
        session=session,
        user=me,
        action="user.password",
        object_type="user",
        object_id=me.id,
        sessions_ended=ended.get("sessions_ended", 0),
        tokens_revoked=ended.get("tokens_revoked", 0),
    )
    sign_in(request, session, me)  # a new session for this browser; every other one ended
    session.commit()
    flash(
        request,
        _(
            "Your password was changed; your other sessions were signed out and your API "
            "tokens revoked."
        ),
    )
    return RedirectResponse("/account", status_code=303)


@router.get("/account/tokens")
def tokens_page(request: Request, user: Viewer, session: DB) -> Response:
    """One's own API tokens; an admin sees everyone's."""
    tokens = tokens_of(session=session, user=None if user.role == Role.ADMIN else user)
    return render(
        request,
        "tokens.html",
        user=user,
        tokens=tokens,
        now=now_of(request),
        everyone=user.role == Role.ADMIN,
    )


@router.post("/account/tokens/{token_id}/revoke")
def token_revoke(request: Request, token_id: int, user: Viewer, session: DB) -> Response:
    _ = gettext_for(user)
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != user.id and user.role != Role.ADMIN):
        # Someone else's token is as good as none: its existence is not told.
        flash(request, _("There is no such token."), "error")
        return RedirectResponse("/account/tokens", status_code=303)
    if token.revoked_at is None:
        token.revoked_at = now_of(request)
        audit(
            session=session,
            user=user,
            action="user.token_revoke",
            object_type="api_token",
            object_id=token.id,
            owner=token.user.username,
            name=token.name,
        )
        session.commit()
    flash(request, _("The token was revoked; scripts using it are refused from now on."))
    return RedirectResponse("/account/tokens", status_code=303)


@router.get("/admin/users")
def users_page(
    request: Request,
    user: Admin,
    session: DB,
) -> Response:
    users = session.scalars(select(User).order_by(User.username)).all()
    return render(request, "users.html", user=user, users=users, roles=list(Role), error=None)


@router.post("/admin/users")
def users_add(
    request: Request,
    user: Admin,
    session: DB,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form()],
    role: Annotated[Role, Form()],
    display_name: Annotated[str, Form(max_length=200)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    try:
        created = create_user(
            session=session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            email=email,
        )
    except StaffError as exc:
        session.rollback()
        users = session.scalars(select(User).order_by(User.username)).all()
        return render(
            request,
            "users.html",
            user=user,
            users=users,
            roles=list(Role),
            error=str(exc),
            status_code=400,
        )
    audit(
        session=session,
        user=user,
        action="user.create",
        object_type="user",
        object_id=created.id,
        username=created.username,
        role=created.role.value,
    )
    session.commit()
    _ = gettext_for(user)
    flash(request, _("User %(name)s was created.") % {"name": created.username})
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{username}")
def users_change(
    request: Request,
    username: str,
    role: Annotated[Role, Form()],
    user: Admin,
    session: DB,
    active: Annotated[bool, Form()] = False,
) -> Response:
    _ = gettext_for(user)
    try:
        target = find_user(session=session, username=username)
    except StaffError:
        session.rollback()
        flash(request, _("There is no such user."), "error")
        return RedirectResponse("/admin/users", status_code=303)
    if target.id == user.id and (role != Role.ADMIN or not active):
        flash(request, _("You cannot take away your own admin role or account."), "error")
        return RedirectResponse("/admin/users", status_code=303)
    before = {"role": target.role.value, "active": target.active}
    ended = (
        switch_off(session=session, user=target, now=now_of(request))
        if target.active and not active
        else {}
    )
    target.role, target.active = role, active
    audit(
        session=session,
        user=user,
        action="user.change",
        object_type="user",
        object_id=target.id,
        username=target.username,
        before=before,
        after={"role": role.value, "active": active},
        sessions_ended=ended.get("sessions_ended", 0),
        tokens_revoked=ended.get("tokens_revoked", 0),
    )
    session.commit()
    flash(request, _("User %(name)s was changed.") % {"name": target.username})
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/audit")
def audit_page(
    request: Request,
    user: Admin,
    session: DB,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    total = session.scalar(select(func.count()).select_from(AuditLog)) or 0
    people = session.scalars(select(User)).all()
    entries = session.scalars(
        select(AuditLog)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .offset((page - 1) * AUDIT_PAGE)
        .limit(AUDIT_PAGE)
    ).all()
    return render(
        request,
        "audit.html",
        user=user,
        entries=entries,
        # Staff are a few dozen people: every name, for the sentences' people and objects.
        names={u.username: u.display_name or u.username for u in people},
        names_by_id={str(u.id): u.display_name or u.username for u in people},
        page=page,
        pages=max(1, -(-total // AUDIT_PAGE)),
        total=total,
    )
