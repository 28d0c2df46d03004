"""Signing in and out, a person's own settings, and (for admins) users and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select

from marketing.models import AuditLog, Role, User
from marketing.web.deps import (
    DB,
    Admin,
    MaybeUser,
    Viewer,
    check_csrf,
    sign_in,
)
from marketing.web.i18n import LANGUAGES
from marketing.web.rendering import flash, gettext_for, render
from marketing.web.staff import (
    StaffError,
    audit,
    authenticate,
    create_user,
    find_user,
    hash_password,
)

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


@router.post("/login")
async def login(request: Request, session: DB) -> Response:
    await check_csrf(request)
    form = await request.form()
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    target = safe_next(str(form.get("next") or "/"))
    user = authenticate(session=session, username=username, password=password)
    if user is None:
        session.rollback()
        _ = gettext_for(None)
        return render(
            request,
            "login.html",
            user=None,
            status_code=401,
            next=target,
            error=_("Wrong user name or password."),
        )
    audit(session=session, user=user, action="user.sign_in", object_type="user", object_id=user.id)
    session.commit()
    sign_in(request, user)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request, user: Viewer) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/account")
def account_page(request: Request, user: Viewer) -> Response:
    return render(request, "account.html", user=user, error=None)


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
    me = authenticate(session=session, username=user.username, password=current)
    if me is None:
        session.rollback()
        return render(
            request,
            "account.html",
            user=user,
            status_code=400,
            error=_("The current password is wrong."),
        )
    try:
        me.password_hash = hash_password(new)
    except StaffError:
        session.rollback()
        return render(
            request,
            "account.html",
            user=user,
            status_code=400,
            error=_("A password needs at least 10 characters."),
        )
    audit(session=session, user=me, action="user.password", object_type="user", object_id=me.id)
    session.commit()
    sign_in(request, me)  # this session stays; every other one ends
    flash(request, _("Your password was changed; other sessions were signed out."))
    return RedirectResponse("/account", status_code=303)


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
) -> Response:
    try:
        created = create_user(
            session=session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
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
        page=page,
        pages=max(1, -(-total // AUDIT_PAGE)),
        total=total,
    )
