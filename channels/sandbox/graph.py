"""A local Graph API server for Facebook Pages, speaking the protocol as the
``facebook-business`` SDK uses it.

What it answers (paths carry a version, ``/v25.0/...``; the token comes as ``access_token``
in the query string or the form body; bodies are form-encoded or multipart):

=============================================  ==============================================
``POST /{page-id}/feed``                        a text or link post (``message``, ``link``,
                                                ``published``, ``scheduled_publish_time``,
                                                ``fields`` for read-after-write)
``POST /{page-id}/photos``                      a photo post from an uploaded file or ``url``
``POST /{page-id}/videos``                      a video post from an uploaded file or
                                                ``file_url``
``GET /{page-id}/published_posts``, ``/feed``   the Page's posts, newest first, cursor paging
``GET /{page-id}/scheduled_posts``              posts waiting for their time
``GET /{object-id}?fields=...``                 a post, photo or video, with field expansion
                                                (``reactions.summary(total_count).limit(0)``,
                                                ``insights.metric(a,b)``)
``GET /?ids=a,b&fields=...``                    several objects at once (at most 50)
``GET /{post-id}/insights?metric=...``          post insights; a deprecated metric fails the
                                                whole request with error 100, as Graph does
``DELETE /{object-id}``                         removes a post, photo or video of the Page
                                                (``{"success": true}``); kept in ``removed``
=============================================  ==============================================

Pages and their tokens are registered with :meth:`GraphSandbox.register_page`; a wrong token
answers 190, a missing one 104, an expired one (:meth:`GraphSandbox.expire_token`) 190/463,
and another Page's token 200 (permission).  Every call made with a Page's token counts
against that Page's allowance (``page_call_limit`` calls in ``usage_window``): each answer
carries ``X-App-Usage``, ``X-Page-Usage`` and ``X-Business-Use-Case-Usage``, and once the
allowance is used up calls fail with error 80001 and an ``estimated_time_to_regain_access``.

Every publication is stored (:meth:`GraphSandbox.published`) with the marker tag read from
the invisible stamp our adapter puts in its text (:func:`read_stamp`, the sandbox's own
reading of the convention in docs/channels/facebook.md), so tests count publications per
marker tag (:meth:`GraphSandbox.count_by_marker`).  Engagement grows with the
sandbox clock through :func:`channels.sandbox.base.engagement`.  Duplicate detection
(error 506) is off by default: a test that proves exactly-once publishing must see a
duplicate, not have the sandbox refuse it.

Facebook Login, for connecting Pages (developers.facebook.com/docs/facebook-login/guides/
advanced/manual-flow): ``GET /{version}/dialog/oauth`` is the consent page of the user
signed in to the sandbox (:meth:`GraphSandbox.register_user`): a checkbox per Page the user
manages and per requested permission, so a test can untick one (granular consent); it
redirects to ``redirect_uri`` with ``code`` and ``state``.  ``/oauth/access_token`` exchanges a
code once for a short-lived user token ("This authorization code has been used" the second
time) and, with ``grant_type=fb_exchange_token``, a user token for a long-lived one
(``expires_in`` about 60 days: /docs/facebook-login/guides/access-tokens/get-long-lived).
``/me/accounts`` lists the granted Pages, each with its own Page access token (/docs/pages-api/
getting-started); ``/me/permissions`` says what was granted and declined (/docs/graph-api/
reference/user/permissions); ``/debug_token`` tells a token's type, expiry, data-access
expiry and (granular) scopes (/docs/graph-api/reference/debug_token).  Tokens begin ``EAA``.
:meth:`GraphSandbox.deauthorize` removes the app (its tokens answer 190/460).

Sources for the shapes: developers.facebook.com/docs/pages-api/posts (publishing, post
ids ``{page-id}_{post-id}``), /docs/graph-api/reference/page/photos, /docs/video-api/guides/
publishing (``{"id": video-id}``), /docs/graph-api/results (cursor paging, ``paging.next`` a
full URL carrying the token), /docs/graph-api/guides/field-expansion, /docs/graph-api/
advanced (read-after-write), /docs/graph-api/guides/error-handling (error body),
/docs/graph-api/overview/rate-limiting (usage headers), /docs/graph-api/reference/insights
and /docs/platforminsights/page/deprecated-metrics (metrics; error 3001/1504028 when none).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import itertools
import json
import math
import random
import re
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from channels.sandbox.base import Fault, SandboxHandler, SandboxServer, engagement

# The stamp our adapter ends a post's text with (docs/channels/facebook.md, "Exactly once:
# finding a post again"): 16 hex digits (the marker tag) written as 32 base-4 digits, one
# zero-width character each, between two U+2063 INVISIBLE SEPARATORs.  Read here by the
# sandbox's own code, never the adapter's: tests/test_sandbox_independence.py checks that
# what the adapter writes is what the sandbox reads.
STAMP_EDGE = "\u2063"  # INVISIBLE SEPARATOR
STAMP_DIGITS = "\u200b\u200c\u2060\u2062"  # ZWSP, ZWNJ, WORD JOINER, INVISIBLE TIMES = 0..3
_STAMP = re.compile(f"{STAMP_EDGE}([{STAMP_DIGITS}]{{32}}){STAMP_EDGE}")


def read_stamp(text: str | None) -> str | None:
    """The marker tag (16 hex digits) stamped into ``text``, or None without a stamp."""
    found = _STAMP.search(text or "")
    if found is None:
        return None
    value = 0
    for char in found.group(1):
        value = value * 4 + STAMP_DIGITS.index(char)
    return f"{value:016x}"


# -- Graph's documented error codes, written here from the documentation (not taken from the
# adapter's classifier in channels/facebook.py; tests/test_sandbox_independence.py checks the
# adapter reads each of them as the documentation says it should be handled).
# https://developers.facebook.com/docs/graph-api/guides/error-handling
INVALID_PARAMETER = 100  # "Invalid parameter"
TOKEN_MISSING = 104  # "An access token is required to request this resource."
TOKEN_INVALID = 190  # "Access token has expired": get a new access token
PERMISSION_DENIED = 200  # 200-299 "API Permission": handle the missing permission
DUPLICATE_POST = 506  # "Duplicate Post": change the post and try again
SUBCODE_APP_NOT_INSTALLED = 458  # the user has not logged into the app: reauthenticate
SUBCODE_PASSWORD_CHANGED = 460  # the password changed: reauthenticate
SUBCODE_SESSION_EXPIRED = 463  # "Expired": the access token has expired
# https://developers.facebook.com/docs/graph-api/overview/rate-limiting (business use case
# rate limits, 80001 for Pages): wait for estimated_time_to_regain_access.
PAGE_RATE_LIMITED = 80001

#: Post insights metrics the sandbox knows (views replaced impressions on 15 Nov 2025:
#: https://developers.facebook.com/docs/graph-api/changelog/version25.0 and
#: https://developers.facebook.com/docs/platforminsights/page/deprecated-metrics).
CURRENT_POST_METRICS: dict[str, str] = {
    "post_total_media_view_unique": "Unique views of the post's media",
    "post_total_media_view": "Views of the post's media",
}
#: Deprecated post metrics: asking for any of them is error 100 for the whole request.
DEPRECATED_POST_METRICS = frozenset(
    {
        "post_impressions",
        "post_impressions_unique",
        "post_impressions_paid_unique",
        "post_impressions_fan_unique",
        "post_impressions_organic_unique",
        "post_impressions_viral_unique",
        "post_impressions_nonviral_unique",
        "post_engaged_users",
    }
)

POST_FIELDS = frozenset(
    {
        "id",
        "message",
        "created_time",
        "updated_time",
        "permalink_url",
        "is_published",
        "scheduled_publish_time",
        "from",
        "status_type",
        "shares",
        "reactions",
        "comments",
        "insights",
    }
)
VIDEO_FIELDS = frozenset(
    {"id", "post_id", "permalink_url", "title", "description", "created_time", "updated_time"}
)
PHOTO_FIELDS = frozenset({"id", "created_time", "name", "link", "page_story_id"})
# ``?ids=`` lookups take at most 50 ids (multiple-ID read requests,
# https://developers.facebook.com/docs/graph-api/advanced; batches are limited to 50 likewise:
# https://developers.facebook.com/docs/graph-api/batch-requests).
MAX_IDS = 50


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    type: str = "OAuthException",  # noqa: A002 - Graph's own key
    is_transient: bool | None = None,
    trace: str = "AsandboxTrace0",
    **extra: Any,
) -> dict[str, Any]:
    """A Graph error body: ``{"error": {"message", "type", "code", "error_subcode",
    "fbtrace_id", "is_transient"?}}`` (developers.facebook.com/docs/graph-api/guides/
    error-handling)."""
    error: dict[str, Any] = {"message": message, "type": type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if is_transient is not None:
        error["is_transient"] = is_transient
    error["fbtrace_id"] = trace
    error.update(extra)
    return {"error": error}


def error_status(code: int) -> int:
    """The HTTP status Graph answers a given error code with."""
    if code in (1,):
        return 500
    if code in (2,):
        return 503
    if code in (10,) or 200 <= code <= 299:
        return 403
    if code == 803:
        return 404
    return 400


def error_fault(
    code: int,
    message: str | None = None,
    *,
    method: str = "*",
    path: str = "",
    subcode: int | None = None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    times: int | None = 1,
    is_transient: bool | None = None,
) -> Fault:
    """A :class:`Fault` that answers like Graph does with error ``code``."""
    return Fault(
        "error",
        method=method,
        path=path,
        status=status or error_status(code),
        body=graph_error(
            code, message or f"(#{code}) injected error", subcode=subcode, is_transient=is_transient
        ),
        headers=headers or {},
        times=times,
    )


class GraphError(Exception):
    """Raised inside the handler to answer with a Graph error body."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        type: str = "OAuthException",  # noqa: A002
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.subcode, self.type = code, message, subcode, type
        self.status = status or error_status(code)
        self.headers = headers or {}


@dataclass
class Publication:
    """One post on a sandbox Page, as the test sees it."""

    id: str  # "{page-id}_{n}"
    page_id: str
    kind: str  # "feed", "photo" or "video"
    message: str
    created_time: datetime
    link: str | None = None
    marker: str | None = None  # the marker tag read from the text's stamp (read_stamp)
    media_bytes: int = 0
    media_name: str | None = None
    object_id: str | None = None  # the photo or video id
    title: str | None = None
    published: bool = True
    scheduled_publish_time: int | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_time"] = self.created_time.isoformat()
        return data


@dataclass
class SandboxPage:
    page_id: str
    token: str
    name: str
    expired: bool = False
    calls: deque[datetime] = field(default_factory=deque)


@dataclass
class SandboxUser:
    user_id: str
    name: str
    page_ids: list[str]  # Pages the user manages directly: /me/accounts lists them
    # Pages the user reaches only through a business (Business Manager): not in /me/accounts,
    # but under /me/businesses -> /{business-id}/owned_pages (developers.facebook.com/docs/
    # graph-api/reference/business/owned_pages/), with the business_management permission.
    businesses: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    @property
    def every_page_id(self) -> list[str]:
        """Every Page the Login dialog offers: direct ones, then those of the businesses."""
        return self.page_ids + [p for _name, pages in self.businesses.values() for p in pages]


@dataclass
class LoginGrant:
    """What one pass through the Login dialog granted to an app."""

    user_id: str
    app_id: str
    page_ids: list[str]
    granted: list[str]
    declined: list[str]
    revoked: bool = False


@dataclass
class LoginCode:
    grant: LoginGrant
    redirect_uri: str
    issued_at: datetime
    used: bool = False


@dataclass
class UserToken:
    grant: LoginGrant
    expires_at: datetime
    long_lived: bool


@dataclass
class IssuedPageToken:
    page_id: str
    grant: LoginGrant


SHORT_LIVED = timedelta(hours=1, minutes=30)
LONG_LIVED = timedelta(days=60)
DATA_ACCESS = timedelta(days=90)
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class FieldSpec:
    """One entry of a ``fields=`` list: ``reactions.summary(total_count).limit(0)``."""

    name: str
    modifiers: dict[str, str]


def parse_fields(spec: str) -> list[FieldSpec]:
    """Split a ``fields`` parameter at top-level commas and read each field's modifiers."""
    items, depth, current = [], 0, ""
    for char in spec:
        if char in "({":
            depth += 1
        elif char in ")}":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    fields = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name = re.match(r"[A-Za-z_]+", item)
        if name is None:
            raise GraphError(INVALID_PARAMETER, f"(#100) Syntax error in fields: {item!r}")
        modifiers = dict(re.findall(r"\.(\w+)\(([^()]*)\)", item))
        fields.append(FieldSpec(name.group(0), modifiers))
    return fields


def _metric_names(value: str) -> list[str]:
    # The SDK JSON-encodes a list parameter (metric=["a","b"]); a browser sends a,b.
    value = value.strip()
    if value.startswith("["):
        loaded = json.loads(value)
        return [str(v) for v in loaded]
    return [v.strip() for v in value.split(",") if v.strip()]


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _parse_time(value: str) -> datetime:
    if re.fullmatch(r"\d+", value):
        return datetime.fromtimestamp(int(value), UTC)
    try:
        moment = datetime.fromisoformat(value.replace("+0000", "+00:00"))
    except ValueError:
        raise GraphError(INVALID_PARAMETER, f"(#100) Invalid time: {value}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cursor(post_id: str) -> str:
    return base64.urlsafe_b64encode(post_id.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except ValueError:
        raise GraphError(INVALID_PARAMETER, "(#100) Invalid cursor") from None


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Form fields and files of a ``multipart/form-data`` body, byte for byte."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        raise GraphError(INVALID_PARAMETER, "(#100) multipart body without boundary")
    delimiter = b"--" + found.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for section in body.split(delimiter)[1:]:
        if section.startswith(b"--"):
            break
        section = section.removeprefix(b"\r\n")
        head, _, data = section.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        headers = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', headers)
        if name is None:
            continue
        if re.search(r"\bfilename\*?=", headers):
            files[name.group(1)] = data
        else:
            fields[name.group(1)] = data.decode("utf-8")
    return fields, files


class GraphHandler(SandboxHandler):
    sandbox: GraphSandbox

    def route(self) -> None:
        graph = self.sandbox
        usage_headers: dict[str, str] = {}
        try:
            split = urlsplit(self.path)
            params, files = self._params(split.query)
            found = re.fullmatch(r"/(v\d+\.\d+)(/.*)?", split.path)
            if found is None:
                raise GraphError(2500, f"Unknown path components: {split.path}")
            parts = [p for p in (found.group(2) or "").split("/") if p]
            if parts == ["dialog", "oauth"]:
                graph._login_dialog(self, params)
                return
            user_token = graph._user_token(params.get("access_token")) is not None
            if parts[:1] in (["oauth"], ["debug_token"]) or (
                user_token and (parts[:1] == ["me"] or graph._is_business(parts))
            ):
                self.send_json(200, graph._login_api(parts, params))
                return
            page = graph._authenticate(params)
            usage_headers = graph._count_call(page)  # raises 80001 past the allowance
            status, payload = graph._answer(self.command, parts, params, files, page, split.path)
        except GraphError as exc:
            body = graph_error(exc.code, exc.message, subcode=exc.subcode, type=exc.type)
            body["error"]["fbtrace_id"] = graph._trace()
            self.send_json(exc.status, body, exc.headers or usage_headers)
            return
        self.send_json(status, payload, usage_headers)

    def _params(self, query: str) -> tuple[dict[str, str], dict[str, bytes]]:
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        files: dict[str, bytes] = {}
        body = self._read_body() if self.command in ("POST", "PUT", "DELETE") else b""
        content_type = self.headers.get("Content-Type") or ""
        if body and content_type.startswith("multipart/form-data"):
            fields, files = parse_multipart(content_type, body)
            params.update(fields)
        elif body:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
            params.update({k: v[-1] for k, v in form.items()})
        return params, files

    def control(self) -> None:
        """Besides the base controls: ``POST /_sandbox/pages`` ``{"page_id", "token"}``
        registers a Page, ``GET /_sandbox/published`` lists every publication."""
        if self.command == "POST" and self.path.startswith("/_sandbox/pages"):
            spec = json.loads(self._read_body() or b"{}")
            self.sandbox.register_page(str(spec["page_id"]), str(spec["token"]), spec.get("name"))
            self.send_json(200, {"ok": True})
        elif self.command == "GET" and self.path.startswith("/_sandbox/published"):
            self.send_json(200, [p.to_json() for p in self.sandbox.published()])
        else:
            super().control()


class GraphSandbox(SandboxServer):
    """The Graph API for Facebook Pages, on 127.0.0.1 (see the module docstring)."""

    handler_class = GraphHandler

    def __init__(
        self,
        *,
        page_call_limit: int = 200,
        app_call_limit: int = 10_000,
        usage_window: timedelta = timedelta(hours=1),
        app_secret: str | None = None,
        reject_duplicates: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.page_call_limit = page_call_limit
        self.app_call_limit = app_call_limit
        self.usage_window = usage_window
        self.app_secret = app_secret
        self.reject_duplicates = reject_duplicates
        self._pages: dict[str, SandboxPage] = {}
        self._publications: list[Publication] = []
        self._objects: dict[str, Publication] = {}  # photo and video ids
        self.removed: list[Publication] = []  # deleted through the API (takedowns)
        self._app_calls: deque[datetime] = deque()
        self._call_totals: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._traces = itertools.count(1)
        self.apps: dict[str, str] = {}  # app id -> app secret
        self.users: dict[str, SandboxUser] = {}
        self.login_user: str | None = None  # who is signed in to the Login dialog
        self._codes: dict[str, LoginCode] = {}
        self._user_tokens: dict[str, UserToken] = {}
        self._page_tokens: dict[str, IssuedPageToken] = {}
        self._secrets = random.Random(f"{self.seed}:login")

    # -- what tests call ------------------------------------------------------------------

    def register_page(self, page_id: str, token: str, name: str | None = None) -> None:
        """Make ``page_id`` a Page whose Page access token is ``token``."""
        with self.lock:
            self._pages[page_id] = SandboxPage(page_id, token, name or f"Page {page_id}")

    def register_app(self, app_id: str, app_secret: str) -> None:
        """A Facebook app that may show the Login dialog."""
        with self.lock:
            self.apps[app_id] = app_secret

    def _is_business(self, parts: list[str]) -> bool:
        """``/{business-id}/owned_pages`` or ``client_pages`` of a known business."""
        with self.lock:
            known = {b for user in self.users.values() for b in user.businesses}
        return len(parts) == 2 and parts[0] in known and parts[1] in ("owned_pages", "client_pages")

    def register_user(
        self,
        user_id: str,
        name: str,
        page_ids: list[str],
        businesses: dict[str, tuple[str, list[str]]] | None = None,
    ) -> None:
        """A Facebook user who manages ``page_ids``, and the Pages of ``businesses``
        (business id -> (name, page ids)) through a business only; the first user registered
        is the one signed in to the Login dialog."""
        with self.lock:
            self.users[user_id] = SandboxUser(user_id, name, list(page_ids), dict(businesses or {}))
            self.login_user = self.login_user or user_id

    def deauthorize(self, user_id: str) -> None:
        """The user removed the app: every token of theirs answers 190/460 from now on."""
        with self.lock:
            for token in self._user_tokens.values():
                if token.grant.user_id == user_id:
                    token.grant.revoked = True
            for issued in self._page_tokens.values():
                if issued.grant.user_id == user_id:
                    issued.grant.revoked = True

    def issued_tokens(self) -> list[str]:
        """Every user and Page token the Login endpoints issued (for leak checks)."""
        with self.lock:
            return [*self._user_tokens, *self._page_tokens]

    def expire_token(self, page_id: str) -> None:
        """From now on ``page_id``'s token answers 190/463 (session has expired)."""
        with self.lock:
            self._pages[page_id].expired = True

    def published(self, page_id: str | None = None) -> list[Publication]:
        """Every publication, oldest first (of one Page if ``page_id`` is given)."""
        with self.lock:
            return [p for p in self._publications if page_id in (None, p.page_id)]

    def count_by_marker(self) -> dict[str | None, int]:
        """How many publications carry each marker tag (None: no stamp)."""
        with self.lock:
            return dict(Counter(p.marker for p in self._publications))

    def calls(self, page_id: str) -> int:
        """How many requests were made with ``page_id``'s token, ever."""
        with self.lock:
            return self._call_totals[page_id]

    def usage(self, page_id: str) -> dict[str, Any]:
        """The Page's usage as its ``X-Business-Use-Case-Usage`` entry reports it."""
        with self.lock:
            return self._page_usage(self._pages[page_id])

    def state(self) -> dict[str, Any]:
        state = super().state()
        with self.lock:
            state["pages"] = sorted(self._pages)
            state["publications"] = len(self._publications)
        return state

    # -- Facebook Login ---------------------------------------------------------------------

    def _new_token(self) -> str:
        with self.lock:
            return "EAA" + "".join(self._secrets.choice(TOKEN_ALPHABET) for _ in range(180))

    def _user_token(self, token: str | None) -> UserToken | None:
        with self.lock:
            return self._user_tokens.get(token or "")

    def _login_dialog(self, handler: GraphHandler, params: dict[str, str]) -> None:
        """The consent page (GET) and its answer (POST): a redirect with a code."""
        with self.lock:
            user = self.users.get(self.login_user or "")
            known_app = params.get("client_id") in self.apps
        if user is None or not known_app:
            handler.send_bytes(
                400,
                b"<h1>Invalid App ID</h1><p>The provided app ID does not look like a valid "
                b"app ID.</p>",
                "text/html; charset=utf-8",
            )
            return
        redirect = params.get("redirect_uri", "")
        state = {"state": params["state"]} if "state" in params else {}
        if handler.command == "GET":
            scopes = [s for s in params.get("scope", "").replace(" ", ",").split(",") if s]
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in params.items()
            )
            pages = "".join(
                f'<label><input type="checkbox" name="page" value="{html.escape(p)}" checked> '
                f"{html.escape(self._pages[p].name if p in self._pages else p)}</label><br>"
                for p in user.every_page_id
            )
            boxes = "".join(
                f'<label><input type="checkbox" name="grant" value="{html.escape(s)}" '
                f"checked> {html.escape(s)}</label><br>"
                for s in scopes
            )
            page = (
                "<!doctype html><html><head><meta charset='utf-8'><title>Log in with "
                f"Facebook (sandbox)</title></head><body><h1>{html.escape(user.name)}</h1>"
                "<form method='post'>"
                f"{hidden}<h2>Choose the Pages</h2>{pages}<h2>Permissions</h2>{boxes}"
                "<button type='submit' name='decision' value='allow'>Continue</button> "
                "<button type='submit' name='decision' value='deny'>Cancel</button>"
                "</form></body></html>"
            )
            handler.send_bytes(200, page.encode("utf-8"), "text/html; charset=utf-8")
            return
        form = parse_qs(handler._read_body().decode("utf-8", "replace"))
        if params.get("decision") != "allow":
            query = urlencode(
                {
                    "error": "access_denied",
                    "error_reason": "user_denied",
                    "error_description": "Permissions error",
                    **state,
                }
            )
            handler.send_bytes(302, b"", headers={"Location": f"{redirect}?{query}"})
            return
        asked = [s for s in params.get("scope", "").replace(" ", ",").split(",") if s]
        granted = [s for s in asked if s in form.get("grant", [])]
        grant = LoginGrant(
            user_id=user.user_id,
            app_id=params["client_id"],
            page_ids=[p for p in user.every_page_id if p in form.get("page", [])],
            granted=["public_profile", *granted],
            declined=[s for s in asked if s not in granted],
        )
        code = "AQ" + "".join(self._secrets.choice(TOKEN_ALPHABET) for _ in range(120))
        with self.lock:
            self._codes[code] = LoginCode(grant, redirect, self.clock.now())
        query = urlencode({"code": code, **state})
        handler.send_bytes(302, b"", headers={"Location": f"{redirect}?{query}#_=_"})

    def _app_of(self, params: dict[str, str]) -> str:
        app_id = params.get("client_id", "")
        if self.apps.get(app_id) != params.get("client_secret") or not app_id:
            raise GraphError(
                101, "Error validating client secret.", type="OAuthException", status=400
            )
        return app_id

    def _login_api(self, parts: list[str], params: dict[str, str]) -> dict[str, Any]:
        now = self.clock.now()
        if parts == ["oauth", "access_token"]:
            app_id = self._app_of(params)
            if params.get("grant_type") == "fb_exchange_token":
                short = self._user_token(params.get("fb_exchange_token"))
                if short is None or short.expires_at <= now or short.grant.app_id != app_id:
                    raise GraphError(
                        TOKEN_INVALID, "Invalid OAuth access token - Cannot parse access token"
                    )
                return self._issue_user_token(short.grant, long_lived=True)
            with self.lock:
                code = self._codes.get(params.get("code", ""))
                if code is None:
                    raise GraphError(INVALID_PARAMETER, "Invalid verification code format.")
                if code.used:
                    raise GraphError(
                        INVALID_PARAMETER, "This authorization code has been used.", subcode=36009
                    )
                code.used = True
                if code.redirect_uri != params.get("redirect_uri"):
                    raise GraphError(
                        INVALID_PARAMETER,
                        "Error validating verification code. Please make sure your "
                        "redirect_uri is identical to the one you used in the OAuth dialog "
                        "request",
                        subcode=36008,
                    )
                if code.grant.app_id != app_id or now - code.issued_at > timedelta(minutes=10):
                    raise GraphError(
                        INVALID_PARAMETER, "This authorization code has expired.", subcode=36007
                    )
            return self._issue_user_token(code.grant, long_lived=False)
        if parts == ["debug_token"]:
            return {"data": self._debug(params)}
        user = self._user_token(params.get("access_token"))
        assert user is not None  # routed here only with a user token
        if user.grant.revoked:
            raise GraphError(
                TOKEN_INVALID,
                "Error validating access token: the user has not authorized application.",
                subcode=SUBCODE_APP_NOT_INSTALLED,
            )
        if user.expires_at <= now:
            raise GraphError(
                TOKEN_INVALID,
                "Error validating access token: Session has expired.",
                subcode=SUBCODE_SESSION_EXPIRED,
            )
        grant = user.grant
        if parts == ["me"]:
            return {"id": grant.user_id, "name": self.users[grant.user_id].name}
        if parts == ["me", "permissions"]:
            return {
                "data": [{"permission": p, "status": "granted"} for p in grant.granted]
                + [{"permission": p, "status": "declined"} for p in grant.declined]
            }
        if parts == ["me", "accounts"]:
            if "pages_show_list" not in grant.granted:
                raise GraphError(
                    PERMISSION_DENIED,
                    "(#200) Requires pages_show_list permission to manage the object",
                    type="OAuthException",
                )
            data = []
            direct = self.users[grant.user_id].page_ids
            for page_id in (p for p in grant.page_ids if p in direct):
                page = self._pages[page_id]
                data.append(
                    {
                        "access_token": self._page_token(page_id, grant),
                        "category": "Community",
                        "category_list": [{"id": "2612", "name": "Community"}],
                        "name": page.name,
                        "id": page_id,
                        "tasks": ["ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE"],
                    }
                )
            return {"data": data, "paging": {"cursors": {"before": "QVFIU", "after": "QVFIU"}}}
        businesses = self.users[grant.user_id].businesses
        if parts == ["me", "businesses"] or (
            len(parts) == 2
            and parts[0] in businesses
            and parts[1] in ("owned_pages", "client_pages")
        ):
            if "business_management" not in grant.granted:
                raise GraphError(
                    PERMISSION_DENIED,
                    "(#200) Requires business_management permission to manage the object",
                    type="OAuthException",
                )
            if parts == ["me", "businesses"]:
                return {"data": [{"id": b, "name": n} for b, (n, _p) in businesses.items()]}
            if parts[1] == "client_pages":
                return {"data": []}  # the sandbox's businesses own their Pages
            return {
                "data": [
                    {
                        "id": page_id,
                        "name": self._pages[page_id].name,
                        "access_token": self._page_token(page_id, grant),
                    }
                    for page_id in businesses[parts[0]][1]
                    if page_id in grant.page_ids
                ]
            }
        raise GraphError(
            INVALID_PARAMETER,
            f"Unsupported get request: /{'/'.join(parts)}",
            type="GraphMethodException",
        )

    def _issue_user_token(self, grant: LoginGrant, *, long_lived: bool) -> dict[str, Any]:
        token = self._new_token()
        lifetime = LONG_LIVED if long_lived else SHORT_LIVED
        with self.lock:
            self._user_tokens[token] = UserToken(grant, self.clock.now() + lifetime, long_lived)
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(lifetime.total_seconds()) - 56,
        }

    def _page_token(self, page_id: str, grant: LoginGrant) -> str:
        with self.lock:
            for token, issued in self._page_tokens.items():
                if issued.page_id == page_id and issued.grant is grant:
                    return token
        token = self._new_token()
        with self.lock:
            self._page_tokens[token] = IssuedPageToken(page_id, grant)
        return token

    def _debug(self, params: dict[str, str]) -> dict[str, Any]:
        app_id, _, secret = params.get("access_token", "").partition("|")
        if self.apps.get(app_id) != secret or not app_id:
            raise GraphError(
                TOKEN_INVALID, "Invalid OAuth access token - Cannot parse access token"
            )
        token = params.get("input_token", "")
        now = self.clock.now()
        data_access = int((now + DATA_ACCESS).timestamp())
        with self.lock:
            user = self._user_tokens.get(token)
            issued = self._page_tokens.get(token)
        if user is None and issued is None:
            return {
                "error": {"code": TOKEN_INVALID, "message": "Invalid OAuth access token."},
                "is_valid": False,
                "scopes": [],
            }
        grant = user.grant if user is not None else issued.grant  # type: ignore[union-attr]
        data: dict[str, Any] = {
            "app_id": grant.app_id,
            "application": "GLO sandbox app",
            "data_access_expires_at": data_access,
            "is_valid": not grant.revoked and (user is None or user.expires_at > now),
            "issued_at": int(now.timestamp()),
            "scopes": grant.granted,
            "granular_scopes": [
                {"scope": s, "target_ids": grant.page_ids}
                for s in grant.granted
                if s.startswith("pages_") or s == "read_insights"
            ],
            "user_id": grant.user_id,
        }
        if user is not None:
            data.update(type="USER", expires_at=int(user.expires_at.timestamp()))
        else:
            assert issued is not None
            data.update(type="PAGE", expires_at=0, profile_id=issued.page_id)
        return data

    # -- authentication and usage ---------------------------------------------------------

    def _trace(self) -> str:
        digest = hashlib.sha256(f"{self.seed}:{next(self._traces)}".encode()).digest()
        return "A" + base64.urlsafe_b64encode(digest[:15]).decode()

    def _authenticate(self, params: dict[str, str]) -> SandboxPage:
        token = params.get("access_token")
        if not token:
            raise GraphError(TOKEN_MISSING, "An access token is required to request this resource.")
        with self.lock:
            page = next((p for p in self._pages.values() if p.token == token), None)
            issued = self._page_tokens.get(token)
            if page is None and issued is not None:
                if issued.grant.revoked:
                    raise GraphError(
                        TOKEN_INVALID,
                        "Error validating access token: The session has been invalidated "
                        "because the user changed their password or Facebook has changed the "
                        "session for security reasons.",
                        subcode=SUBCODE_PASSWORD_CHANGED,
                    )
                page = self._pages[issued.page_id]
        if page is None:
            raise GraphError(
                TOKEN_INVALID, "Invalid OAuth access token - Cannot parse access token"
            )
        if page.expired:
            raise GraphError(
                TOKEN_INVALID,
                "Error validating access token: Session has expired on "
                f"{self.clock.now():%A, %d-%b-%y %H:%M:%S} PDT.",
                subcode=SUBCODE_SESSION_EXPIRED,
            )
        if self.app_secret is not None:
            proof = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256)
            if not hmac.compare_digest(params.get("appsecret_proof", ""), proof.hexdigest()):
                raise GraphError(
                    INVALID_PARAMETER,
                    "Invalid appsecret_proof provided in the API argument",
                    type="GraphMethodException",
                )
        return page

    def _page_usage(self, page: SandboxPage) -> dict[str, Any]:
        now = self.clock.now()
        calls = page.calls
        while calls and calls[0] <= now - self.usage_window:
            calls.popleft()
        percent = min(100, math.floor(100 * len(calls) / self.page_call_limit))
        regain = 0
        if len(calls) >= self.page_call_limit:
            # Access returns when enough calls have left the window to fall below the limit.
            frees_at = calls[len(calls) - self.page_call_limit] + self.usage_window
            regain = max(1, math.ceil((frees_at - now).total_seconds() / 60))
        return {
            "type": "pages",
            "call_count": percent,
            "total_cputime": percent // 2,
            "total_time": percent // 2,
            "estimated_time_to_regain_access": regain,
        }

    def _usage_headers(self, page: SandboxPage) -> dict[str, str]:
        with self.lock:
            usage = self._page_usage(page)
            app = min(100, math.floor(100 * len(self._app_calls) / self.app_call_limit))
        page_usage = {k: v for k, v in usage.items() if k != "type"}
        return {
            "X-App-Usage": json.dumps({"call_count": app, "total_cputime": 0, "total_time": 0}),
            "X-Page-Usage": json.dumps(page_usage),
            "X-Business-Use-Case-Usage": json.dumps({page.page_id: [usage]}),
        }

    def _count_call(self, page: SandboxPage) -> dict[str, str]:
        """Count one call against the Page; raise 80001 when its allowance is used up.
        Calls made while throttled count too (developers.facebook.com/blog/post/2016/06/16/
        page-level-rate-limits)."""
        with self.lock:
            now = self.clock.now()
            throttled = self._page_usage(page)["call_count"] >= 100
            page.calls.append(now)
            self._call_totals[page.page_id] += 1
            self._app_calls.append(now)
            while self._app_calls and self._app_calls[0] <= now - self.usage_window:
                self._app_calls.popleft()
        headers = self._usage_headers(page)
        if throttled:
            raise GraphError(
                PAGE_RATE_LIMITED,
                "(#80001) There have been too many calls to this Page account. Wait a bit and "
                "try again. For more info, please refer to "
                "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
                headers=headers,
            )
        return headers

    # -- answers --------------------------------------------------------------------------

    def _answer(
        self,
        method: str,
        parts: list[str],
        params: dict[str, str],
        files: dict[str, bytes],
        page: SandboxPage,
        path: str,
    ) -> tuple[int, Any]:
        if not parts and method == "GET" and "ids" in params:
            return 200, self._multi(params, page)
        if len(parts) == 2 and parts[0] in self._pages:
            target, edge = parts
            writes = {"feed": self._create_feed, "photos": self._create_photo}
            if method == "POST" and edge in (*writes, "videos"):
                self._require_own(page, target, writes=True)
                if edge == "videos":
                    return 200, self._create_video(target, params, files)
                return 200, writes[edge](target, params, files)
            if method == "GET" and edge in ("published_posts", "feed", "scheduled_posts"):
                self._require_own(page, target, writes=False)
                return 200, self._list(target, edge, params, path)
        if len(parts) == 1 and method == "DELETE":
            return 200, self._delete(parts[0], page)
        if len(parts) == 2 and parts[1] == "insights" and method == "GET":
            return 200, self._insights(self._object(parts[0], page), params)
        if len(parts) == 1 and method == "GET":
            if parts[0] in self._pages:
                self._require_own(page, parts[0], writes=False)
                return 200, {"id": parts[0], "name": self._pages[parts[0]].name}
            return 200, self._render(self._object(parts[0], page), params.get("fields"))
        raise GraphError(
            INVALID_PARAMETER,
            f"Unsupported {method.lower()} request. Please read the Graph API documentation at "
            "https://developers.facebook.com/docs/graph-api",
            type="GraphMethodException",
        )

    def _require_own(self, page: SandboxPage, target: str, *, writes: bool) -> None:
        if page.page_id == target:
            return
        if writes:
            raise GraphError(
                PERMISSION_DENIED,
                "(#200) If posting to a page, requires both pages_read_engagement and "
                "pages_manage_posts as an admin with sufficient administrative permission",
            )
        raise self._missing(target)

    def _missing(self, object_id: str) -> GraphError:
        return GraphError(
            INVALID_PARAMETER,
            f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation. Please "
            "read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            subcode=33,
            type="GraphMethodException",
        )

    def _object(self, object_id: str, page: SandboxPage) -> Publication | tuple[str, Publication]:
        """The post with this id, or ("photo"|"video", its post) for a media id."""
        with self.lock:
            post = next((p for p in self._publications if p.id == object_id), None)
            media = self._objects.get(object_id)
        if post is not None and post.page_id == page.page_id:
            return post
        if media is not None and media.page_id == page.page_id:
            return (media.kind, media)
        raise self._missing(object_id)

    def _delete(self, object_id: str, page: SandboxPage) -> dict[str, Any]:
        """``DELETE /{post-id}`` (or a photo's or video's id) with the Page's token removes
        the publication and answers ``{"success": true}``; afterwards the id is unknown
        (error 100, subcode 33), as for any missing object.  Sources:
        developers.facebook.com/docs/graph-api/reference/post/#deleting and
        /docs/graph-api/reference/video/#Deleting."""
        found = self._object(object_id, page)  # another Page's or a missing id: 100/33
        post = found[1] if isinstance(found, tuple) else found
        with self.lock:
            if post in self._publications:
                self._publications.remove(post)
                self.removed.append(post)
            if post.object_id:
                self._objects.pop(post.object_id, None)
        return {"success": True}

    def _new_post(self, page_id: str, kind: str, message: str, **values: Any) -> Publication:
        with self.lock:
            if self.reject_duplicates and message:
                last = next((p for p in reversed(self._publications) if p.page_id == page_id), None)
                if last is not None and last.message == message:
                    raise GraphError(DUPLICATE_POST, "(#506) Duplicate status message")
            number = next(self._ids)
            publication = Publication(
                id=f"{page_id}_{10**15 + number}",
                page_id=page_id,
                kind=kind,
                message=message,
                created_time=self.clock.now().replace(microsecond=0),
                marker=read_stamp(message),
                **values,
            )
            if publication.object_id is None and kind != "feed":
                publication.object_id = str(2 * 10**15 + number)
            self._publications.append(publication)
            if publication.object_id:
                self._objects[publication.object_id] = publication
            return publication

    def _published_flag(self, params: dict[str, str]) -> tuple[bool, int | None]:
        published = params.get("published", "true").lower() not in ("false", "0")
        when = params.get("scheduled_publish_time")
        if when is None:
            return published, None
        moment = _parse_time(when)
        ahead = moment - self.clock.now()
        # Graph accepts a time 10 minutes to 30 days ahead, for an unpublished post only.
        if published or not timedelta(minutes=10) <= ahead <= timedelta(days=30):
            raise GraphError(
                INVALID_PARAMETER, "(#100) The specified scheduled publish time is invalid."
            )
        return False, int(moment.timestamp())

    def _create_feed(
        self, page_id: str, params: dict[str, str], files: dict[str, bytes]
    ) -> dict[str, Any]:
        message, link = params.get("message", ""), params.get("link")
        if not message and not link:
            raise GraphError(INVALID_PARAMETER, "(#100) Missing message or attachment")
        if link and not re.match(r"https?://\S+$", link):
            raise GraphError(INVALID_PARAMETER, "(#100) The parameter link must be a valid URL")
        published, when = self._published_flag(params)
        post = self._new_post(
            page_id, "feed", message, link=link, published=published, scheduled_publish_time=when
        )
        answer: dict[str, Any] = {"id": post.id}
        if params.get("fields"):  # read-after-write
            answer = self._render(post, params["fields"])
        return answer

    def _create_photo(
        self, page_id: str, params: dict[str, str], files: dict[str, bytes]
    ) -> dict[str, Any]:
        # Graph takes the image from any file part (the docs name it ``source``) or ``url``.
        name, data = next(iter(files.items()), (None, b""))
        if name is None and not params.get("url"):
            raise GraphError(324, "(#324) Requires upload file")
        published, when = self._published_flag(params)
        post = self._new_post(
            page_id,
            "photo",
            params.get("caption", params.get("message", "")),
            link=params.get("url"),
            media_bytes=len(data),
            media_name=name,
            published=published,
            scheduled_publish_time=when,
        )
        return {"id": post.object_id, "post_id": post.id}

    def _create_video(
        self, page_id: str, params: dict[str, str], files: dict[str, bytes]
    ) -> dict[str, Any]:
        name, data = next(iter(files.items()), (None, b""))
        if name is None and not params.get("file_url"):
            raise GraphError(
                6000, "There was a problem uploading your video file. Please try again."
            )
        published, when = self._published_flag(params)
        post = self._new_post(
            page_id,
            "video",
            params.get("description", ""),
            link=params.get("file_url"),
            media_bytes=len(data),
            media_name=name,
            title=params.get("title"),
            published=published,
            scheduled_publish_time=when,
        )
        return {"id": post.object_id}

    def _list(self, page_id: str, edge: str, params: dict[str, str], path: str) -> dict[str, Any]:
        now = self.clock.now()
        with self.lock:
            posts = [p for p in self._publications if p.page_id == page_id]
        if edge == "scheduled_posts":
            posts = [p for p in posts if not p.published and p.scheduled_publish_time]
        else:
            posts = [p for p in posts if p.published]
        if "since" in params and params["since"]:
            since = _parse_time(params["since"])
            posts = [p for p in posts if p.created_time >= since]
        if "until" in params and params["until"]:
            until = _parse_time(params["until"])
            posts = [p for p in posts if p.created_time <= until]
        posts.sort(key=lambda p: (p.created_time, p.id), reverse=True)
        if params.get("after"):
            after = _uncursor(params["after"])
            ids = [p.id for p in posts]
            posts = posts[ids.index(after) + 1 :] if after in ids else []
        limit = max(1, min(int(params.get("limit") or 25), 100))
        page, more = posts[:limit], len(posts) > limit
        fields = params.get("fields") or "id,message,created_time"
        answer: dict[str, Any] = {"data": [self._render(p, fields, now=now) for p in page]}
        if page:
            paging: dict[str, Any] = {
                "cursors": {"before": _cursor(page[0].id), "after": _cursor(page[-1].id)}
            }
            if more:
                query = {k: v for k, v in params.items() if k != "after"}
                query["after"] = _cursor(page[-1].id)
                paging["next"] = f"{self.url}{path}?{urlencode(query)}"
            answer["paging"] = paging
        return answer

    def _multi(self, params: dict[str, str], page: SandboxPage) -> dict[str, Any]:
        ids = [i.strip() for i in params["ids"].split(",") if i.strip()]
        if len(ids) > MAX_IDS:
            raise GraphError(
                INVALID_PARAMETER, f"(#100) Too many IDs. Maximum: {MAX_IDS}. Got: {len(ids)}"
            )
        found: dict[str, Any] = {}
        missing: list[str] = []
        for object_id in ids:
            try:
                found[object_id] = self._object(object_id, page)
            except GraphError:
                missing.append(object_id)
        if missing:
            raise GraphError(
                803, f"(#803) Some of the aliases you requested do not exist: {','.join(missing)}"
            )
        return {i: self._render(obj, params.get("fields")) for i, obj in found.items()}

    # -- rendering ------------------------------------------------------------------------

    def _render(
        self,
        obj: Publication | tuple[str, Publication],
        fields: str | None,
        *,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        now = now or self.clock.now()
        if isinstance(obj, tuple):
            return self._render_media(obj[0], obj[1], fields)
        post = obj
        specs = parse_fields(fields or "id,message,created_time")
        for spec in specs:
            if spec.name not in POST_FIELDS:
                raise GraphError(
                    INVALID_PARAMETER,
                    f"(#100) Tried accessing nonexisting field ({spec.name}) on node type (Post)",
                )
        numbers = engagement(self.seed, post.id, now - post.created_time)
        page_id, number = post.id.split("_", 1)
        out: dict[str, Any] = {}
        for spec in specs:
            name = spec.name
            if name == "id":
                out["id"] = post.id
            elif name == "message":
                if post.message:
                    out["message"] = post.message
            elif name in ("created_time", "updated_time"):
                out[name] = _graph_time(post.created_time)
            elif name == "permalink_url":
                out[name] = f"https://www.facebook.com/{page_id}/posts/{number}"
            elif name == "is_published":
                out[name] = post.published
            elif name == "scheduled_publish_time":
                if post.scheduled_publish_time:
                    out[name] = post.scheduled_publish_time
            elif name == "from":
                out[name] = {"name": self._pages[page_id].name, "id": page_id}
            elif name == "status_type":
                out[name] = {"feed": "mobile_status_update", "photo": "added_photos"}.get(
                    post.kind, "added_video"
                )
            elif name == "shares":
                if numbers["shares"]:  # Graph leaves the field out of an unshared post
                    out[name] = {"count": numbers["shares"]}
            elif name in ("reactions", "comments"):
                out[name] = self._edge_summary(name, numbers[name], spec)
            elif name == "insights":
                out[name] = self._insights(post, {"metric": spec.modifiers.get("metric", "")})
        return out

    def _edge_summary(self, name: str, total: int, spec: FieldSpec) -> dict[str, Any]:
        # Counts only: the sandbox keeps no individual reactions or comments.
        answer: dict[str, Any] = {"data": []}
        if "summary" in spec.modifiers:
            summary: dict[str, Any] = {"total_count": total}
            if name == "reactions":
                summary["viewer_reaction"] = "NONE"
            else:
                summary.update(order="ranked", can_comment=True)
            answer["summary"] = summary
        return answer

    def _render_media(self, kind: str, post: Publication, fields: str | None) -> dict[str, Any]:
        allowed = VIDEO_FIELDS if kind == "video" else PHOTO_FIELDS
        node = "Video" if kind == "video" else "Photo"
        specs = parse_fields(fields or "id,created_time")
        out: dict[str, Any] = {}
        page_id = post.page_id
        for spec in specs:
            if spec.name not in allowed:
                raise GraphError(
                    INVALID_PARAMETER,
                    f"(#100) Tried accessing nonexisting field ({spec.name}) on node type ({node})",
                )
            if spec.name == "id":
                out["id"] = post.object_id
            elif spec.name in ("post_id", "page_story_id"):
                out[spec.name] = post.id
            elif spec.name in ("created_time", "updated_time"):
                out[spec.name] = _graph_time(post.created_time)
            elif spec.name == "permalink_url":
                out[spec.name] = f"/{page_id}/videos/{post.object_id}/"
            elif spec.name == "link":
                out[spec.name] = f"https://www.facebook.com/photo.php?fbid={post.object_id}"
            elif spec.name in ("title", "name"):
                if post.title:
                    out[spec.name] = post.title
            elif spec.name == "description" and post.message:
                out[spec.name] = post.message
        return out

    def _insights(
        self, obj: Publication | tuple[str, Publication], params: dict[str, str]
    ) -> dict[str, Any]:
        if isinstance(obj, tuple):
            raise GraphError(INVALID_PARAMETER, "(#100) The value must be a valid insights metric")
        names = _metric_names(params.get("metric", ""))
        if not names:
            raise GraphError(
                3001,
                "No metric was specified to be fetched. Please specify one or more metrics to "
                "be fetched and try again.",
                subcode=1504028,
            )
        if any(n not in CURRENT_POST_METRICS for n in names):
            raise GraphError(INVALID_PARAMETER, "(#100) The value must be a valid insights metric")
        numbers = engagement(self.seed, obj.id, self.clock.now() - obj.created_time)
        data = []
        for name in names:
            value = numbers["views"]
            if name == "post_total_media_view":
                value = int(value * 1.3)
            data.append(
                {
                    "name": name,
                    "period": "lifetime",
                    "values": [{"value": value}],
                    "title": "Lifetime " + CURRENT_POST_METRICS[name],
                    "description": "Lifetime: " + CURRENT_POST_METRICS[name] + ".",
                    "id": f"{obj.id}/insights/{name}/lifetime",
                }
            )
        return {"data": data}
