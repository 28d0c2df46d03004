"""Telling people, from the web: a person's notification choices and e-mail address, the
e-mail sender test, and delegated reconnect links (made by an admin, opened by an account's
owner without a staff account).

Delegated reconnect, for the connect flows: pressing "Connect" on ``/reconnect/{token}`` uses
the link (once) and puts :data:`DELEGATION_KEY` in the browser's session --
``{"account": id, "link": id, "until": ISO time}``, one hour.  A connect flow that lets a
visitor without a staff account in calls :func:`delegated_account` and must then connect
that one account only (the same channel and external id), and end the grant with
:func:`end_delegation` when it is done.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from channels.email import email_adapter_from_settings, valid_address
from channels.errors import ChannelError
from marketing.conventions import SLUG_PATTERN
from marketing.models import ChannelAccount, Community, User
from marketing.notifications import kinds_for, notification_message, set_choices
from marketing.reconnect_links import (
    LinkRefused,
    Refusal,
    accounts_page,
    connect_url,
    create_link,
    find_link,
    use_link,
)
from marketing.web.deps import DB, Admin, Viewer, check_csrf, client_address, now_of, settings_of
from marketing.web.i18n import language_of
from marketing.web.notices import relay_error_message, test_mail
from marketing.web.people import safe_next
from marketing.web.rendering import clock_for, flash, gettext_for, render
from marketing.web.staff import audit

router = APIRouter(include_in_schema=False)

TOKEN = r"^[A-Za-z0-9_.\-]{1,300}$"
DELEGATION_KEY = "delegated"
DELEGATION_LIFETIME = timedelta(hours=1)


def delegated_account(request: Request, now: datetime) -> int | None:
    """The id of the one account this browser may reconnect through a used delegated link,
    or None (no grant, or it expired)."""
    grant = request.session.get(DELEGATION_KEY)
    if not isinstance(grant, dict):
        return None
    try:
        until = datetime.fromisoformat(str(grant["until"]))
        account_id = int(grant["account"])
    except (KeyError, TypeError, ValueError):
        return None
    return account_id if until > now else None


def end_delegation(request: Request) -> None:
    """Forget the delegated grant of this browser (the connect flow is done)."""
    request.session.pop(DELEGATION_KEY, None)


@router.post("/account/notifications")
async def notifications_save(request: Request, user: Viewer, session: DB) -> Response:
    form = await request.form()
    address = str(form.get("email") or "").strip()[:320]
    chosen = {str(v) for v in form.getlist("kind")}
    # The database's work off the event loop, as in every other route (#19).
    return await run_in_threadpool(_notifications_save, request, user, session, address, chosen)


def _notifications_save(
    request: Request, user: User, session: Session, address: str, chosen: set[str]
) -> Response:
    _ = gettext_for(user)
    if address and valid_address(address) is not None:
        flash(
            request, _("%(address)s is not a valid e-mail address.") % {"address": address}, "error"
        )
        return RedirectResponse("/account#notifications", status_code=303)
    me = session.get(User, user.id)
    assert me is not None
    me.email = address or None
    set_choices(user=me, enabled=[k for k in kinds_for(me.role) if k.value in chosen])
    audit(
        session=session,
        user=me,
        action="user.notifications",
        object_type="user",
        object_id=me.id,
        email=bool(me.email),
        off=list(me.notifications_off),
    )
    session.commit()
    flash(request, _("Your notification settings were saved."))
    return RedirectResponse("/account#notifications", status_code=303)


@router.post("/accounts/email-test")
def email_test(
    request: Request,
    user: Admin,
    session: DB,
    to: Annotated[str, Form(max_length=320)] = "",
    back: Annotated[str, Form(max_length=300)] = "/communities",
) -> Response:
    """Send a test message through the relay with the configured sender identity."""
    _ = gettext_for(user)
    back = safe_next(back)
    settings = settings_of(request)
    address = to.strip() or (user.email or "")
    if not address or valid_address(address) is not None:
        flash(
            request,
            _("Give an e-mail address to send the test to (or add yours on your settings page)."),
            "error",
        )
        return RedirectResponse(back, status_code=303)
    language = language_of(user.language)
    now = now_of(request)
    mail = test_mail(
        language=language,
        sender=settings.email_from,
        clock=clock_for(request, user),
        now=now,
    )
    message = notification_message(
        subject=mail.subject,
        text=mail.text,
        sender=settings.email_from,
        to=address,
        domain=settings.email_from.rpartition("@")[2] or "localhost",
        now=now,
    )
    code: str | None = None
    try:
        with email_adapter_from_settings(settings).connect() as smtp:
            smtp.send(message)
    except ChannelError as exc:
        code = exc.code or "unknown"
    audit(
        session=session,
        user=user,
        action="email.test",
        object_type="email",
        object_id=settings.email_from,
        to=address,
        result=code or "sent",
    )
    session.commit()
    if code is None:
        flash(
            request,
            _(
                "The test message was sent from %(sender)s to %(to)s through the relay. If it "
                "does not arrive within a few minutes, look in the spam folder."
            )
            % {"sender": settings.email_from, "to": address},
        )
    else:
        flash(
            request,
            _("The relay did not take the test message (%(code)s).") % {"code": code}
            + " "
            + relay_error_message(code, language=language),
            "error",
        )
    return RedirectResponse(back, status_code=303)


def _account(session: DB, slug: str) -> ChannelAccount | None:
    return session.scalars(select(ChannelAccount).where(ChannelAccount.slug == slug)).first()


@router.post("/accounts/{slug}/reconnect-link")
def reconnect_link_create(
    request: Request,
    user: Admin,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
) -> Response:
    _ = gettext_for(user)
    account = _account(session, slug)
    if account is None:
        flash(request, _("There is no such account."), "error")
        return RedirectResponse("/communities", status_code=303)
    settings = settings_of(request)
    issued = create_link(
        session=session,
        account=account,
        created_by=user.username,
        secret=settings.web_secret,
        base_url=settings.public_base_url,
        now=now_of(request),
    )
    audit(
        session=session,
        user=user,
        action="account.reconnect_link",
        object_type="account",
        object_id=account.slug,
        link_id=issued.link_id,
        expires_at=issued.expires_at.isoformat(),
    )
    session.commit()
    return render(
        request,
        "reconnect_link.html",
        user=user,
        account=account,
        url=issued.url,
        expires_at=issued.expires_at,
        back=accounts_page(session=session, account=account),
    )


def _refused_page(request: Request, reason: Refusal) -> Response:
    _ = gettext_for(None)
    messages = {
        Refusal.INVALID: _(
            "This link is not valid. Ask the programme's administrator for a new one."
        ),
        Refusal.EXPIRED: _(
            "This link has expired. Ask the programme's administrator for a new one."
        ),
        Refusal.USED: _(
            "This link has been used already; each link works once. Ask the programme's "
            "administrator for a new one if the account still needs reconnecting."
        ),
    }
    return render(
        request,
        "reconnect.html",
        user=None,
        status_code=404 if reason == Refusal.INVALID else 410,
        account=None,
        community=None,
        refused=messages[reason],
        instructions=None,
        token="",
        expires_at=None,
    )


def _community_name(session: DB, account: ChannelAccount) -> str | None:
    if account.community_id is None:
        return None
    community = session.get(Community, account.community_id)
    return community.name_th if community else None


@router.get("/reconnect/{token}")
def reconnect_page(
    request: Request, session: DB, token: Annotated[str, Path(pattern=TOKEN)]
) -> Response:
    """What the link reconnects, and a button to start; opening it does not use it."""
    settings = settings_of(request)
    try:
        link = find_link(
            session=session, token=token, secret=settings.web_secret, now=now_of(request)
        )
    except LinkRefused as exc:
        return _refused_page(request, exc.reason)
    return render(
        request,
        "reconnect.html",
        user=None,
        account=link.account,
        community=_community_name(session, link.account),
        refused=None,
        instructions=None,
        token=token,
        expires_at=link.expires_at,
    )


@router.post("/reconnect/{token}")
async def reconnect_start(
    request: Request, session: DB, token: Annotated[str, Path(pattern=TOKEN)]
) -> Response:
    """Use the link (once), let this browser reconnect that one account, and go to its
    connect flow."""
    await check_csrf(request)
    return await run_in_threadpool(_reconnect_start, request, session, token)


def _reconnect_start(request: Request, session: Session, token: str) -> Response:
    settings = settings_of(request)
    now = now_of(request)
    try:
        link = use_link(
            session=session,
            token=token,
            secret=settings.web_secret,
            now=now,
            address=client_address(request),
        )
    except LinkRefused as exc:
        session.rollback()
        return _refused_page(request, exc.reason)
    account = link.account
    audit(
        session=session,
        user=None,
        actor="delegated link",
        action="account.reconnect_link_used",
        object_type="account",
        object_id=account.slug,
        link_id=link.id,
        created_by=link.created_by,
        address=client_address(request),
    )
    session.commit()
    request.session[DELEGATION_KEY] = {
        "account": account.id,
        "link": link.id,
        "until": (now + DELEGATION_LIFETIME).isoformat(),
    }
    target = connect_url(session=session, account=account)
    if target is not None:
        return RedirectResponse(target, status_code=303)
    _ = gettext_for(None)
    return render(
        request,
        "reconnect.html",
        user=None,
        account=account,
        community=_community_name(session, account),
        refused=None,
        instructions=_(
            "Connecting from this page is not available yet in this version of the service. "
            "Tell the programme's administrator that you are ready: they will connect the "
            "account with you from the accounts page."
        ),
        token="",
        expires_at=None,
    )
