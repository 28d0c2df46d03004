"""The web app: assembled from its routers, with sessions, security headers and error pages.

:func:`create_app` builds it on the configured database (or a given engine); ``marketing
serve`` runs it under uvicorn.  Pages are server-rendered HTML that work without any script
(small scripts of our own, static files of the app, add the composer's live check, the
calendar's drag and drop and the media library's upload progress); the JSON API lives under
``/api/v1`` and describes itself at ``/api/openapi.json``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from channels.tracking import TrackingLinks
from marketing import __version__
from marketing.db import get_engine, utcnow
from marketing.media_library import MediaRules, default_rules
from marketing.models import User
from marketing.settings import (
    Settings,
    check_development_secrets,
    development_secrets,
    get_settings,
    is_loopback_host,
)
from marketing.web import (
    alerts,
    api,
    campaigns,
    communities,
    composer,
    connect,
    guards,
    media,
    ops,
    overview,
    people,
    posts,
    reports,
    search,
    tracking,
)
from marketing.web.deps import CsrfRejected, NotAllowed, SignInRequired
from marketing.web.rendering import gettext_for, render
from marketing.web.report_cache import DocumentCache
from marketing.web.staff import SESSION_HOURS
from marketing.web.throttle import SignInThrottle

STATIC = Path(__file__).with_name("static")


# Every router of the app, in the order they are matched.
def _shown_detail(gettext: Any, detail: str, status: int) -> str:
    """An error's detail for a page: its translation when the catalog has one; else, to a
    reader of another language than the code's English, what the status means."""
    if not detail.isascii():  # written in the reader's language where it was raised
        return detail
    translated = str(gettext(detail))
    if translated != detail or gettext("Not found") == "Not found":  # translated, or English
        return translated
    if status == 404:
        return str(gettext("Nothing is here: the address may be mistyped, or it was removed."))
    if status == 400:
        return str(gettext("A value in the address or the form is not valid."))
    return str(gettext("Something went wrong. Try again, or tell the system administrator."))


ROUTERS = (
    *(
        m.router
        for m in (
            ops,
            people,
            overview,
            composer,  # before campaigns: /campaigns/compose is not a campaign's slug
            campaigns,
            posts,
            communities,
            alerts,
            connect,
            reports,
            search,
            tracking,
            media,
            api,
        )
    ),
    media.api,
)
SESSION_COOKIE = "glo_session"

# Scripts only from this app's own static files (the composer's live check, the calendar's
# drag and drop, the media library's upload progress), never inline; inline styles only for
# the email previews and the report documents.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
]


# Everything but the static files is private or personal (pages, API answers, CSV, media,
# tracking answers): no browser or proxy may keep a copy.
CACHEABLE_PATHS = ("/static/", "/favicon.ico")
NO_STORE = (b"cache-control", b"no-store")
# A year, as browsers' preload lists ask; no includeSubDomains: other hosts of the domain may
# not speak HTTPS.
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """Adds the security headers to every HTTP answer: ``Cache-Control: no-store`` to all but
    the static files, and HSTS when the public URL is https."""

    def __init__(
        self, app: ASGIApp, *, hsts: bool = False, form_targets: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        headers = SECURITY_HEADERS
        if form_targets:
            # Connecting an account posts a form that redirects to the provider's sign-in
            # page; form-action governs that redirect too, so those origins are named.
            policy = CONTENT_SECURITY_POLICY.replace(
                "form-action 'self'", "form-action 'self' " + " ".join(form_targets)
            )
            headers = [
                (b"content-security-policy", policy.encode("ascii")),
                *SECURITY_HEADERS[1:],
            ]
        self.headers = [*headers, HSTS] if hsts else headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = not str(scope["path"]).startswith(CACHEABLE_PATHS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if not (private and name.lower() == b"cache-control")
                ]
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in names)
                if private:
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def sign_in_origins(settings: Settings) -> tuple[str, ...]:
    """The origins of the Facebook Login dialog and Google's consent page, when connecting
    accounts is configured."""
    urls = []
    if settings.facebook_app_id:
        urls.append(settings.facebook_dialog_url)
    if settings.google_client_id:
        urls.append(settings.google_auth_uri)
    origins = []
    for url in urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme in ("http", "https") and parts.netloc and origin not in origins:
            origins.append(origin)
    return tuple(origins)


def reached_from_elsewhere(server: tuple[str, int | None] | None) -> bool:
    """Whether a connection that arrived on the local address ``server`` (the ASGI scope's
    ``server``) may have come from another machine: any address but loopback, and a Unix
    socket (whatever proxy serves it may be public).  In-process test transports name a
    host instead of an address; nothing reaches them over a network."""
    if server is None or server[1] is None:
        return True
    host = server[0]
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not is_loopback_host(host)


class LoopbackOnly:
    """While the development secrets are in use, answers 503 to any request that arrived
    other than through loopback (``uvicorn --factory --host 0.0.0.0`` with a loopback
    public URL): anyone who can reach the app could forge its cookies and links."""

    def __init__(self, app: ASGIApp, *, variables: list[str]) -> None:
        self.app = app
        self.variables = variables

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and reached_from_elsewhere(scope.get("server")):
            _ = gettext_for(None)
            message = _(
                "This service still uses the development secrets (%(variables)s), so it "
                "answers only on this machine (127.0.0.1). The administrator must set each "
                "to a long random value and restart the service."
            ) % {"variables": ", ".join(self.variables)}
            response = PlainTextResponse(message, status_code=503)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _user(request: Request) -> User | None:
    user: User | None = getattr(request.state, "user", None)
    return user


def create_app(
    *,
    engine: Engine | None = None,
    settings: Settings | None = None,
    clock: Callable[[], datetime] | None = None,
    throttle: SignInThrottle | None = None,
    media_rules: MediaRules | None = None,
) -> FastAPI:
    """The web app on ``engine`` (default: the configured database); ``clock`` says what time
    it is (aware; default: the system clock), for "today" on the dashboard, the calendar and
    the default report period, the "now" campaigns are planned against, and what sessions,
    tokens and the sign-in throttle take as now (tests move it).  Raises
    :class:`marketing.settings.DevelopmentSecretRefused` if a development secret would be
    used while the public URL is not this machine.  ``media_rules``: the channels' limits
    uploads to the media library are checked against (default: the channels' own)."""
    settings = settings or get_settings()
    # The bound address is not known here (uvicorn --factory): LoopbackOnly checks each
    # request's own local address instead.
    check_development_secrets(settings)
    app = FastAPI(
        title="GLO creative-community marketing",
        version=__version__,
        description="Campaigns, posts, communities and reports of the creative-community "
        "programme. Send `Authorization: Bearer <token>` (`marketing users token USER`).",
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: not offline
        redoc_url=None,
        dependencies=[Depends(guards.refuse_control_characters)],
        # A text field may hold the campaign file the editor promises (2,000,000 bytes).
        form_limits={"max_part_size": guards.FORM_FIELD_MAX_BYTES},
    )
    app.state.engine = engine or get_engine(settings.effective_database_url)
    app.state.settings = settings
    app.state.clock = clock = clock or utcnow
    app.state.media_rules = media_rules or default_rules()
    # The overview, built once per rollup and kept per process (marketing.web.report_cache).
    app.state.report_cache = DocumentCache()
    app.state.links = TrackingLinks(settings.public_base_url, settings.tracking_secret)
    app.state.throttle = throttle or SignInThrottle.from_settings(settings, clock=clock)

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.web_secret.get_secret_value(),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="lax",
        https_only=urlsplit(settings.public_base_url).scheme == "https",
    )
    in_use = development_secrets(settings, uses=("web", "tracking"))
    if in_use:
        app.add_middleware(LoopbackOnly, variables=in_use)
    app.add_middleware(guards.BodyLimit)  # outside the session: before anything is read
    app.add_middleware(
        SecurityHeaders,
        hsts=urlsplit(settings.public_base_url).scheme == "https",
        form_targets=sign_in_origins(settings),
    )
    app.add_exception_handler(guards.ControlCharacterRefused, guards.control_character_refused)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def _favicon() -> Response:
        # Browsers ask for it on pages without an icon of their own (the report documents).
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if _is_api(request):
            return JSONResponse(
                {"detail": "sign in first: send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"  # a form sent after the session ended is not sent again
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(NotAllowed)
    async def _not_allowed(request: Request, exc: NotAllowed) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=403)
        _ = gettext_for(_user(request))
        return render(
            request,
            "error.html",
            user=_user(request),
            status_code=403,
            title=_("Not allowed"),
            message=exc.reason or exc.needed.value,
            needed=exc.needed.value,
        )

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> Response:
        message = (
            "the form was not sent from this site or has expired: reload the page and try again"
        )
        if _is_api(request):
            return JSONResponse({"detail": f"{message} (send X-CSRF-Token)"}, status_code=403)
        _ = gettext_for(_user(request))
        return render(
            request,
            "error.html",
            user=_user(request),
            status_code=403,
            title=_("The form has expired"),
            message=_(
                "The form was not sent from this site or has expired. Reload the page and "
                "try again."
            ),
            needed=None,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or request.url.path.startswith("/e/") and exc.status_code != 404:
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        _ = gettext_for(_user(request))
        return render(
            request,
            "error.html",
            user=_user(request),
            public=request.url.path.startswith(("/e/", "/go/")),
            status_code=exc.status_code,
            title=_("Not found") if exc.status_code == 404 else str(exc.status_code),
            message=_shown_detail(_, str(exc.detail), exc.status_code),
            needed=None,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        if _is_api(request):
            return JSONResponse({"detail": errors}, status_code=422)
        _ = gettext_for(_user(request))
        return render(
            request,
            "error.html",
            user=_user(request),
            status_code=400,
            title=_("The request is not valid"),
            message=_shown_detail(
                _,
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors),
                400,
            ),
            needed=None,
        )

    return app
