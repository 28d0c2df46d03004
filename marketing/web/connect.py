"""Connecting Facebook Pages, YouTube channels and LINE Official Accounts from the web app
(admins only).

Facebook (developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow): the Login
dialog with ``state`` bound to this browser's session -> code -> user token (requests-oauthlib's
``OAuth2Session``) -> long-lived user token (``grant_type=fb_exchange_token``) ->
``/me/permissions`` (every scope asked for must be granted, or nothing is stored) ->
``/me/accounts`` -> a picker -> for each chosen Page its *own* Page token, checked with
``/debug_token`` (type PAGE, valid, acting for that Page) before it is stored.  The user token is
never stored.

YouTube (developers.google.com/identity/protocols/oauth2/web-server): google-auth-oauthlib's
``Flow`` with PKCE, ``access_type=offline`` and ``prompt=consent`` -> access and refresh token
-> ``channels.list(mine=true)`` -> a picker.  Workers then refresh the access token through
google-auth (:func:`tasks.wiring.account_for`).

LINE (developers.line.biz/en/reference/messaging-api/#get-bot-info): no OAuth for a
Messaging API channel, so an admin pastes its channel access token; it is checked with
``GET /v2/bot/info`` through :class:`channels.line.LineAdapter` (the official SDK) and stored
encrypted for the Official Account it acts for, under its name as LINE gives it.  A token LINE
refuses is not stored, and the admin is told in Thai where to issue a working one.

Between the provider's answer and the picker the tokens wait in the session cookie as
Fernet ciphertext under ``MARKETING_TOKEN_KEYS`` (15 minutes at most), never in the clear.
Each chosen account is tied to a community or to the programme; what was not chosen, not
granted or not valid is not stored.

Delegated reconnect (:mod:`marketing.reconnect_links`): a visitor without a staff account who
used a reconnect link holds a one-hour grant for *one* account
(:func:`marketing.web.alerts.delegated_account`).  Such a visitor may start the flow of that
account's channel (``GET /accounts/connect/{provider}/delegated``, where the link sends them)
and come back to its callback -- nothing else here: not the accounts page, not the picker, not
another account.  The callback saves that one account only (same channel, same external id;
any other Page shared in the dialog is ignored, never stored), keeping its community; then the
grant ends (:func:`~marketing.web.alerts.end_delegation`), the waiting posts are rescheduled
(:func:`~marketing.publishing.account_reconnected`) and every step is audited as
``delegated link``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import requests
from cryptography.fernet import InvalidToken
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketing.models import (
    AccountHealth,
    AccountToken,
    ChannelAccount,
    ChannelKind,
    Community,
    Role,
    TokenKind,
    User,
)
from marketing.publishing import account_reconnected
from marketing.reconnect_links import register_connect_flow
from marketing.settings import Settings
from marketing.token_store import store_tokens, token_cipher
from marketing.web.alerts import DELEGATION_KEY, delegated_account, end_delegation
from marketing.web.deps import (
    DB,
    SAFE_METHODS,
    Admin,
    MaybeUser,
    NotAllowed,
    SignInRequired,
    check_csrf,
    client_address,
    now_of,
    settings_of,
)
from marketing.web.rendering import gettext_for, render
from marketing.web.staff import audit

if TYPE_CHECKING:
    from channels.line import BotProfile

router = APIRouter(include_in_schema=False)

#: What a Page account needs: list the Pages, publish, read engagement and insights
#: (developers.facebook.com/docs/permissions).
FACEBOOK_SCOPES = (
    "pages_show_list",
    "pages_manage_posts",
    "pages_read_engagement",
    "read_insights",
)
#: Asked for, not required: it lets the flow list Pages the person reaches only through a
#: business (``/me/businesses`` -> ``owned_pages`` / ``client_pages``), which ``/me/accounts``
#: leaves out (developers.facebook.com/docs/graph-api/reference/business/owned_pages/).
BUSINESS_SCOPE = "business_management"
MAX_BUSINESSES = 50  # bounded: one person's businesses, each two calls
#: Upload, read the channel, read analytics (developers.google.com/youtube/v3/guides/auth/
#: server-side-web-apps#identify-access-scopes).
GOOGLE_SCOPES = (
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube.readonly",
    "https://www.googleapis.com/auth/yt-analytics.readonly",
)
PENDING_SECONDS = 15 * 60
STATE_KEY = "connect_state"
PENDING_KEY = "connect_pending"
TIMEOUT = 30.0


_SECRET_FIELD = re.compile(
    r"((?:access_token|input_token|fb_exchange_token|client_secret|refresh_token|code_verifier"
    r"|appsecret_proof|code)(?:=|%3D|['\"]\s*:\s*['\"]))[^&\s'\"<>,}]+",
    re.IGNORECASE,
)


_SECRET_KEY = re.compile(
    r"access_token|input_token|fb_exchange_token|client_secret|refresh_token|code_verifier"
    r"|appsecret_proof|code|id_token",
    re.IGNORECASE,
)


def scrub_fields(text: str) -> str:
    """``text`` with the value of every token-bearing field (query, form or JSON) masked."""
    return _SECRET_FIELD.sub(r"\1***", text)


class _ScrubTokens(logging.Filter):
    """urllib3 logs request lines and oauthlib / requests-oauthlib log token requests and
    answers at DEBUG: the values of their token fields are masked before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub_fields(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                a if isinstance(a, int | float) else scrub_fields(str(a)) for a in record.args
            )
        elif isinstance(record.args, dict):
            # One mapping argument (``log.debug("Obtained token %s", token)``): mask by key.
            record.args = {
                k: "***" if _SECRET_KEY.fullmatch(str(k)) else scrub_fields(str(v))
                for k, v in record.args.items()
            }
        return True


for _name in (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "urllib3.poolmanager",
    "requests_oauthlib",
    "requests_oauthlib.oauth2_session",
    "oauthlib",
    "oauthlib.oauth2.rfc6749.clients.base",
    "oauthlib.oauth2.rfc6749.parameters",
    "google_auth_oauthlib.flow",
    "uvicorn.access",  # the callback's query carries the one-time code
):
    logging.getLogger(_name).addFilter(_ScrubTokens())


class ConnectRefused(Exception):
    """The provider's answer cannot be used; ``message`` is for staff (translated)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _loopback_http(*urls: str) -> None:
    """oauthlib refuses plain http; allow it only when every URL is this machine (the
    sandboxes; RFC 8252 §8.3 allows loopback redirects)."""
    from marketing.settings import is_loopback_url

    if all(is_loopback_url(u) for u in urls):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    # Granular consent: a user may grant fewer scopes than asked; the flows check what was
    # granted themselves instead of oauthlib raising "Scope has changed".
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"


def _callback(settings: Settings, provider: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/accounts/connect/{provider}/callback"


def _graph(settings: Settings, path: str) -> str:
    return f"{settings.graph_api_url.rstrip('/')}/{settings.graph_api_version}/{path}"


def _slug(prefix: str, external_id: str) -> str:
    return (prefix + "-" + re.sub(r"[^a-z0-9-]+", "-", external_id.lower())).strip("-")[:80]


def _seal(settings: Settings, data: dict[str, Any]) -> str:
    return token_cipher(settings).encrypt(json.dumps(data).encode()).decode()


def _unseal(settings: Settings, value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        data = token_cipher(settings).decrypt(value.encode(), ttl=PENDING_SECONDS)
    except InvalidToken:
        return None
    found: dict[str, Any] = json.loads(data)
    return found


@dataclass(frozen=True)
class Connector:
    """Who runs a connect flow: an admin (``user``), or a visitor holding a delegated grant
    for the one ``account`` they may reconnect (``user`` is then None)."""

    user: User | None
    account: ChannelAccount | None = None
    link_id: int | None = None


async def connector(request: Request, session: DB, user: MaybeUser) -> Connector:
    """An admin, or else a visitor with a live delegated grant; CSRF is checked on every
    state-changing request either way."""
    if user is not None and user.role.allows(Role.ADMIN):
        if request.method not in SAFE_METHODS and not getattr(request.state, "via_token", False):
            await check_csrf(request)
        request.state.user = user
        return Connector(user=user)
    account_id = delegated_account(request, now_of(request))
    account = session.get(ChannelAccount, account_id) if account_id is not None else None
    if account is not None:
        if request.method not in SAFE_METHODS:
            await check_csrf(request)
        grant = request.session.get(DELEGATION_KEY) or {}
        link = grant.get("link") if isinstance(grant, dict) else None
        link_id = link if isinstance(link, int) else None
        return Connector(user=None, account=account, link_id=link_id)
    if user is None:
        raise SignInRequired()
    raise NotAllowed(Role.ADMIN)


AdminOrDelegated = Annotated[Connector, Depends(connector)]


def _refused(request: Request, user: User | None, message: str, status_code: int = 400) -> Response:
    _ = gettext_for(user)
    request.session.pop(PENDING_KEY, None)
    return render(
        request,
        "connect_refused.html",
        user=user,
        status_code=status_code,
        title=_("The account was not connected"),
        message=message,
        delegated=user is None,
    )


def _delegated_refused(
    request: Request, session: Session, actor: Connector, message: str, why: str
) -> Response:
    """Refuse a delegated visitor's step, audited; the grant stays for a correct retry."""
    assert actor.account is not None
    audit(
        session=session,
        user=None,
        actor="delegated link",
        action="account.delegated_refused",
        object_type="account",
        object_id=actor.account.slug,
        link_id=actor.link_id,
        why=why,
        address=client_address(request),
    )
    session.commit()
    return _refused(request, None, message, status_code=403)


def _only_this_account(account: ChannelAccount) -> str:
    _ = gettext_for(None)
    message: str = _(
        "This reconnect link is for the account %(name)s only: nothing else can be connected "
        "with it."
    ) % {"name": account.display_name}
    return message


def _check_state(request: Request, provider: str, state: str | None) -> dict[str, Any] | None:
    """The flow this browser started for ``provider``, if ``state`` is its own (CSRF)."""
    started = request.session.pop(STATE_KEY, None)
    if not isinstance(started, dict) or started.get("provider") != provider:
        return None
    if not state or started.get("state") != state:
        return None
    return started


@router.get("/accounts/connect")
def connect_page(request: Request, user: Admin, session: DB) -> Response:
    """What can be connected, and the accounts whose tokens are in the encrypted store."""
    settings = settings_of(request)
    stored = session.execute(
        select(ChannelAccount, AccountToken, Community)
        .join(AccountToken, AccountToken.account_id == ChannelAccount.id)
        .outerjoin(Community, Community.id == ChannelAccount.community_id)
        .order_by(ChannelAccount.slug)
    ).all()
    return render(
        request,
        "connect.html",
        user=user,
        stored=stored,
        facebook_ready=bool(settings.facebook_app_id and settings.facebook_app_secret),
        google_ready=bool(settings.google_client_id and settings.google_client_secret),
        communities=session.scalars(select(Community).order_by(Community.name_th)).all(),
    )


# --- Facebook -----------------------------------------------------------------------------


def _facebook_session(settings: Settings, state: str | None = None) -> Any:
    from requests_oauthlib import OAuth2Session

    _loopback_http(settings.facebook_dialog_url, settings.graph_api_url, settings.public_base_url)
    return OAuth2Session(
        client_id=settings.facebook_app_id,
        redirect_uri=_callback(settings, "facebook"),
        scope=[*FACEBOOK_SCOPES, BUSINESS_SCOPE],
        state=state,
    )


def _business_pages(oauth: Any, settings: Settings, user_token: str) -> list[dict[str, Any]]:
    """The Pages the person reaches through their businesses, each with its own Page token."""
    found: list[dict[str, Any]] = []
    businesses = _graph_get(
        oauth, _graph(settings, "me/businesses"), {"access_token": user_token, "fields": "id,name"}
    )
    for business in businesses.get("data", [])[:MAX_BUSINESSES]:
        for edge in ("owned_pages", "client_pages"):
            listed = _graph_get(
                oauth,
                _graph(settings, f"{business['id']}/{edge}"),
                {"access_token": user_token, "fields": "id,name,access_token"},
            )
            found += listed.get("data", [])
    return found


def _delegated_start(
    request: Request, session: Session, actor: Connector, kind: ChannelKind, account: str
) -> str | Response:
    """The account slug a delegated visitor may start ``kind``'s flow for, or the refusal."""
    assert actor.account is not None
    if actor.account.kind != kind or account not in ("", actor.account.slug):
        return _delegated_refused(
            request, session, actor, _only_this_account(actor.account), why="other account"
        )
    return actor.account.slug


@router.post("/accounts/connect/facebook")
def facebook_start(
    request: Request,
    actor: AdminOrDelegated,
    session: DB,
    account: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Send the browser to the Facebook Login dialog."""
    return _start(request, session, actor, ChannelKind.FACEBOOK, account)


@router.get("/accounts/connect/facebook/delegated")
def facebook_delegated(request: Request, actor: AdminOrDelegated, session: DB) -> Response:
    """Where a used reconnect link sends its owner: the dialog for that one Page."""
    if actor.account is None:
        return RedirectResponse("/accounts/connect", status_code=303)
    return _start(request, session, actor, ChannelKind.FACEBOOK, "")


def _start(
    request: Request, session: Session, actor: Connector, kind: ChannelKind, account: str
) -> Response:
    """Start ``kind``'s flow for an admin, or for a delegated visitor's one account only."""
    start = _facebook_start if kind == ChannelKind.FACEBOOK else _youtube_start
    if actor.account is None:
        return start(request, actor.user, account)
    allowed = _delegated_start(request, session, actor, kind, account)
    if isinstance(allowed, Response):
        return allowed
    return start(request, None, allowed)


def _facebook_start(request: Request, user: User | None, account: str) -> Response:
    settings = settings_of(request)
    _ = gettext_for(user)
    if not (settings.facebook_app_id and settings.facebook_app_secret):
        return _refused(
            request,
            user,
            _("Set MARKETING_FACEBOOK_APP_ID and MARKETING_FACEBOOK_APP_SECRET first."),
        )
    oauth = _facebook_session(settings)
    dialog = f"{settings.facebook_dialog_url.rstrip('/')}/{settings.graph_api_version}/dialog/oauth"
    url, state = oauth.authorization_url(dialog)
    request.session[STATE_KEY] = {"provider": "facebook", "state": state, "account": account}
    return RedirectResponse(url, status_code=303)


def _graph_get(oauth: Any, url: str, params: dict[str, str]) -> dict[str, Any]:
    """A Graph GET whose failure becomes :class:`ConnectRefused` without the token in it."""
    try:
        answer = oauth.get(url, params=params, timeout=TIMEOUT, withhold_token=True)
    except requests.RequestException:
        raise ConnectRefused("network") from None
    try:
        body: dict[str, Any] = answer.json()
    except ValueError:
        raise ConnectRefused("answer") from None
    if answer.status_code >= 400 or "error" in body and not isinstance(body.get("data"), dict):
        error = body.get("error") or {}
        raise ConnectRefused(str(error.get("message", "refused"))[:300])
    return body


@router.get("/accounts/connect/facebook/callback")
def facebook_callback(
    request: Request,
    actor: AdminOrDelegated,
    session: DB,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    """Code -> user token -> long-lived user token -> permissions -> the Pages and their own
    tokens, kept encrypted for the picker."""
    from oauthlib.oauth2 import OAuth2Error

    settings = settings_of(request)
    user = actor.user
    _ = gettext_for(user)
    started = _check_state(request, "facebook", state)
    if (
        actor.account is not None
        and started is not None
        and started.get("account") != actor.account.slug
    ):
        started = None  # a flow started by someone else, or for another account
    if started is None:
        return _refused(
            request,
            user,
            _(
                "This answer from Facebook does not belong to a connection started here. "
                "Start again."
            ),
            status_code=403,
        )
    if error or not code:
        return _refused(request, user, _("Facebook sign-in was cancelled: nothing was connected."))
    secret = settings.facebook_app_secret.get_secret_value() if settings.facebook_app_secret else ""
    oauth = _facebook_session(settings, state=state)
    try:
        short = oauth.fetch_token(
            _graph(settings, "oauth/access_token"),
            code=code,
            client_secret=secret,
            include_client_id=True,
            timeout=TIMEOUT,
        )
        long_lived = _graph_get(
            oauth,
            _graph(settings, "oauth/access_token"),
            {
                "grant_type": "fb_exchange_token",
                "client_id": settings.facebook_app_id or "",
                "client_secret": secret,
                "fb_exchange_token": short["access_token"],
            },
        )
        user_token = str(long_lived["access_token"])
        permissions = _graph_get(
            oauth, _graph(settings, "me/permissions"), {"access_token": user_token}
        )
        granted = {
            p["permission"] for p in permissions.get("data", []) if p.get("status") == "granted"
        }
        missing = [s for s in FACEBOOK_SCOPES if s not in granted]
        if missing:
            return _refused(
                request,
                user,
                _(
                    "Facebook did not grant every permission the service needs: %(missing)s "
                    "was not allowed. Nothing was connected. Connect again and leave every "
                    "permission ticked."
                )
                % {"missing": ", ".join(missing)},
            )
        pages = _graph_get(
            oauth,
            _graph(settings, "me/accounts"),
            {"access_token": user_token, "fields": "id,name,access_token,tasks"},
        )
        if BUSINESS_SCOPE in granted:
            pages["data"] = [
                *pages.get("data", []),
                *_business_pages(oauth, settings, user_token),
            ]
    except (OAuth2Error, ConnectRefused, requests.RequestException, KeyError, ValueError):
        return _refused(
            request,
            user,
            _(
                "Facebook refused to finish the connection (the code may have expired or been "
                "used already). Nothing was connected. Start again."
            ),
        )
    items = list(
        {
            str(p["id"]): {
                "id": str(p["id"]),
                "name": str(p.get("name", p["id"])),
                "token": str(p["access_token"]),
            }
            for p in reversed(pages.get("data", []))  # a Page listed twice: /me/accounts wins
            if p.get("id") and p.get("access_token")
        }.values()
    )[::-1]
    wanted = started.get("account") or ""
    if wanted:
        existing = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == wanted)
        ).first()
        if existing is not None and existing.external_id not in {i["id"] for i in items}:
            message = _(
                "The Page %(name)s was not ticked in Facebook's dialog, so it was not "
                "reconnected. Connect again and tick it."
            ) % {"name": existing.display_name}
            if actor.account is not None:
                return _delegated_refused(request, session, actor, message, why="page not ticked")
            return _refused(request, user, message)
    if not items:
        return _refused(
            request,
            user,
            _("No Page was shared in Facebook's dialog: nothing was connected."),
        )
    pending = {"provider": "facebook", "items": items, "scopes": sorted(granted)}
    if actor.account is not None:
        return _finish_delegated(request, session, settings, actor, pending)
    request.session[PENDING_KEY] = _seal(settings, pending)
    return RedirectResponse("/accounts/connect/pick", status_code=303)


def _check_page_token(settings: Settings, page_id: str, token: str) -> dict[str, Any]:
    """``/debug_token`` of a Page token: valid, of type PAGE, acting for ``page_id`` with
    permission to publish; its data, or :class:`ConnectRefused`."""
    from requests_oauthlib import OAuth2Session

    secret = settings.facebook_app_secret.get_secret_value() if settings.facebook_app_secret else ""
    data = _graph_get(
        OAuth2Session(client_id=settings.facebook_app_id),
        _graph(settings, "debug_token"),
        {"input_token": token, "access_token": f"{settings.facebook_app_id}|{secret}"},
    ).get("data", {})
    if not data.get("is_valid") or data.get("type") != "PAGE":
        raise ConnectRefused("not a valid Page token")
    if str(data.get("profile_id")) != page_id:
        raise ConnectRefused("token of another Page")
    if "pages_manage_posts" not in (data.get("scopes") or []):
        raise ConnectRefused("pages_manage_posts")
    return dict(data)


# --- YouTube ------------------------------------------------------------------------------


def _google_flow(
    settings: Settings, *, state: str | None = None, verifier: str | None = None
) -> Any:
    from google_auth_oauthlib.flow import Flow

    _loopback_http(settings.google_auth_uri, settings.google_token_uri, settings.public_base_url)
    secret = (
        settings.google_client_secret.get_secret_value() if settings.google_client_secret else ""
    )
    config = {
        "web": {
            "client_id": settings.google_client_id,
            "client_secret": secret,
            "auth_uri": settings.google_auth_uri,
            "token_uri": settings.google_token_uri,
            "redirect_uris": [_callback(settings, "youtube")],
        }
    }
    return Flow.from_client_config(
        config,
        scopes=list(GOOGLE_SCOPES),
        redirect_uri=_callback(settings, "youtube"),
        state=state,
        code_verifier=verifier,
        autogenerate_code_verifier=verifier is None,
    )


@router.post("/accounts/connect/youtube")
def youtube_start(
    request: Request,
    actor: AdminOrDelegated,
    session: DB,
    account: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    """Send the browser to Google's consent page (PKCE, offline access, consent asked)."""
    return _start(request, session, actor, ChannelKind.YOUTUBE, account)


@router.get("/accounts/connect/youtube/delegated")
def youtube_delegated(request: Request, actor: AdminOrDelegated, session: DB) -> Response:
    """Where a used reconnect link sends its owner: Google's consent for that one channel."""
    if actor.account is None:
        return RedirectResponse("/accounts/connect", status_code=303)
    return _start(request, session, actor, ChannelKind.YOUTUBE, "")


def _youtube_start(request: Request, user: User | None, account: str) -> Response:
    settings = settings_of(request)
    _ = gettext_for(user)
    if not (settings.google_client_id and settings.google_client_secret):
        return _refused(
            request,
            user,
            _("Set MARKETING_GOOGLE_CLIENT_ID and MARKETING_GOOGLE_CLIENT_SECRET first."),
        )
    flow = _google_flow(settings)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    request.session[STATE_KEY] = {
        "provider": "youtube",
        "state": state,
        "account": account,
        # The PKCE verifier waits encrypted: only this server can finish the exchange.
        "verifier": _seal(settings, {"verifier": flow.code_verifier}),
    }
    return RedirectResponse(url, status_code=303)


@router.get("/accounts/connect/youtube/callback")
def youtube_callback(
    request: Request,
    actor: AdminOrDelegated,
    session: DB,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    """Code (with the PKCE verifier) -> access and refresh token -> the channel."""
    from google.auth.exceptions import GoogleAuthError
    from google_auth_httplib2 import AuthorizedHttp
    from googleapiclient.discovery import build_from_document
    from googleapiclient.errors import HttpError
    from googleapiclient.http import build_http
    from oauthlib.oauth2 import OAuth2Error

    from channels.youtube import discovery_document

    settings = settings_of(request)
    user = actor.user
    _ = gettext_for(user)
    started = _check_state(request, "youtube", state)
    if (
        actor.account is not None
        and started is not None
        and started.get("account") != actor.account.slug
    ):
        started = None  # a flow started by someone else, or for another account
    sealed = _unseal(settings, started.get("verifier")) if started else None
    if started is None or sealed is None:
        return _refused(
            request,
            user,
            _("This answer from Google does not belong to a connection started here. Start again."),
            status_code=403,
        )
    if error or not code:
        return _refused(request, user, _("Google sign-in was cancelled: nothing was connected."))
    flow = _google_flow(settings, state=state, verifier=str(sealed["verifier"]))
    try:
        token = flow.fetch_token(code=code, timeout=TIMEOUT)
    except (OAuth2Error, requests.RequestException, ValueError):
        return _refused(
            request,
            user,
            _(
                "Google refused to finish the connection (the code may have expired or been "
                "used already). Nothing was connected. Start again."
            ),
        )
    granted = token.get("scope") or []
    granted = set(granted.split() if isinstance(granted, str) else granted)
    missing = [s.rsplit("/", 1)[-1] for s in GOOGLE_SCOPES if s not in granted]
    if missing:
        return _refused(
            request,
            user,
            _(
                "Google did not grant every permission the service needs: %(missing)s was not "
                "allowed. Nothing was connected. Connect again and leave every permission "
                "ticked."
            )
            % {"missing": ", ".join(missing)},
        )
    credentials = flow.credentials
    if not credentials.refresh_token:
        return _refused(
            request,
            user,
            _(
                "Google gave no refresh token, so the channel would stop within the hour. "
                "Connect again."
            ),
        )
    http = AuthorizedHttp(credentials, http=build_http())
    try:
        service = build_from_document(discovery_document(settings.youtube_root_url), http=http)
        answer = service.channels().list(part="snippet", mine=True).execute()
    except (HttpError, GoogleAuthError, OSError):
        return _refused(
            request, user, _("YouTube did not say which channel this account owns. Start again.")
        )
    finally:
        http.close()
    items = [
        {"id": str(c["id"]), "name": str((c.get("snippet") or {}).get("title", c["id"]))}
        for c in answer.get("items") or []
    ]
    wanted = started.get("account") or ""
    if wanted:
        existing = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == wanted)
        ).first()
        if existing is not None and existing.external_id not in {i["id"] for i in items}:
            message = _(
                "The Google account chosen does not own the channel %(name)s, so it was "
                "not reconnected. Connect again with the account that owns it."
            ) % {"name": existing.display_name}
            if actor.account is not None:
                return _delegated_refused(request, session, actor, message, why="channel not owned")
            return _refused(request, user, message)
    if not items:
        return _refused(
            request, user, _("This Google account has no YouTube channel: nothing was connected.")
        )
    expiry = credentials.expiry.replace(tzinfo=UTC).isoformat() if credentials.expiry else None
    pending = {
        "provider": "youtube",
        "items": items,
        "scopes": sorted(granted),
        "access": credentials.token,
        "refresh": credentials.refresh_token,
        "expiry": expiry,
    }
    if actor.account is not None:
        return _finish_delegated(request, session, settings, actor, pending)
    request.session[PENDING_KEY] = _seal(settings, pending)
    return RedirectResponse("/accounts/connect/pick", status_code=303)


# --- the picker ---------------------------------------------------------------------------


@router.get("/accounts/connect/pick")
def pick_page(request: Request, user: Admin, session: DB) -> Response:
    """The Pages or channel just granted, each to tie to a community or the programme."""
    _ = gettext_for(user)
    pending = _unseal(settings_of(request), request.session.get(PENDING_KEY))
    if pending is None:
        return _refused(request, user, _("The connection has expired (15 minutes). Start again."))
    communities = session.scalars(select(Community).order_by(Community.name_th)).all()
    kind = ChannelKind.FACEBOOK if pending["provider"] == "facebook" else ChannelKind.YOUTUBE
    # An account connected before keeps its community unless the admin changes it.
    current = {
        external_id: slug or "programme"
        for external_id, slug in session.execute(
            select(ChannelAccount.external_id, Community.slug)
            .outerjoin(Community, Community.id == ChannelAccount.community_id)
            .where(
                ChannelAccount.kind == kind,
                ChannelAccount.external_id.in_([i["id"] for i in pending["items"]]),
            )
        )
    }
    return render(
        request,
        "connect_pick.html",
        user=user,
        provider=pending["provider"],
        items=[
            {"id": i["id"], "name": i["name"], "current": current.get(i["id"], "skip")}
            for i in pending["items"]
        ],
        communities=communities,
    )


@router.post("/accounts/connect/pick")
async def pick(request: Request, user: Admin, session: DB) -> Response:
    """Store what was chosen: each Page's own token (checked first), or the channel's
    access and refresh token, encrypted; tie each to its community."""
    settings = settings_of(request)
    _ = gettext_for(user)
    pending = _unseal(settings, request.session.pop(PENDING_KEY, None))
    if pending is None:
        return _refused(request, user, _("The connection has expired (15 minutes). Start again."))
    form = await request.form()
    chosen: list[tuple[dict[str, Any], Community | None]] = []
    for item in pending["items"]:
        target = str(form.get(f"tie-{item['id']}", ""))
        if target in ("", "skip"):
            continue
        if target == "programme":
            chosen.append((item, None))
            continue
        community = session.scalars(select(Community).where(Community.slug == target)).first()
        if community is None:
            return _refused(request, user, _("There is no such community."))
        chosen.append((item, community))
    if not chosen:
        return _refused(request, user, _("No account was chosen: nothing was connected."))
    facebook = pending["provider"] == "facebook"
    checked: dict[str, dict[str, Any]] = {}
    if facebook:
        for item, _community in chosen:
            try:
                checked[item["id"]] = _check_page_token(settings, item["id"], item["token"])
            except ConnectRefused:
                return _refused(
                    request,
                    user,
                    _(
                        "Facebook says the token of Page %(name)s is not a Page token allowed "
                        "to publish. Nothing was connected."
                    )
                    % {"name": item["name"]},
                )
    names = []
    for item, community in chosen:
        account = _save_account(
            session=session,
            settings=settings,
            pending=pending,
            item=item,
            community=community,
            debug=checked.get(item["id"]),
            now=now_of(request),
        )
        audit(
            session=session,
            user=user,
            action="account.connected",
            object_type="account",
            object_id=account.slug,
            channel=account.kind.value,
            external_id=account.external_id,
            community=community.slug if community else None,
            scopes=pending["scopes"],
        )
        names.append(account.display_name)
    session.commit()
    from marketing.web.rendering import flash

    flash(request, _("Connected: %(names)s.") % {"names": ", ".join(names)})
    return RedirectResponse("/accounts/connect", status_code=303)


def _save_account(
    *,
    session: Session,
    settings: Settings,
    pending: dict[str, Any],
    item: dict[str, Any],
    community: Community | None,
    debug: dict[str, Any] | None,
    now: datetime,
) -> ChannelAccount:
    facebook = pending["provider"] == "facebook"
    kind = ChannelKind.FACEBOOK if facebook else ChannelKind.YOUTUBE
    account = session.scalars(
        select(ChannelAccount).where(
            ChannelAccount.kind == kind, ChannelAccount.external_id == item["id"]
        )
    ).first()
    if account is None:
        account = ChannelAccount(
            slug=_slug("fb" if facebook else "yt", item["id"]),
            kind=kind,
            external_id=item["id"],
            display_name=item["name"][:200],
            health=AccountHealth.OK,
        )
        session.add(account)
    account.community_id = community.id if community else None
    account.secret_name = None  # the store serves it from now on
    session.flush()
    if facebook:
        ends = (debug or {}).get("data_access_expires_at")
        store_tokens(
            session=session,
            account=account,
            kind=TokenKind.FACEBOOK_PAGE,
            access_token=SecretStr(item["token"]),
            lifetime_ends_at=datetime.fromtimestamp(int(ends), UTC) if ends else None,
            scopes=(debug or {}).get("scopes") or pending["scopes"],
            settings=settings,
        )
    else:
        expiry = pending.get("expiry")
        store_tokens(
            session=session,
            account=account,
            kind=TokenKind.GOOGLE,
            access_token=SecretStr(pending["access"]),
            refresh_token=SecretStr(pending["refresh"]),
            access_expires_at=datetime.fromisoformat(expiry) if expiry else None,
            # developers.google.com/identity/protocols/oauth2#expiration: a project whose
            # consent screen is in Testing gets refresh tokens that expire in 7 days.
            lifetime_ends_at=(now + timedelta(days=7) if settings.google_consent_testing else None),
            scopes=pending["scopes"],
            settings=settings,
        )
    if account.health != AccountHealth.OK:
        account_reconnected(session=session, slug=account.slug, now=now)
    else:
        account.health_checked_at = now
    return account


# --- LINE -----------------------------------------------------------------------------------

#: A channel access token is a few hundred characters (a long-lived one ~170, a v2.1 JWT-issued
#: one longer); anything past this is not one.
LINE_TOKEN_MAX = 2000


def check_line_token(settings: Settings, token: str) -> BotProfile:
    """Who ``token`` acts for, asked of LINE (``GET /v2/bot/info``) through the adapter and
    the official SDK; raises :class:`ConnectRefused` with a Thai message for staff."""
    from channels.base import Account
    from channels.errors import AuthExpired, ChannelError
    from channels.line import LineSettings, line_adapter
    from channels.ratelimit import MemoryTokenBucket

    _ = gettext_for(None)
    adapter = line_adapter(
        LineSettings.model_validate(settings, from_attributes=True),
        hourly=MemoryTokenBucket(rate=1, capacity=1),  # nothing is sent here
    )
    probe = Account(
        kind=ChannelKind.LINE.value, external_id="", display_name="", token=SecretStr(token)
    )
    try:
        return adapter.bot_profile(probe)
    except AuthExpired:
        raise ConnectRefused(
            _(
                "LINE did not accept this channel access token, so nothing was connected. "
                "In the LINE Developers console open the channel of the Official Account, "
                "tab Messaging API, issue a channel access token (long-lived), copy all of it "
                "and paste it again."
            )
        ) from None
    except ChannelError:
        raise ConnectRefused(
            _(
                "LINE did not answer, so the token was not checked and nothing was connected. "
                "Try again in a few minutes."
            )
        ) from None


@router.post("/accounts/connect/line")
def line_connect(
    request: Request,
    user: Admin,
    session: DB,
    token: Annotated[str, Form(max_length=LINE_TOKEN_MAX)] = "",
    community: Annotated[str, Form(max_length=80)] = "programme",
) -> Response:
    """Check a pasted channel access token against LINE's bot info, then store it encrypted
    for the Official Account it acts for, tied to a community or the programme."""
    settings = settings_of(request)
    _ = gettext_for(user)
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        return _refused(
            request,
            user,
            _(
                "Paste the channel access token of the LINE Official Account (one long line "
                "from the LINE Developers console, tab Messaging API). Nothing was connected."
            ),
        )
    tied: Community | None = None
    if community != "programme":
        tied = session.scalars(select(Community).where(Community.slug == community)).first()
        if tied is None:
            return _refused(request, user, _("There is no such community."))
    try:
        profile = check_line_token(settings, token)
    except ConnectRefused as refused:
        return _refused(request, user, refused.message)
    now = now_of(request)
    account = session.scalars(
        select(ChannelAccount).where(
            ChannelAccount.kind == ChannelKind.LINE,
            ChannelAccount.external_id.in_([profile.user_id, profile.basic_id]),
        )
    ).first()
    if account is None:
        account = ChannelAccount(
            slug=_slug("line", profile.basic_id.lstrip("@")),
            kind=ChannelKind.LINE,
            external_id=profile.basic_id,
            display_name=profile.display_name[:200],
            health=AccountHealth.OK,
        )
        session.add(account)
    else:
        account.display_name = profile.display_name[:200]
    account.community_id = tied.id if tied else None
    account.secret_name = None  # the store serves it from now on
    session.flush()
    store_tokens(
        session=session,
        account=account,
        kind=TokenKind.LINE_CHANNEL,
        access_token=SecretStr(token),
        settings=settings,
    )
    if account.health != AccountHealth.OK:
        account_reconnected(session=session, slug=account.slug, now=now)
    else:
        account.health_checked_at = now
    audit(
        session=session,
        user=user,
        action="account.connected",
        object_type="account",
        object_id=account.slug,
        channel=account.kind.value,
        external_id=account.external_id,
        community=tied.slug if tied else None,
        scopes=[],
    )
    session.commit()
    from marketing.web.rendering import flash

    flash(
        request,
        _("Connected the LINE Official Account %(name)s (%(basic_id)s).")
        % {"name": profile.display_name, "basic_id": profile.basic_id},
    )
    return RedirectResponse("/accounts/connect", status_code=303)


# --- delegated reconnect ------------------------------------------------------------------


def _finish_delegated(
    request: Request,
    session: Session,
    settings: Settings,
    actor: Connector,
    pending: dict[str, Any],
) -> Response:
    """Save the delegated visitor's one account from the provider's answer (nothing else),
    end the grant and put its waiting posts back on the schedule."""
    account = actor.account
    assert account is not None
    _ = gettext_for(None)
    facebook = pending["provider"] == "facebook"
    kind = ChannelKind.FACEBOOK if facebook else ChannelKind.YOUTUBE
    mine = [i for i in pending["items"] if i["id"] == account.external_id]
    if account.kind != kind or not mine:
        return _delegated_refused(
            request, session, actor, _only_this_account(account), why="other account"
        )
    item = mine[0]
    debug: dict[str, Any] | None = None
    if facebook:
        try:
            debug = _check_page_token(settings, item["id"], item["token"])
        except ConnectRefused:
            return _delegated_refused(
                request,
                session,
                actor,
                _(
                    "Facebook says the token of Page %(name)s is not a Page token allowed "
                    "to publish. Nothing was connected."
                )
                % {"name": item["name"]},
                why="page token",
            )
    community = session.get(Community, account.community_id) if account.community_id else None
    now = now_of(request)
    waiting = account_reconnected(session=session, slug=account.slug, now=now)
    _save_account(
        session=session,
        settings=settings,
        pending={**pending, "items": [item]},
        item=item,
        community=community,
        debug=debug,
        now=now,
    )
    audit(
        session=session,
        user=None,
        actor="delegated link",
        action="account.connected",
        object_type="account",
        object_id=account.slug,
        channel=account.kind.value,
        external_id=account.external_id,
        community=community.slug if community else None,
        scopes=pending["scopes"],
        link_id=actor.link_id,
        rescheduled=waiting,
        address=client_address(request),
    )
    session.commit()
    end_delegation(request)
    return render(
        request,
        "connect_done.html",
        user=None,
        account=account,
        community=community.name_th if community else None,
        waiting=waiting,
    )


register_connect_flow(ChannelKind.FACEBOOK, lambda account: "/accounts/connect/facebook/delegated")
register_connect_flow(ChannelKind.YOUTUBE, lambda account: "/accounts/connect/youtube/delegated")
