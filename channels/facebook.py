"""Facebook Pages through the ``facebook-business`` SDK.

Content keys (``Post.content`` for a Facebook post):

==============  ========================================================================
``message``     the post text (required; at most ``message_max_chars`` characters)
``link``        a URL to attach (optional; for photo and video posts it is appended to the
                text, since those endpoints take no link)
``photo``       absolute path of an image to post with ``/{page-id}/photos`` (optional)
``video``       absolute path of a video to post with ``/{page-id}/videos`` (optional)
``video_title`` title of the video (optional)
==============  ========================================================================

At most one of ``photo`` and ``video``.

How a post is found again (:meth:`FacebookAdapter.find_published`)
    The text of every post ends with an invisible *stamp*: 16 hex digits of
    ``sha256(marker)`` written with zero-width characters between two U+2063 INVISIBLE
    SEPARATORs (34 code points; nothing shows on the Page).  Reconciliation lists the Page's
    ``/published_posts`` created since the attempt (less ``reconcile_skew`` for clock
    differences) and takes the post whose stamp matches.  A listed post without any stamp
    (Facebook may one day strip invisible characters) matches when its text equals ours
    exactly.  Limits: a post is listed only once Facebook has finished processing it (a
    video may take minutes); two posts with the same text on the same Page in the window,
    one of them stamp-less, cannot be told apart; the scan stops after ``reconcile_pages``
    pages and then says it cannot tell (TransientError) rather than "none".

Metrics (:meth:`FacebookAdapter.fetch_metrics`)
    Reactions, comments and shares are post fields, and views an insights metric; both are
    read for up to 50 posts at once with Graph's ``?ids=`` lookup, in two requests, so that
    an insights metric Facebook has deprecated (error 100 for the whole request) costs only
    that metric.  Graph's metric names live in :data:`INSIGHT_METRICS` alone.

Usage (:class:`channels.ratelimit.UsageStore`)
    Every answer's ``X-App-Usage``, ``X-Page-Usage`` and ``X-Business-Use-Case-Usage``
    headers are kept per Page; at ``usage_threshold`` percent ``publish`` refuses with
    RateLimited without calling, leaving the rest of the allowance to reconciliation and
    metrics.

Sources: developers.facebook.com/docs/pages-api/posts, /docs/graph-api/guides/error-handling,
/docs/graph-api/overview/rate-limiting, /docs/graph-api/advanced (read-after-write),
/docs/platforminsights/page/deprecated-metrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Required, TypedDict
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError

from channels.base import (
    Account,
    Adapter,
    Capability,
    ChannelServices,
    ChannelSpec,
    ContentProblem,
    Metrics,
    OutgoingPost,
    Publisher,
    Receipt,
)
from channels.campaign_input import (
    ChannelInput,
    PostsVariantTestIn,
    TemplateField,
    TemplateRef,
    Text,
    VariantTestIn,
)
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from channels.media import (
    IMAGE_TYPES,
    VIDEO_CODECS,
    VIDEO_CONTAINERS,
    VIDEO_TYPES,
    publish_refusal,
    type_problem,
)
from channels.ratelimit import MemoryUsageStore, RedisUsageStore, Usage, UsageStore

log = logging.getLogger(__name__)

#: Graph's names for the insights we read, as of the revision below.  Meta deprecates
#: insights metrics by date for every API version at once (impressions became views on
#: 15 Nov 2025): the next deprecation is a change to this mapping and nothing else.
#: Keys ``views`` and ``clicks`` fill :class:`channels.base.Metrics`; others go to ``raw``.
INSIGHT_METRICS_REVISION = "2025-11-15"
INSIGHT_METRICS: Mapping[str, str] = {"views": "post_total_media_view_unique"}

#: Post fields for reactions, comments and shares (counts only: ``limit(0)``).
ENGAGEMENT_FIELDS = (
    "id",
    "created_time",
    "shares",
    "reactions.summary(total_count).limit(0)",
    "comments.summary(total_count).limit(0)",
)


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


class FacebookLimits(Adapter):
    """Facebook Page posts: limits as data, checked without I/O."""

    kind: ClassVar[str] = "facebook"
    service_name: ClassVar[str] = "Facebook Pages"
    message_max_chars: ClassVar[int] = 63_206
    photo_max_bytes: ClassVar[int] = 10 * 1024 * 1024
    video_max_bytes: ClassVar[int] = 1024 * 1024 * 1024
    video_title_max_chars: ClassVar[int] = 255
    photo_types: ClassVar[Mapping[str, str]] = IMAGE_TYPES
    video_types: ClassVar[Mapping[str, str]] = VIDEO_TYPES
    # Read from the file (ffprobe) when it enters the media library, not at publishing time.
    video_containers: ClassVar[Mapping[str, frozenset[str]]] = VIDEO_CONTAINERS
    video_codecs: ClassVar[frozenset[str]] = VIDEO_CODECS
    video_max_seconds: ClassVar[float] = 240 * 60
    photo_max_pixels: ClassVar[int] = 40_000_000

    @classmethod
    def content_problems(cls, content: Mapping[str, Any]) -> list[ContentProblem]:
        problems = []
        message = content.get("message")
        if not isinstance(message, str) or not message.strip():
            problems.append(ContentProblem("message", "is empty"))
        elif len(message) > cls.message_max_chars:
            problems.append(
                ContentProblem(
                    "message",
                    f"is {len(message):,} characters; Facebook allows {cls.message_max_chars:,}",
                )
            )
        link = content.get("link")
        if link is not None and (not isinstance(link, str) or not _is_http_url(link)):
            problems.append(ContentProblem("link", f"{link!r} is not an http(s) URL"))
        photo, video = content.get("photo"), content.get("video")
        if photo and video:
            problems.append(ContentProblem("video", "a post has a photo or a video, not both"))
        for key, limit in (("photo", cls.photo_max_bytes), ("video", cls.video_max_bytes)):
            value = content.get(key)
            if value is None:
                continue
            path = Path(str(value))
            if not path.is_file():
                problems.append(ContentProblem(key, f"file {value} not found"))
            elif path.stat().st_size > limit:
                problems.append(
                    ContentProblem(key, f"file is {path.stat().st_size:,} bytes; limit {limit:,}")
                )
            elif found := type_problem(
                path, cls.photo_types if key == "photo" else cls.video_types
            ):
                problems.append(ContentProblem(key, found))
        title = content.get("video_title")
        if title is not None and len(str(title)) > cls.video_title_max_chars:
            problems.append(
                ContentProblem("video_title", f"is longer than {cls.video_title_max_chars}")
            )
        return problems


# -- the marker stamp -----------------------------------------------------------------------

_STAMP_EDGE = "\u2063"  # INVISIBLE SEPARATOR
_STAMP_DIGITS = "\u200b\u200c\u2060\u2062"  # ZWSP, ZWNJ, WORD JOINER, INVISIBLE TIMES
_STAMP_RE = re.compile(f"{_STAMP_EDGE}([{_STAMP_DIGITS}]{{32}}){_STAMP_EDGE}")
STAMP_LENGTH = 34


def marker_tag(marker: str) -> str:
    """The 16 hex digits of ``marker`` that a post's stamp carries."""
    return hashlib.sha256(marker.encode("utf-8")).hexdigest()[:16]


def stamp_for(marker: str) -> str:
    """The invisible stamp that makes a post findable by ``marker``."""
    bits = int(marker_tag(marker), 16)
    digits = "".join(_STAMP_DIGITS[(bits >> (2 * i)) & 3] for i in reversed(range(32)))
    return f"{_STAMP_EDGE}{digits}{_STAMP_EDGE}"


def read_marker(text: str | None) -> str | None:
    """The marker tag stamped into ``text`` (see :func:`marker_tag`), or None."""
    found = _STAMP_RE.search(text or "")
    if found is None:
        return None
    value = 0
    for char in found.group(1):
        value = value * 4 + _STAMP_DIGITS.index(char)
    return f"{value:016x}"


def strip_marker(text: str | None) -> str:
    """``text`` without its stamp, as a person sees it."""
    return _STAMP_RE.sub("", text or "")


def _same_text(a: str, b: str) -> bool:
    # Facebook trims surrounding white space; everything else, Thai included, must match.
    return strip_marker(a).strip() == strip_marker(b).strip()


# -- the payload ----------------------------------------------------------------------------

Edge = Literal["feed", "photos", "videos"]


@dataclass(frozen=True)
class Payload:
    """What one publish sends: the Page edge, its form fields, and a file to upload."""

    edge: Edge
    params: dict[str, str]
    file: Path | None = None
    text: str = ""  # the post's text as people will read it (without the stamp)


def build_payload(content: Mapping[str, Any], marker: str) -> Payload:
    """The Graph request that publishes ``content``, its text stamped with ``marker``. Pure.

    Text and link posts go to ``/feed`` (``message``, ``link``) and ask for ``id``,
    ``created_time`` and ``permalink_url`` back (read-after-write); a photo goes to
    ``/photos`` (``caption``), a video to ``/videos`` (``description``, ``title``), with the
    link appended to the text since those edges take none.
    """
    message = str(content.get("message") or "")
    link = content.get("link")
    photo, video = content.get("photo"), content.get("video")
    text = message
    if link and (photo or video):
        text = f"{message}\n\n{link}" if message else str(link)
    stamped = text + stamp_for(marker)
    if len(stamped) > FacebookLimits.message_max_chars:
        stamped = text  # no room: reconciliation falls back to matching the text
    if photo:
        return Payload("photos", {"caption": stamped}, Path(str(photo)), text)
    if video:
        params = {"description": stamped}
        if content.get("video_title"):
            params["title"] = str(content["video_title"])
        return Payload("videos", params, Path(str(video)), text)
    params = {"message": stamped, "fields": "id,created_time,permalink_url"}
    if link:
        params["link"] = str(link)
    return Payload("feed", params, None, text)


# -- usage headers --------------------------------------------------------------------------

USAGE_HEADERS = ("X-App-Usage", "X-Page-Usage", "X-Business-Use-Case-Usage")


def _usage_entries(name: str, value: Any) -> Iterator[Mapping[str, Any]]:
    if name == "X-Business-Use-Case-Usage" and isinstance(value, Mapping):
        # {"<business or page id>": [{"type": "pages", "call_count": .., ...}, ...]}
        for entries in value.values():
            if isinstance(entries, list):
                yield from (e for e in entries if isinstance(e, Mapping))
    elif isinstance(value, Mapping):
        yield value


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def parse_usage(headers: Mapping[str, str] | None, *, now: datetime) -> Usage | None:
    """The worst usage reported by Graph's usage headers (percentages; the time to regain
    access in seconds), or None when the answer carried none. Pure.

    Source: developers.facebook.com/docs/graph-api/overview/rate-limiting.
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    worst: Usage | None = None
    for name in USAGE_HEADERS:
        raw = lowered.get(name.lower())
        if not raw:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            log.warning("ignoring an unreadable %s header", name)
            continue
        for entry in _usage_entries(name, value):
            usage = Usage(
                call_count=_number(entry.get("call_count")),
                total_cputime=_number(entry.get("total_cputime")),
                total_time=_number(entry.get("total_time")),
                regain_after=_number(entry.get("estimated_time_to_regain_access")) * 60,
                reported_at=now,
            )
            worst = usage if worst is None else worst.worst(usage)
    return worst


# -- errors ---------------------------------------------------------------------------------

_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80001, 80015))
_TOKEN_SUBCODES = {
    458: "the app is no longer installed for this account",
    459: "the account is checkpointed: a person must log in at facebook.com",
    460: "the password was changed",
    463: "the token has expired",
    464: "the account is not confirmed",
    467: "the token is no longer valid (logged out or revoked)",
}
RECONNECT_HINT = (
    "A Page admin must reconnect the Page: create a new Page access token (with "
    "pages_manage_posts, pages_read_engagement and read_insights) and store it as the "
    "account's secret (MARKETING_SECRET_<NAME> or the secrets file)."
)


@dataclass(frozen=True)
class GraphFailure:
    """The parts of a Graph error answer that decide what to do. ``message`` is scrubbed."""

    http_status: int | None
    code: int | None
    subcode: int | None = None
    message: str = ""
    transient: bool = False
    retry_after: float | None = None  # from the usage headers, seconds


def classify(failure: GraphFailure, *, default_wait: float) -> ChannelError:
    """The :mod:`channels.errors` error for a Graph error answer. Pure.

    Source: developers.facebook.com/docs/graph-api/guides/error-handling.
    """
    code, sub = failure.code, failure.subcode
    tag = f"facebook:{code}" + (f"/{sub}" if sub else "")
    said = failure.message or "no message"
    if code in (102, 104, 190):
        why = _TOKEN_SUBCODES.get(sub or 0, "the token is not valid")
        return AuthExpired(
            f"Facebook refused the Page token: {why} ({said})", code=tag, hint=RECONNECT_HINT
        )
    if code == 10 or (code is not None and 200 <= code <= 299):
        return AuthExpired(
            f"Facebook says the app lacks a permission on this Page ({said})",
            code=tag,
            hint="A person must fix the permission: a Page admin grants the app "
            "pages_manage_posts and pages_read_engagement (or restores the role of the "
            "person whose token it is) and reconnects the Page.",
        )
    if code in _RATE_LIMIT_CODES:
        wait = failure.retry_after if failure.retry_after else default_wait
        return RateLimited(
            f"Facebook asks us to slow down ({said})",
            code=tag,
            hint=f"Nothing to fix: publishing resumes in about {wait / 60:.0f} minutes.",
            retry_after=wait,
        )
    if code in (1, 2) or failure.transient or (failure.http_status or 0) >= 500:
        return TransientError(
            f"Facebook had a temporary problem ({said})",
            code=tag,
            hint="Nothing to fix: the request is retried with backoff.",
        )
    hints = {
        100: "Facebook rejected a parameter: check the post's content (text, link, file).",
        368: "Facebook has temporarily blocked the Page for a policy reason: check the "
        "Page's notifications and Account Quality before posting again.",
        506: "Facebook says this duplicates a recent post: change the text or cancel the post.",
    }
    hint = hints.get(code or 0, "Read the message, fix the post or the account, then retry.")
    if "appsecret_proof" in said:
        hint = (
            "MARKETING_FACEBOOK_APP_SECRET is not the secret of the app that made the Page "
            "token: set the right one (or a token made by this app)."
        )
    return PermanentError(f"Facebook refused the request ({said})", code=tag, hint=hint)


# -- keeping tokens out of text -------------------------------------------------------------

_QUERY_SECRET_RE = re.compile(r"((?:access_token|appsecret_proof)(?:=|%3D))[^&\s'\"<>]+", re.I)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret and every ``access_token=``/``appsecret_proof=`` query
    value replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _QUERY_SECRET_RE.sub(r"\1***", text)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the ``reason`` urllib3 errors carry."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for attr in ("__cause__", "__context__", "reason"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
        todo.extend(a for a in current.args if isinstance(a, BaseException))


def scrub_exception(exc: BaseException, secrets: Iterable[str] = ()) -> BaseException:
    """Rewrite, in place, the text of ``exc`` and of every exception behind it, so that a
    traceback never shows a token (the SDK sends it in the URL, and urllib3 puts URLs in
    its messages); return ``exc``."""
    secrets = tuple(secrets)
    for item in _chain(exc):
        try:
            item.args = tuple(scrub(str(a), secrets) for a in item.args)
        except (TypeError, AttributeError):  # pragma: no cover - exotic exception types
            continue
        if isinstance(getattr(item, "url", None), str):
            item.url = scrub(item.url, secrets)  # type: ignore[attr-defined]
    return exc


class _ScrubQueryFilter(logging.Filter):
    """urllib3 logs each request line, query string included, at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager"):
    logging.getLogger(_name).addFilter(_ScrubQueryFilter())


def _never_sent(exc: BaseException) -> bool:
    """Whether a transport error happened before any byte of the request left."""
    for item in _chain(exc):
        if isinstance(
            item,
            requests.exceptions.ConnectTimeout
            | requests.exceptions.SSLError
            | requests.exceptions.ProxyError
            | urllib3.exceptions.NewConnectionError
            | urllib3.exceptions.NameResolutionError,
        ):
            return True
    return False


def _created(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
    except ValueError:
        return None


def _missing_ids(message: str) -> set[str]:
    """The ids named by Graph's "(#803) Some of the aliases you requested do not exist: a,b"."""
    found = re.search(r"do not exist:\s*(.+)$", message)
    if not found:
        return set()
    return {part.strip().rstrip(".") for part in found.group(1).split(",") if part.strip()}


def _summary_count(node: Mapping[str, Any], name: str) -> int | None:
    summary = (node.get(name) or {}).get("summary") or {}
    count = summary.get("total_count")
    return int(count) if isinstance(count, int) else None


def _insight_values(node: Mapping[str, Any]) -> dict[str, int]:
    values: dict[str, int] = {}
    for item in (node.get("insights") or {}).get("data") or []:
        points = item.get("values") or []
        value = points[-1].get("value") if points else None
        if isinstance(item.get("name"), str) and isinstance(value, int):
            values[item["name"]] = value
    return values


class _Refused(Exception):
    """A Graph error answer that the caller of ``FacebookAdapter._call`` handles itself."""

    def __init__(self, failure: GraphFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class FacebookAdapter(FacebookLimits, Publisher):
    """Facebook Pages through the ``facebook-business`` SDK: publish, reconcile, metrics.

    Every request goes through :meth:`FacebookAdsApi.call` of an API object built for the
    Page's token (a :class:`FacebookSession` whose ``GRAPH`` is set on the instance; never the
    SDK's class-level default API, never its crash reporter), because that is where the
    answer's headers -- the usage reports -- are still at hand.
    """

    usage_threshold: ClassVar[float] = 90.0  # percent at which publish refuses by itself
    rate_limit_wait: ClassVar[float] = 600.0  # seconds, when Graph does not say how long
    ids_per_request: ClassVar[int] = 50  # Graph's limit for ``?ids=``
    reconcile_skew: ClassVar[timedelta] = timedelta(minutes=10)
    reconcile_pages: ClassVar[int] = 20
    page_size: ClassVar[int] = 100

    def __init__(
        self,
        *,
        graph_url: str,
        api_version: str,
        app_secret: SecretStr | None = None,
        usage: UsageStore | None = None,
        timeout: float = 30,
        insight_metrics: Mapping[str, str] = INSIGHT_METRICS,
        media_root: Path | None = None,
    ) -> None:
        """``media_root``: when given, a photo or video outside it is never uploaded."""
        if not re.fullmatch(r"v\d+\.\d+", api_version):
            raise ValueError(f"Graph API version {api_version!r} should look like 'v25.0'")
        if not _is_http_url(graph_url):
            raise ValueError(f"Graph API URL {graph_url!r} is not an http(s) URL")
        self.graph_url = graph_url.rstrip("/")
        self.api_version = api_version
        self.app_secret = app_secret
        self.usage = usage if usage is not None else MemoryUsageStore()
        self.timeout = timeout
        self.insight_metrics = dict(insight_metrics)
        self.media_root = media_root
        self._apis: dict[str, tuple[FacebookAdsApi, tuple[str, ...]]] = {}
        self._refused_metrics: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FacebookAdapter(graph_url={self.graph_url!r}, api_version={self.api_version!r})"

    # -- the SDK --------------------------------------------------------------------------

    def _api(self, account: Account) -> tuple[FacebookAdsApi, tuple[str, ...]]:
        """The SDK API object for ``account``'s token, and the secrets it puts on the wire."""
        if account.token is None or not account.token.get_secret_value():
            raise AuthExpired(
                f"no Page token for {account.display_name} (Page {account.external_id})",
                code="facebook:no-token",
                hint=RECONNECT_HINT,
            )
        token = account.token.get_secret_value()
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            if key not in self._apis:
                secret = self.app_secret.get_secret_value() if self.app_secret else None
                session = FacebookSession(
                    access_token=token, app_secret=secret, timeout=self.timeout
                )
                session.GRAPH = self.graph_url  # on the instance: only this session moves
                secrets = (token, secret or "", getattr(session, "appsecret_proof", ""))
                self._apis[key] = (FacebookAdsApi(session, api_version=self.api_version), secrets)
            return self._apis[key]

    def close(self) -> None:
        """Close the HTTP connections of every session."""
        with self._lock:
            for api, _ in self._apis.values():
                api._session.requests.close()
            self._apis.clear()

    def _usage_key(self, account: Account) -> str:
        return f"facebook:{account.external_id}"

    def _note_usage(self, account: Account, headers: Mapping[str, str] | None) -> Usage | None:
        usage = parse_usage(headers, now=datetime.now(UTC))
        if usage is not None:
            self.usage.record(self._usage_key(account), usage)
            if usage.percent >= self.usage_threshold:
                log.warning(
                    "Facebook usage of Page %s is at %.0f%%", account.external_id, usage.percent
                )
        return usage

    def _call(
        self,
        account: Account,
        method: str,
        path: tuple[str, ...],
        params: Mapping[str, str | int] | None = None,
        *,
        files: Mapping[str, Any] | None = None,
        publishing: bool = False,
        handle: Iterable[int] = (),
    ) -> dict[str, Any]:
        """Graph's JSON answer to one request; failures raised as :mod:`channels.errors`
        (or as ``_Refused`` for the error codes in ``handle``), with no token in their text.
        """
        api, secrets = self._api(account)
        try:
            response = api.call(method, path, params=dict(params or {}), files=dict(files or {}))
        except FacebookRequestError as exc:
            usage = self._note_usage(account, exc.http_headers())
            scrub_exception(exc, secrets)
            body = exc.body() if isinstance(exc.body(), dict) else {}
            original = (body.get("error") or {}).get("original_response")
            if publishing and isinstance(original, dict) and original.get("id"):
                # Read-after-write failed, the write did not: the post exists.
                return original
            failure = GraphFailure(
                http_status=exc.http_status(),
                code=exc.api_error_code(),
                subcode=exc.api_error_subcode(),
                message=scrub(str(exc.api_error_message() or exc.get_message()), secrets),
                transient=bool(exc.api_transient_error()),
                retry_after=usage.regain_after if usage and usage.regain_after else None,
            )
            if failure.code in set(handle):
                raise _Refused(failure) from exc
            raise classify(failure, default_wait=self.rate_limit_wait) from exc
        except requests.RequestException as exc:
            error = self._transport_error(exc, publishing=publishing)  # reads the raw chain
            scrub_exception(exc, secrets)
            raise error from exc
        self._note_usage(account, response.headers())
        status = response.status()
        if not 200 <= status < 300:
            # The SDK judges success by the body alone: a proxy's 502 with some JSON in it
            # would pass for a success.
            raise classify(
                GraphFailure(status, None, message=f"HTTP {status} without a Graph error"),
                default_wait=self.rate_limit_wait,
            )
        body = response.json()
        if not isinstance(body, dict):
            text = scrub(str(body)[:200], secrets)
            if publishing:
                raise OutcomeUnknown(
                    f"Facebook answered the post with something unreadable: {text!r}",
                    code="facebook:unreadable",
                    hint="Do not publish again yet: reconcile with the Page first.",
                )
            raise TransientError(f"Facebook answered with something unreadable: {text!r}")
        return body

    def _transport_error(self, exc: requests.RequestException, *, publishing: bool) -> ChannelError:
        what = type(exc).__name__
        if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            return PermanentError(
                f"the Graph API URL is not usable ({what})",
                code="facebook:url",
                hint="Fix MARKETING_GRAPH_API_URL.",
            )
        if publishing and not _never_sent(exc):
            return OutcomeUnknown(
                f"Facebook did not answer after the post was sent ({what}): it may or may "
                "not have been published",
                code="facebook:no-answer",
                hint="Do not publish again yet: reconcile (find_published) first.",
            )
        return TransientError(
            f"could not reach Facebook ({what})",
            code="facebook:unreachable",
            hint="Nothing to fix unless it lasts: check the network and the Graph API URL.",
        )

    # -- publishing -----------------------------------------------------------------------

    def _refuse_near_limit(self, account: Account) -> None:
        usage = self.usage.latest(self._usage_key(account))
        if usage is None or usage.percent < self.usage_threshold:
            return
        wait = usage.regain_after or self.rate_limit_wait
        raise RateLimited(
            f"Facebook usage of Page {account.external_id} is at {usage.percent:.0f}%: not "
            f"publishing above {self.usage_threshold:.0f}%",
            code="facebook:usage",
            hint=f"Nothing to fix: publishing resumes in about {wait / 60:.0f} minutes.",
            retry_after=wait,
        )

    def publish(self, post: OutgoingPost) -> Receipt:
        account = post.account
        self._api(account)  # no token: say so before anything else
        self._refuse_near_limit(account)
        payload = build_payload(post.content, post.marker)
        path = (account.external_id, payload.edge)
        if payload.file is None:
            body = self._call(account, "POST", path, payload.params, publishing=True)
        else:
            allowed = self.photo_types if payload.edge == "photos" else self.video_types
            refusal = publish_refusal(payload.file, allowed, root=self.media_root)
            if refusal is not None:
                raise PermanentError(
                    f"will not upload {payload.edge[:-1]}: {refusal}",
                    code="facebook:media-refused",
                    hint="Put the file in the media folder, fix the campaign and apply it again.",
                )
            try:
                upload = payload.file.open("rb")
            except OSError as exc:
                raise PermanentError(
                    f"cannot read {payload.edge[:-1]} file {payload.file}: {exc.strerror}",
                    code="facebook:file",
                    hint="Fix the file path in the campaign, or restore the file.",
                ) from exc
            with upload:
                # Graph takes the upload as the multipart field ``source``.
                body = self._call(
                    account,
                    "POST",
                    path,
                    payload.params,
                    files={"source": upload},
                    publishing=True,
                )
        receipt = self._receipt(account, payload, body)
        log.info("published %s on Page %s", receipt.external_id, account.external_id)
        return receipt

    def _receipt(self, account: Account, payload: Payload, body: dict[str, Any]) -> Receipt:
        if not body.get("id"):
            raise OutcomeUnknown(
                f"Facebook accepted the {payload.edge} request but named no post: {body!r:.200}",
                code="facebook:no-id",
                hint="Do not publish again yet: reconcile (find_published) first.",
            )
        if payload.edge == "feed":
            post_id, details = str(body["id"]), body
        elif payload.edge == "photos":
            post_id = str(body.get("post_id") or body["id"])
            details = self._details(account, post_id, "created_time,permalink_url")
        else:
            video_id = str(body["id"])
            details = self._details(account, video_id, "post_id,permalink_url,created_time")
            if not details.get("post_id"):
                raise OutcomeUnknown(
                    f"the video was uploaded as {video_id}, but Facebook has not said which "
                    "post shows it",
                    code="facebook:video-post",
                    hint="Do not upload again: reconcile (find_published) once Facebook has "
                    "processed the video.",
                )
            post_id = str(details["post_id"])
        return Receipt(
            external_id=post_id,
            permalink=details.get("permalink_url"),
            published_at=_created(details.get("created_time")) or datetime.now(UTC),
            raw={**body, **{k: v for k, v in details.items() if k != "id"}},
        )

    def _details(self, account: Account, object_id: str, fields: str) -> dict[str, Any]:
        """Fields of a just-published object; {} if Facebook cannot say now (the
        publication itself has succeeded, so this is never worth failing it for)."""
        for _ in range(3):
            try:
                return self._call(account, "GET", (object_id,), {"fields": fields})
            except TransientError:
                continue
            except ChannelError:
                break
        return {}

    # -- reconciliation -------------------------------------------------------------------

    def find_published(self, post: OutgoingPost, *, since: datetime) -> Receipt | None:
        account = post.account
        tag = marker_tag(post.marker)
        text = build_payload(post.content, post.marker).text
        params: dict[str, str | int] = {
            "fields": "id,message,created_time,permalink_url",
            "since": int((since - self.reconcile_skew).timestamp()),
            "limit": self.page_size,
        }
        for _ in range(self.reconcile_pages):
            body = self._call(account, "GET", (account.external_id, "published_posts"), params)
            for item in body.get("data") or []:
                message = item.get("message") or ""
                stamped = read_marker(message)
                if stamped == tag or (stamped is None and text and _same_text(message, text)):
                    return Receipt(
                        external_id=str(item["id"]),
                        permalink=item.get("permalink_url"),
                        published_at=_created(item.get("created_time")) or datetime.now(UTC),
                        raw=item,
                    )
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return None
            params = {**params, "after": after}
        raise TransientError(
            f"Page {account.external_id} has more than {self.reconcile_pages * self.page_size} "
            f"posts since {since:%Y-%m-%d %H:%M} UTC; cannot tell whether this one is among them",
            code="facebook:reconcile",
            hint="A person should look at the Page and mark the post published or failed.",
        )

    # -- takedown -------------------------------------------------------------------------

    def take_down(self, account: Account, external_id: str, *, private: bool = False) -> bool:
        """``DELETE /{post-id}`` with the Page's token (developers.facebook.com/docs/
        graph-api/reference/post/#deleting); an id Graph no longer knows (100/33) is gone
        already.  A published Page post cannot be made private: ``private`` is refused."""
        if private:
            raise PermanentError(
                "a published Facebook post cannot be made private, only deleted",
                code="facebook:no-private",
                hint="Take it down without --private (the post is deleted).",
            )
        try:
            body = self._call(account, "DELETE", (external_id,), handle=(100,))
        except _Refused as refused:
            if refused.failure.subcode == 33:
                return False
            raise classify(refused.failure, default_wait=self.rate_limit_wait) from refused
        if body.get("success") is False:
            raise TransientError(
                f"Facebook did not remove post {external_id}",
                code="facebook:delete",
                hint="Try the takedown again; if it keeps failing, remove the post on the Page.",
            )
        log.info("took down %s on Page %s", external_id, account.external_id)
        return True

    # -- metrics --------------------------------------------------------------------------

    def check_account(self, account: Account) -> None:
        """Read the Page with its token (one call): AuthExpired if the token no longer works."""
        self._call(account, "GET", (account.external_id,), {"fields": "id,name"})

    def fetch_metrics(self, account: Account, external_ids: Sequence[str]) -> list[Metrics]:
        ids = list(dict.fromkeys(external_ids))
        metrics: list[Metrics] = []
        for start in range(0, len(ids), self.ids_per_request):
            chunk = ids[start : start + self.ids_per_request]
            nodes = self._lookup(account, chunk, ",".join(ENGAGEMENT_FIELDS))
            insights = self._insights(account, [i for i in chunk if i in nodes])
            now = datetime.now(UTC)
            for external_id in chunk:
                node = nodes.get(external_id)
                if node is None:
                    continue
                values = insights.get(external_id, {})
                ours = {k: values[v] for k, v in self.insight_metrics.items() if v in values}
                metrics.append(
                    Metrics(
                        external_id=external_id,
                        collected_at=now,
                        views=ours.get("views"),
                        clicks=ours.get("clicks"),
                        reactions=_summary_count(node, "reactions"),
                        comments=_summary_count(node, "comments"),
                        # Graph leaves ``shares`` out of a post nobody has shared.
                        shares=int((node.get("shares") or {}).get("count") or 0),
                        raw={
                            "fields": node,
                            "insights": values,
                            "metrics": ours,
                            "metrics_revision": INSIGHT_METRICS_REVISION,
                        },
                    )
                )
        return metrics

    def _lookup(
        self, account: Account, ids: list[str], fields: str, *, handle: frozenset[int] = frozenset()
    ) -> dict[str, dict[str, Any]]:
        """``fields`` of each of ``ids`` (one ``?ids=`` request when all exist); ids that
        Facebook no longer knows are left out."""
        if not ids:
            return {}
        try:
            body = self._call(
                account,
                "GET",
                ("",),
                {"ids": ",".join(ids), "fields": fields},
                handle=handle | {100, 803},
            )
        except _Refused as refused:
            failure = refused.failure
            if not (failure.code == 803 or (failure.code == 100 and failure.subcode == 33)):
                if failure.code in handle:
                    raise
                raise classify(failure, default_wait=self.rate_limit_wait) from refused.__cause__
            named = _missing_ids(failure.message) & set(ids)
            if named:
                kept = [i for i in ids if i not in named]
                return self._lookup(account, kept, fields, handle=handle)
            if len(ids) == 1:
                return {}
            found: dict[str, dict[str, Any]] = {}
            for one in ids:
                found.update(self._lookup(account, [one], fields, handle=handle))
            return found
        return {k: v for k, v in body.items() if isinstance(v, dict)}

    def _insights(self, account: Account, ids: list[str]) -> dict[str, dict[str, int]]:
        """Graph metric values per post id; a metric Graph refuses is dropped (and not
        asked for again by this adapter) without losing the others."""
        wanted = [m for m in self.insight_metrics.values() if m not in self._refused_metrics]
        if not ids or not wanted:
            return {}

        def ask(metrics: Sequence[str]) -> dict[str, dict[str, int]]:
            spec = f"insights.metric({','.join(metrics)}).period(lifetime)"
            nodes = self._lookup(account, ids, spec, handle=frozenset({100}))
            return {post_id: _insight_values(node) for post_id, node in nodes.items()}

        try:
            return ask(wanted)
        except _Refused:
            if len(wanted) == 1:
                self._refuse_metric(wanted[0])
                return {}
        # One refused metric fails the whole request: ask for each alone to find it.
        values: dict[str, dict[str, int]] = {}
        for metric in wanted:
            try:
                part = ask([metric])
            except _Refused:
                self._refuse_metric(metric)
                continue
            for post_id, found in part.items():
                values.setdefault(post_id, {}).update(found)
        return values

    def _refuse_metric(self, metric: str) -> None:
        self._refused_metrics.add(metric)
        log.warning(
            "Facebook refused the insights metric %s (deprecated?): the figure stays empty "
            "until INSIGHT_METRICS in channels/facebook.py names its replacement",
            metric,
        )


class FacebookSettings(BaseModel):
    """What the Facebook adapter is built from (the service's settings of the same names)."""

    model_config = ConfigDict(frozen=True)

    graph_api_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v25.0"
    facebook_app_secret: SecretStr | None = None
    media_root: Path | None = None
    effective_redis_url: str | None = None


def facebook_adapter_from_settings(
    settings: FacebookSettings | object, *, usage: UsageStore | None = None
) -> FacebookAdapter:
    """The Facebook adapter the pipeline uses: Graph URL, version and app secret from the
    settings (a :class:`FacebookSettings`, or anything with those attributes); usage reports
    kept in ``usage`` (default: Redis when the service has one, so every worker shares them,
    else this process's memory)."""
    values = SPEC.settings_from(settings)
    assert isinstance(values, FacebookSettings)
    if usage is None:
        import redis

        redis_url = values.effective_redis_url
        usage = RedisUsageStore(redis.Redis.from_url(redis_url)) if redis_url else None
    return FacebookAdapter(
        graph_url=values.graph_api_url,
        api_version=values.graph_api_version,
        app_secret=values.facebook_app_secret,
        usage=usage,
        media_root=values.media_root,
    )


# -- the channel as a unit ------------------------------------------------------------------


class FacebookContent(TypedDict, total=False):
    """``Post.content`` of a Facebook post (see the module docstring)."""

    message: Required[str]
    link: str
    photo: str
    video: str
    video_title: str


class FacebookVariantIn(BaseModel):
    """Another text and/or photo to test against the block's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: TemplateField | None = None
    photo: TemplateField | None = None

    @model_validator(mode="after")
    def _something(self) -> FacebookVariantIn:
        if self.message is None and self.photo is None:
            raise PydanticCustomError("variant", "a variant changes the message, the photo or both")
        return self


class FacebookIn(ChannelInput):
    """The ``facebook:`` block of a campaign file."""

    templates: ClassVar[tuple[str, ...]] = ("message", "link", "photo", "video", "video_title")
    tracked_links: ClassVar[tuple[str, ...]] = ("link",)
    variant_unit: ClassVar[Literal["audience", "posts"]] = "posts"

    account: Text = "community"
    message: TemplateField
    link: TemplateField | None = None
    photo: TemplateField | None = None
    video: TemplateField | None = None
    video_title: TemplateField | None = None
    variants: Annotated[list[FacebookVariantIn], Field(max_length=4)] = []
    test: PostsVariantTestIn | None = None

    def variant_templates(self) -> list[dict[str, TemplateRef]]:
        return [
            {key: ref for key in ("message", "photo") if (ref := getattr(v, key)) is not None}
            for v in self.variants
        ]

    def variant_test(self) -> VariantTestIn | None:
        return self.test


def _build(settings: FacebookSettings, services: ChannelServices) -> FacebookAdapter:
    return facebook_adapter_from_settings(
        settings, usage=services.usage() if services.usage else None
    )


SPEC = ChannelSpec(
    kind=FacebookLimits.kind,
    label_th="เฟซบุ๊ก",
    label_en="Facebook",
    colour="#1864d6",
    utm_source="facebook",
    utm_medium="social",
    campaign_model=FacebookIn,
    media_keys=("photo", "video"),
    limits=FacebookLimits,
    content=FacebookContent,
    capabilities=frozenset(
        {
            Capability.PUBLISH,
            Capability.METRICS,
            Capability.ACCOUNT_CHECK,
            Capability.FIND_PUBLISHED,
            Capability.TAKE_DOWN,
        }
    ),
    settings_model=FacebookSettings,
    factory=_build,
)
