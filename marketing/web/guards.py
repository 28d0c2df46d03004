"""What the web app refuses before any page code runs: request bodies over their route's
limit, and control characters in parameters and form fields.

**Body size.**  :class:`BodyLimit` is the outermost middleware but one, so it runs before the
session is read, before sign-in is checked and before a form is parsed or an upload spooled
to a temporary file.  A body whose ``Content-Length`` is over the route's limit is refused
with 413 without reading a byte of it; a body without one (``Transfer-Encoding: chunked``)
is counted as it streams in and refused as soon as it passes the limit, so the app never
holds more than the limit plus one chunk.  The limits are data (:data:`ROUTE_LIMITS`):

========================================  ==============================================
route                                      limit
========================================  ==============================================
every other request (sign-in, settings,    :data:`FORM_MAX_BYTES` (64 KiB)
actions on posts, the JSON API's small
requests)
campaign check and apply (pages and API)   :data:`CAMPAIGN_BODY_MAX_BYTES`: three times the
                                           2,000,000-byte campaign limit (a form sends
                                           Thai text percent-encoded, three bytes for each
                                           one) plus a form's worth
subscriber CSV upload                      :data:`SUBSCRIBER_BODY_MAX_BYTES`: the
                                           200,000,000-byte CSV limit plus a form's worth
one post's new text (page and API)         :data:`POST_TEXT_BODY_MAX_BYTES`: 70,000
                                           characters of Thai percent-encoded plus a
                                           form's worth (695,536 bytes)
media library form upload (page and API)   :data:`MEDIA_FORM_BODY_MAX_BYTES`: 200 MiB of
                                           files plus a form's worth
one chunk of a chunked media upload        :data:`MEDIA_CHUNK_BODY_MAX_BYTES`: 8 MiB plus
                                           a form's worth
========================================  ==============================================

The proxy in front (docs/security.md) should refuse earlier still: ``client_max_body_size``
at least :data:`LARGEST_BODY_BYTES`.

**Control characters.**  :func:`refuse_control_characters` runs before every route's own
dependencies (sign-in included): a query parameter, a form field or an uploaded file's name
that holds a control character (NUL and the other C0 and C1 codes; tab, line feed and
carriage return are text) is refused with 400 and a message naming the field, instead of
reaching the database (PostgreSQL refuses NUL in text: that was a 500).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketing.media_library import CHUNK_MAX_BYTES, FORM_UPLOAD_MAX_BYTES
from marketing.post_edits import MAX_TEXT
from marketing.problems import control_character
from marketing.web.campaign_files import MAX_CAMPAIGN_BYTES
from marketing.web.imports import MAX_CSV_BYTES
from marketing.web.rendering import gettext_for, render

FORM_MAX_BYTES = 64 * 1024
# The largest form field: a campaign file as the editor promises it, percent-encoded as an
# ordinary form sends it (each UTF-8 byte of Thai becomes three: "%E0").
FORM_FIELD_MAX_BYTES = 3 * MAX_CAMPAIGN_BYTES
CAMPAIGN_BODY_MAX_BYTES = FORM_FIELD_MAX_BYTES + FORM_MAX_BYTES
SUBSCRIBER_BODY_MAX_BYTES = MAX_CSV_BYTES + FORM_MAX_BYTES
# One post's new text: the longest a channel takes, Thai percent-encoded (nine bytes a
# character), plus a form's worth.
POST_TEXT_BODY_MAX_BYTES = 9 * MAX_TEXT + FORM_MAX_BYTES
MEDIA_FORM_BODY_MAX_BYTES = FORM_UPLOAD_MAX_BYTES + FORM_MAX_BYTES
MEDIA_CHUNK_BODY_MAX_BYTES = CHUNK_MAX_BYTES + FORM_MAX_BYTES


@dataclass(frozen=True)
class RouteLimit:
    """The body limit of the routes whose method is ``method`` and whose path matches
    ``path`` as a whole."""

    method: str
    path: re.Pattern[str]
    max_bytes: int


ROUTE_LIMITS: tuple[RouteLimit, ...] = (
    RouteLimit("POST", re.compile(r"/campaigns/(check|apply)"), CAMPAIGN_BODY_MAX_BYTES),
    RouteLimit("POST", re.compile(r"/api/v1/campaigns(/check)?"), CAMPAIGN_BODY_MAX_BYTES),
    RouteLimit("POST", re.compile(r"/communities/[^/]+/subscribers"), SUBSCRIBER_BODY_MAX_BYTES),
    RouteLimit("POST", re.compile(r"(/api/v1)?/posts/[0-9]+/edit"), POST_TEXT_BODY_MAX_BYTES),
    RouteLimit("POST", re.compile(r"/library|/api/v1/media"), MEDIA_FORM_BODY_MAX_BYTES),
    RouteLimit("PUT", re.compile(r"/api/v1/media/uploads/[^/]+"), MEDIA_CHUNK_BODY_MAX_BYTES),
)
LARGEST_BODY_BYTES = max([FORM_MAX_BYTES, *(r.max_bytes for r in ROUTE_LIMITS)])


def body_limit(method: str, path: str) -> int:
    """The largest body, in bytes, that ``method path`` accepts."""
    for route in ROUTE_LIMITS:
        if route.method == method and route.path.fullmatch(path):
            return route.max_bytes
    return FORM_MAX_BYTES


class _BodyTooLarge(Exception):
    """Raised into the app from ``receive`` when a streamed body passes its limit."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def body_too_large(request: Request, limit: int) -> Response:
    """The 413 answer: JSON for the API, a page in Thai (the visitor is not known yet)."""
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {
                "detail": f"the request body is larger than {limit:,} bytes, the most this "
                "route accepts"
            },
            status_code=413,
        )
    _ = gettext_for(None)
    return render(
        request,
        "error.html",
        user=None,
        public=True,
        status_code=413,
        title=_("The request is too large"),
        message=_(
            "This page accepts at most %(limit)s bytes. Send a smaller file, or split it "
            "into parts and send them one at a time."
        )
        % {"limit": f"{limit:,}"},
        needed=None,
    )


class BodyLimit:
    """Refuses request bodies over their route's limit before the app reads them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await body_too_large(Request(scope), limit)(scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # whatever the app made of the cut-off body: the 413 goes instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, answer)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await body_too_large(Request(scope), limit)(scope, receive, send)


class ControlCharacterRefused(ValueError):
    """A parameter or form field holds a control character."""

    def __init__(self, field: str, character: str) -> None:
        super().__init__(f"{field}: contains the control character {character}")
        self.field = field
        self.character = character


def _shown(name: str) -> str:
    """A field name as it can be shown: without control characters, at most 60 characters."""
    cleaned = "".join(c if control_character(c) is None else "?" for c in name)
    return cleaned[:60] or "?"


def _check(name: str, value: str) -> None:
    found = control_character(name) or control_character(value)
    if found is not None:
        raise ControlCharacterRefused(_shown(name), found)


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def refuse_control_characters(request: Request) -> AsyncIterator[None]:
    """Refuse a request whose query parameters or form fields hold a control character."""
    for name, value in request.query_params.multi_items():
        _check(name, value)
    if request.headers.get("content-type", "").split(";")[0].strip() not in _FORMS:
        yield
        return
    form = await request.form()  # cached: the route reads the same parsed form
    try:
        for name, item in form.multi_items():
            if isinstance(item, UploadFile):
                _check(name, "")
                _check(f"{name} (file name)", item.filename or "")
            else:
                _check(name, item)
        yield
    finally:
        await form.close()  # its spooled files, when no form parameter of the route did


async def control_character_refused(request: Request, exc: Exception) -> Response:
    """The 400 answer to :class:`ControlCharacterRefused`: JSON for the API, else a page."""
    assert isinstance(exc, ControlCharacterRefused)
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {
                "detail": f"{exc.field}: contains the control character {exc.character}; "
                "remove it and send again"
            },
            status_code=400,
        )
    user = getattr(request.state, "user", None)
    _ = gettext_for(user)
    return render(
        request,
        "error.html",
        user=user,
        public=user is None,
        status_code=400,
        title=_("The request is not valid"),
        message=_(
            "The field %(field)s contains a control character (%(character)s), which text "
            "may not hold. Remove it (retype the value rather than pasting it) and send again."
        )
        % {"field": exc.field, "character": exc.character},
        needed=None,
    )
