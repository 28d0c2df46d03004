"""YouTube through ``google-api-python-client``.

Content keys (``Post.content`` for a YouTube post):

=================  =====================================================================
``title``          video title (required; at most 100 characters, no ``<`` or ``>``)
``description``    at most 5,000 UTF-8 bytes (Thai is 3 bytes a character), no ``<``/``>``
``tags``           list of tags; at most 500 characters in all, counting the commas between
                   tags and the quotes around a tag that contains a space
``video``          absolute path of the video file (required)
``privacy``        ``public``, ``unlisted`` or ``private`` (default ``private``)
``publish_at``     ISO 8601 UTC time at which YouTube makes a private video public (optional;
                   needs ``privacy: private``)
``category_id``    YouTube category id as a string (default ``"19"``, Travel & Events)
``made_for_kids``  bool (default false)
``language``       BCP-47 code of title and description (default ``"th"``)
=================  =====================================================================

Sources: developers.google.com/youtube/v3/docs/videos#properties (title, description, tags
limits) and /docs/videos/insert (publishAt only with privacyStatus private).

The title limit is checked in code points, the stricter of the two readings: the reference
says "100 characters" without saying whether a Thai combining mark counts on its own.

Every upload carries one extra tag, :func:`marker_tag` of the post's marker (``glo-`` and 20
hex digits, 24 characters), so :meth:`YouTubeAdapter.find_published` can find it again; the
tags check keeps room for it.  A tag rather than a description line: viewers never see it,
and it costs 25 of the 500 tag characters instead of bytes of the description.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Required, TypedDict

import googleapiclient
import httplib2
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest, MediaIoBaseUpload, build_http
from pydantic import BaseModel, ConfigDict, PlainValidator, SecretStr
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
    RefreshGrant,
)
from channels.campaign_input import ChannelInput, Duration, TemplateField, Text, duration
from channels.errors import (
    AuthExpired,
    ChannelError,
    OutcomeUnknown,
    PermanentError,
    QuotaExhausted,
    RateLimited,
    TransientError,
)
from channels.media import (
    VIDEO_CODECS,
    VIDEO_CONTAINERS,
    VIDEO_TYPES,
    publish_refusal,
    type_problem,
)
from channels.quota import (
    DEFAULT_LIMITS,
    UNITS,
    UPLOADS,
    InMemoryQuotaLedger,
    QuotaLedger,
    cost_of,
    next_reset,
    seconds_until_reset,
)

log = logging.getLogger(__name__)

MARKER_TAG_PREFIX = "glo-"
MARKER_TAG_CHARS = len(MARKER_TAG_PREFIX) + 20
MASK = "**********"
#: Receipt notice: YouTube made the upload private although it asked for more.
FORCED_PRIVATE = "youtube:forced-private"


def marker_tag(marker: str) -> str:
    """The tag that carries ``marker`` on an upload: ``glo-`` and 20 hex digits of its hash."""
    return MARKER_TAG_PREFIX + hashlib.sha256(marker.encode("utf-8")).hexdigest()[:20]


def tags_length(tags: list[str]) -> int:
    """Length of ``tags`` as YouTube counts it: commas between, quotes around spaced tags."""
    return sum(len(t) + (2 if " " in t else 0) for t in tags) + max(len(tags) - 1, 0)


class YouTubeLimits(Adapter):
    """YouTube video uploads: limits as data, checked without I/O."""

    kind: ClassVar[str] = "youtube"
    service_name: ClassVar[str] = "YouTube"
    title_max_chars: ClassVar[int] = 100
    description_max_bytes: ClassVar[int] = 5_000
    tags_max_chars: ClassVar[int] = 500
    forbidden_chars: ClassVar[str] = "<>"
    privacy_values: ClassVar[frozenset[str]] = frozenset({"public", "unlisted", "private"})
    video_max_bytes: ClassVar[int] = 256 * 1024**3
    video_types: ClassVar[Mapping[str, str]] = VIDEO_TYPES
    # Read from the file (ffprobe) when it enters the media library, not at publishing time.
    video_containers: ClassVar[Mapping[str, frozenset[str]]] = VIDEO_CONTAINERS
    video_codecs: ClassVar[frozenset[str]] = VIDEO_CODECS
    video_max_seconds: ClassVar[float] = 12 * 3600  # 15 minutes until the channel is verified

    @classmethod
    def content_problems(cls, content: Mapping[str, Any]) -> list[ContentProblem]:
        problems = []
        title = content.get("title")
        if not isinstance(title, str) or not title.strip():
            problems.append(ContentProblem("title", "is empty"))
        else:
            if len(title) > cls.title_max_chars:
                problems.append(
                    ContentProblem(
                        "title",
                        f"is {len(title)} characters; YouTube allows {cls.title_max_chars}",
                    )
                )
            if any(c in title for c in cls.forbidden_chars):
                problems.append(ContentProblem("title", "may not contain < or >"))
        description = content.get("description") or ""
        size = len(str(description).encode("utf-8"))
        if size > cls.description_max_bytes:
            problems.append(
                ContentProblem(
                    "description",
                    f"is {size:,} bytes in UTF-8 (Thai takes 3 bytes a character); "
                    f"YouTube allows {cls.description_max_bytes:,}",
                )
            )
        if any(c in str(description) for c in cls.forbidden_chars):
            problems.append(ContentProblem("description", "may not contain < or >"))
        tags = content.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.append(ContentProblem("tags", "must be a list of text"))
        else:
            # One more tag goes with every upload: the marker that finds it again.
            with_marker = tags_length([*tags, "x" * MARKER_TAG_CHARS])
            if with_marker > cls.tags_max_chars:
                problems.append(
                    ContentProblem(
                        "tags",
                        f"take {tags_length(tags)} characters with commas and quotes, "
                        f"{with_marker} with the {MARKER_TAG_CHARS}-character tag that "
                        f"finds the upload again; YouTube allows {cls.tags_max_chars}",
                    )
                )
        video = content.get("video")
        if not video:
            problems.append(ContentProblem("video", "is required"))
        elif not Path(str(video)).is_file():
            problems.append(ContentProblem("video", f"file {video} not found"))
        elif found := type_problem(Path(str(video)), cls.video_types):
            problems.append(ContentProblem("video", found))
        privacy = content.get("privacy", "private")
        if privacy not in cls.privacy_values:
            problems.append(
                ContentProblem("privacy", f"{privacy!r} is not one of public, unlisted, private")
            )
        publish_at = content.get("publish_at")
        if publish_at is not None:
            try:
                moment = datetime.fromisoformat(str(publish_at))
            except ValueError:
                problems.append(ContentProblem("publish_at", f"{publish_at!r} is not a time"))
            else:
                if moment.tzinfo is None:
                    problems.append(ContentProblem("publish_at", "has no time zone"))
            if privacy != "private":
                problems.append(
                    ContentProblem("publish_at", "needs privacy: private (YouTube's rule)")
                )
        category = content.get("category_id", "19")
        if not str(category).isdigit():
            problems.append(ContentProblem("category_id", f"{category!r} is not a category id"))
        return problems


# --- pure payload builders and parsers (no I/O) -------------------------------------------


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as YouTube writes times: ``2026-06-02T03:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_video_resource(post: OutgoingPost) -> dict[str, Any]:
    """The ``video`` resource (parts ``snippet`` and ``status``) that ``videos.insert`` sends
    for ``post``, with the marker tag added.  Follows
    developers.google.com/youtube/v3/docs/videos#resource."""
    content = post.content
    tags = [str(t) for t in content.get("tags") or []]
    tag = marker_tag(post.marker)
    if tag not in tags:
        tags.append(tag)
    language = str(content.get("language") or "th")
    snippet: dict[str, Any] = {
        "title": str(content["title"]),
        "description": str(content.get("description") or ""),
        "tags": tags,
        "categoryId": str(content.get("category_id", "19")),
        "defaultLanguage": language,
    }
    status: dict[str, Any] = {
        "privacyStatus": str(content.get("privacy", "private")),
        "selfDeclaredMadeForKids": bool(content.get("made_for_kids", False)),
    }
    publish_at = content.get("publish_at")
    if publish_at is not None:
        status["publishAt"] = rfc3339(datetime.fromisoformat(str(publish_at)))
    return {"snippet": snippet, "status": status}


def parse_time(value: str) -> datetime:
    """An RFC 3339 time from YouTube (``...Z`` or with an offset) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def receipt_from_video(video: Mapping[str, Any], *, asked: str | None = None) -> Receipt:
    """The receipt for an uploaded ``video`` resource.  When ``asked`` (the privacy the
    upload asked for) is not private but the video came back private, YouTube locked it:
    uploads by an API project that has not passed Google's audit are private whatever they
    ask (support.google.com/youtube/answer/7300965, "unverified API projects"); the receipt
    carries the notice :data:`FORCED_PRIVATE`."""
    video_id = str(video["id"])
    published = (video.get("snippet") or {}).get("publishedAt")
    got = (video.get("status") or {}).get("privacyStatus")
    forced = asked is not None and asked != "private" and got == "private"
    return Receipt(
        external_id=video_id,
        permalink=f"https://www.youtube.com/watch?v={video_id}",
        published_at=parse_time(published) if published else datetime.now(UTC),
        raw=dict(video),
        notice=FORCED_PRIVATE if forced else None,
    )


def _count(statistics: Mapping[str, Any], name: str) -> int | None:
    # Counts arrive as strings; a hidden count (likes can be hidden) is absent, not zero.
    value = statistics.get(name)
    return int(value) if value is not None else None


def metrics_from_video(video: Mapping[str, Any], collected_at: datetime) -> Metrics:
    """Metrics from a ``videos.list(part=statistics)`` item: views, likes as reactions,
    comments; YouTube reports no shares."""
    statistics = video.get("statistics") or {}
    return Metrics(
        external_id=str(video["id"]),
        collected_at=collected_at,
        views=_count(statistics, "viewCount"),
        reactions=_count(statistics, "likeCount"),
        comments=_count(statistics, "commentCount"),
        shares=None,
        raw=dict(video),
    )


def batches(ids: Sequence[str], size: int) -> Iterator[list[str]]:
    """``ids`` without repeats, in lists of at most ``size``."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


@dataclass(frozen=True)
class ApiFailure:
    """An error answer of the YouTube Data API, read from Google's JSON error format
    (developers.google.com/youtube/v3/docs/errors)."""

    status: int
    reason: str | None
    message: str
    retry_after: float | None = None


def parse_failure(status: int, content: bytes | str, headers: Mapping[str, str]) -> ApiFailure:
    """The failure in an error answer: ``{"error": {"code", "message", "errors": [{"reason",
    "domain", "message"}]}}``, or the start of the body when it is not that."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    reason: str | None = None
    message = text.strip()[:300] or f"HTTP {status}"
    try:
        error = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        pass
    else:
        if isinstance(error, dict):
            details = error.get("errors") or [{}]
            reason = details[0].get("reason") or error.get("status")
            message = str(error.get("message") or details[0].get("message") or message)
    retry_after: float | None = None
    header = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    if header is not None and header.strip().isdigit():
        retry_after = float(header)
    # Google's quota message carries an HTML link; staff read plain text.
    message = re.sub(r"<[^>]+>", "", message)
    return ApiFailure(status=status, reason=reason, message=message, retry_after=retry_after)


RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
AUTH_REASONS = frozenset({"insufficientPermissions", "authError", "invalidCredentials"})
DEFAULT_RATE_LIMIT_WAIT = 60.0
UPLOAD_LIMIT_WAIT = 24 * 3600.0


def classify_failure(failure: ApiFailure, *, method: str, now: datetime) -> ChannelError:
    """The :mod:`channels.errors` error for ``failure`` of a call to ``method``."""
    text = f"YouTube refused {method}: {failure.message}"
    code = f"youtube:{failure.reason or failure.status}"
    if failure.status == 401 or (failure.status == 403 and failure.reason in AUTH_REASONS):
        return AuthExpired(
            text,
            code=code,
            hint="reconnect the YouTube channel (sign in with Google again): its access "
            "token expired, was revoked or lacks the YouTube scope",
        )
    if failure.reason == "quotaExceeded":
        return QuotaExhausted(
            text,
            code=code,
            hint=f"the project's daily YouTube quota is spent; it resets at midnight Pacific "
            f"time ({next_reset(now):%Y-%m-%d %H:%M} UTC) and the post is tried again then",
            retry_after=seconds_until_reset(now),
        )
    if failure.reason == "uploadLimitExceeded":
        return QuotaExhausted(
            text,
            code=code,
            hint="YouTube limits how many videos a channel may upload in 24 hours; the post "
            "is tried again in 24 hours",
            retry_after=UPLOAD_LIMIT_WAIT,
        )
    if failure.reason in RATE_LIMIT_REASONS or failure.status == 429:
        return RateLimited(
            text,
            code=code,
            hint="YouTube asks us to slow down; tried again later",
            retry_after=failure.retry_after or DEFAULT_RATE_LIMIT_WAIT,
        )
    if failure.status >= 500:
        return TransientError(text, code=code, hint="YouTube had a problem; tried again later")
    return PermanentError(
        text,
        code=code,
        hint="fix what YouTube's message names (in the campaign or the channel's settings); "
        "the same request will not be sent again",
    )


# --- the adapter ----------------------------------------------------------------------------

DISCOVERY_DOCUMENT = (
    Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "youtube.v3.json"
)

# What a dropped or refused connection raises through httplib2.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    http.client.HTTPException,
    httplib2.HttpLib2Error,
)


@lru_cache(maxsize=1)
def _shipped_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DISCOVERY_DOCUMENT.read_text(encoding="utf-8"))
    return document


def discovery_document(root_url: str) -> dict[str, Any]:
    """The shipped YouTube discovery document with its root URL replaced by ``root_url``
    (so upload URLs, which keep the document's scheme, reach a plain-HTTP sandbox too)."""
    root = root_url if root_url.endswith("/") else root_url + "/"
    return {**_shipped_document(), "rootUrl": root, "mtlsRootUrl": root}


class _ChunkedFileUpload(MediaIoBaseUpload):  # type: ignore[misc]
    """A file the client uploads one chunk at a time, reading each chunk as bytes.

    With a stream, the client sends each chunk as a slice of the open file.  httplib2 sends a
    request once more when it finds its kept-alive connection closed, and by then that slice
    is read to its end: the repeated request declares the chunk's length and carries nothing.
    ``has_stream() == False`` makes the client read the chunk into bytes (``getbytes``),
    which survive being sent twice.
    """

    def has_stream(self) -> bool:
        return False


class _NoConnection:
    """The http of the adapter's shared client: it sends nothing.  Every request is sent
    through its connection's authorized http (:class:`_Bound`); one that is not fails here
    rather than go out without a token."""

    credentials = None

    def request(self, *_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a YouTube request was sent outside a connection")

    def close(self) -> None:
        pass


class _Bound:
    """One of the adapter's built resources (``videos``, ``channels`` ...), its requests
    sent through ``http``: a method returns its request with that http, a collection
    (``service.videos()``) the adapter's built one, bound the same way."""

    def __init__(self, resource: Any, http: Any, collections: Callable[[str], Any]) -> None:
        self._resource = resource
        self._http = http
        self._collections = collections

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attribute = getattr(self._resource, name)
        if getattr(attribute, "__is_resource__", False):
            return lambda: _Bound(self._collections(name), self._http, self._collections)

        def method(*args: Any, **kwargs: Any) -> Any:
            made = attribute(*args, **kwargs)
            if isinstance(made, HttpRequest):
                made.http = self._http
            return made

        return method


class YouTubeAdapter(YouTubeLimits, Publisher):
    """Uploads videos, finds them again and reads their statistics through the real
    ``google-api-python-client``, keeping within the daily quota through ``ledger``."""

    upload_chunk_multiple: ClassVar[int] = 256 * 1024  # Google's rule for chunk sizes
    ids_per_call: ClassVar[int] = 50  # videos.list, playlistItems.list

    def __init__(
        self,
        *,
        root_url: str,
        ledger: QuotaLedger,
        timeout: float = 60.0,
        chunk_size: int = 8 * 1024 * 1024,
        resume_attempts: int = 5,
        resume_delay: float = 1.0,
        quota_project: str | None = None,
        reconcile_pages: int = 20,
        clock_skew: timedelta = timedelta(minutes=15),
        media_root: Path | None = None,
    ) -> None:
        """``media_root``: when given, a video outside it is never uploaded."""
        if chunk_size <= 0 or chunk_size % self.upload_chunk_multiple:
            raise ValueError(
                f"chunk_size {chunk_size} must be a positive multiple of 256 KiB "
                f"({self.upload_chunk_multiple} bytes), as Google's upload protocol requires"
            )
        self.root_url = root_url
        self.ledger = ledger
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.resume_attempts = resume_attempts
        self.resume_delay = resume_delay
        self.quota_project = quota_project
        self.reconcile_pages = reconcile_pages
        self.clock_skew = clock_skew
        self.media_root = media_root
        self._document = discovery_document(root_url)
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._building = threading.Lock()

    # -- plumbing

    def _token(self, account: Account) -> str:
        if account.token is None or not account.token.get_secret_value():
            raise AuthExpired(
                f"YouTube channel {account.display_name} ({account.external_id}) has no token",
                code="youtube:no-token",
                hint="connect the channel: set the secret its account names, then try again",
            )
        return account.token.get_secret_value()

    def _collection(self, name: str) -> Any:
        """The client's collection ``name`` (``videos``, ``channels``, ``playlistItems``),
        built from the discovery document once per adapter: building one makes every one
        of its methods (about 4 ms for ``videos``), and was done on each connection (#19)."""
        built = self._collections.get(name)
        if built is None:
            client = self._client_root()
            with self._building:
                built = self._collections.get(name)
                if built is None:
                    built = self._collections[name] = getattr(client, name)()
        return built

    @contextmanager
    def _connection(self, token: str, grant: RefreshGrant | None = None) -> Iterator[Any]:
        """A YouTube client acting with ``token``; its kept-alive connections are closed
        when the block ends.  With ``grant``, google-auth renews the token itself when
        YouTube answers 401 or it has expired, and the renewed token goes to
        ``grant.on_refresh`` (with the refresh token only if the answer carried a new one)."""
        http = build_http()  # keeps the upload's 308 from being taken for a redirect
        http.timeout = self.timeout
        if grant is None:
            # No refresh on 401: these credentials cannot refresh; the 401 is the answer.
            credentials = Credentials(token=token)  # type: ignore[no-untyped-call]
            authorized = AuthorizedHttp(credentials, http=http, refresh_status_codes=())
        else:
            expiry = grant.expiry.astimezone(UTC).replace(tzinfo=None) if grant.expiry else None
            credentials = Credentials(  # type: ignore[no-untyped-call]
                token=token,
                refresh_token=grant.refresh_token.get_secret_value(),
                token_uri=grant.token_uri,
                client_id=grant.client_id,
                client_secret=grant.client_secret.get_secret_value(),
                scopes=list(grant.scopes) or None,
                expiry=expiry,
            )
            authorized = AuthorizedHttp(credentials, http=http)
        try:
            yield _Bound(self._client_root(), authorized, self._collection)
        finally:
            authorized.close()
            if grant is not None and credentials.token and credentials.token != token:
                self._refreshed(grant, credentials)

    def _client_root(self) -> Any:
        """The client built from the discovery document, once per adapter; it sends nothing
        itself (:class:`_NoConnection`)."""
        if self._client is None:
            with self._building:
                if self._client is None:
                    self._client = build_from_document(self._document, http=_NoConnection())
        return self._client

    @staticmethod
    def _refreshed(grant: RefreshGrant, credentials: Credentials) -> None:
        if grant.on_refresh is None:
            return
        # google-auth keeps the old refresh token when the answer has none
        # (google.oauth2.reload: response.get("refresh_token", refresh_token)).
        refresh = credentials.refresh_token
        renewed = refresh if refresh and refresh != grant.refresh_token.get_secret_value() else None
        expiry = credentials.expiry.replace(tzinfo=UTC) if credentials.expiry else None
        grant.on_refresh(
            SecretStr(str(credentials.token)), SecretStr(renewed) if renewed else None, expiry
        )

    def _quota_key(self, account: Account) -> str:
        return self.quota_project or account.external_id

    def _reserve(self, account: Account, method: str) -> None:
        self.ledger.reserve_call(self._quota_key(account), method)

    def _failure(self, exc: HttpError, account: Account, method: str, token: str) -> ChannelError:
        headers = {str(k): str(v) for k, v in dict(exc.resp).items()}
        failure = parse_failure(exc.resp.status, exc.content or b"", headers)
        failure = replace(failure, message=failure.message.replace(token, MASK))
        if failure.reason == "quotaExceeded":
            self.ledger.exhaust(self._quota_key(account), cost_of(method)[0])
        return classify_failure(failure, method=method, now=self.ledger.clock())

    @staticmethod
    def _network_error(exc: BaseException, method: str, token: str) -> TransientError:
        detail = str(exc).replace(token, MASK) or type(exc).__name__
        return TransientError(
            f"YouTube did not answer {method}: {detail}",
            code="youtube:network",
            hint="the network or YouTube is down; tried again later",
        )

    def _execute(
        self, request: Any, account: Account, method: str, token: str, *, reserve: bool = True
    ) -> Any:
        """Reserve the quota of ``method`` (unless already reserved), run ``request``, and
        translate what goes wrong."""
        if reserve:
            self._reserve(account, method)
        try:
            return request.execute()
        except HttpError as exc:
            raise self._failure(exc, account, method, token) from exc
        except RefreshError as exc:
            raise self._auth_refused(account, method, exc) from exc
        except NETWORK_ERRORS as exc:
            raise self._network_error(exc, method, token) from exc

    @staticmethod
    def _auth_refused(
        account: Account, method: str, refresh: RefreshError | None = None
    ) -> AuthExpired:
        if refresh is not None and "invalid_grant" in str(refresh):
            # The grant was revoked or has expired: no refresh can help, a person must
            # sign in again (developers.google.com/identity/protocols/oauth2#expiration).
            return AuthExpired(
                f"Google refused to renew the token of YouTube channel {account.external_id}: "
                "the grant was revoked or has expired (invalid_grant)",
                code="youtube:invalid-grant",
                hint="reconnect the YouTube channel from the web app (sign in with Google again)",
            )
        return AuthExpired(
            f"YouTube refused {method} for channel {account.external_id}: the token is not valid",
            code="youtube:authError",
            hint="reconnect the YouTube channel (sign in with Google again)",
        )

    # -- Publisher

    def publish(self, post: OutgoingPost) -> Receipt:
        """Upload ``post``'s video with ``videos.insert`` (resumable) and return its receipt."""
        problems = self.content_problems(post.content)
        if problems:
            raise PermanentError(
                f"YouTube post {post.marker} breaks YouTube's rules: "
                + "; ".join(f"{p.field} {p.message}" for p in problems),
                code="youtube:invalid-content",
                hint="fix the campaign's YouTube content, then plan it again",
            )
        path = Path(str(post.content["video"]))
        refusal = publish_refusal(path, self.video_types, root=self.media_root)
        if refusal is not None:
            raise PermanentError(
                f"will not upload video: {refusal}",
                code="youtube:media-refused",
                hint="put the file in the media folder, fix the campaign and apply it again",
            )
        token = self._token(post.account)
        size = path.stat().st_size
        if size == 0:
            raise PermanentError(
                f"video file {path} is empty",
                code="youtube:empty-video",
                hint="export the video again",
            )
        resource = build_video_resource(post)
        mimetype = mimetypes.guess_type(path.name)[0] or ""
        if not mimetype.startswith("video/"):
            mimetype = "application/octet-stream"  # the other type videos.insert accepts
        with (
            self._connection(token, post.account.grant) as service,
            path.open("rb") as fh,
        ):
            media = _ChunkedFileUpload(fh, mimetype, chunksize=self.chunk_size, resumable=True)
            request = service.videos().insert(
                part=",".join(resource), body=resource, media_body=media
            )
            video = self._upload(request, media, post, token)
        return receipt_from_video(video, asked=resource["status"]["privacyStatus"])

    def _upload(self, request: Any, media: Any, post: OutgoingPost, token: str) -> Any:
        """Drive the resumable upload to its end, resuming after a dropped connection or a
        5xx (developers.google.com/youtube/v3/guides/using_resumable_upload_protocol, steps
        3-4: an empty PUT asks how much arrived, then the rest is sent).

        ``next_chunk()`` is called without ``num_retries`` (which re-sends an empty stream
        slice); after a failure the next call asks the server how far the upload got.
        Giving up before the last byte was sent publishes nothing (TransientError); once the
        last chunk may have arrived and no answer came, the video may exist: OutcomeUnknown.
        """
        failures = 0
        maybe_complete = False
        while True:
            cause: BaseException
            if request.resumable_uri is None:
                # This call opens an upload session: one videos.insert as YouTube counts.
                self._reserve(post.account, "videos.insert")
            try:
                _progress, video = request.next_chunk()
            except HttpError as exc:
                if exc.resp.status < 500:
                    if maybe_complete:
                        raise self._unknown(post, exc) from exc
                    raise self._failure(exc, post.account, "videos.insert", token) from exc
                cause = exc
            except RefreshError as exc:
                if maybe_complete:
                    raise self._unknown(post, exc) from exc
                raise self._auth_refused(post.account, "videos.insert", exc) from exc
            except NETWORK_ERRORS as exc:
                cause = exc
            else:
                if video is not None:
                    return video
                # A 308: the server holds part of the file, so no video exists yet.
                maybe_complete = False
                failures = 0
                continue
            if request.resumable_uri is not None and (
                request.resumable_progress + media.chunksize() >= media.size()
            ):
                maybe_complete = True  # the failed call carried the last byte
            failures += 1
            log.warning(
                "upload of YouTube post %s interrupted at %d of %d bytes (%s): "
                "failure %d, %d resumes allowed",
                post.marker,
                request.resumable_progress,
                media.size(),
                type(cause).__name__,
                failures,
                self.resume_attempts,
            )
            if failures > self.resume_attempts:
                if maybe_complete:
                    raise self._unknown(post, cause) from cause
                raise TransientError(
                    f"upload of YouTube post {post.marker} stopped at "
                    f"{request.resumable_progress:,} of {media.size():,} bytes after "
                    f"{failures} failed tries ({type(cause).__name__}); nothing was published",
                    code="youtube:upload-interrupted",
                    hint="the upload starts again on the next try",
                ) from cause
            time.sleep(min(self.resume_delay * 2 ** (failures - 1), 30.0))

    @staticmethod
    def _unknown(post: OutgoingPost, cause: BaseException) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"YouTube may have received the whole video of post {post.marker}, but its "
            f"answer was lost ({type(cause).__name__})",
            code="youtube:upload-outcome-unknown",
            hint=f"do not upload again before reconciling: look for the upload tagged "
            f"{marker_tag(post.marker)} (find_published)",
        )

    def find_published(self, post: OutgoingPost, *, since: datetime) -> Receipt | None:
        """The upload tagged with ``post``'s marker made at or after ``since``, found through
        the channel's uploads playlist (1 unit a page) rather than ``search.list`` (100)."""
        token = self._token(post.account)
        with self._connection(token, post.account.grant) as service:
            return self._find_upload(service, post, since, token)

    def check_account(self, account: Account) -> None:
        """Ask which channel the token acts for (1 unit): AuthExpired unless it is this one."""
        token = self._token(account)
        with self._connection(token, account.grant) as service:
            self._own_channel(service, account, token)

    def _own_channel(self, service: Any, account: Account, token: str) -> dict[str, Any]:
        """The ``channels.list(mine=true)`` item of the token, checked to be ``account``."""
        channels = self._execute(
            service.channels().list(part="contentDetails", mine=True),
            account,
            "channels.list",
            token,
        )
        items = channels.get("items") or []
        if not items:
            raise AuthExpired(
                f"the token of YouTube channel {account.external_id} belongs to a Google "
                "account without a channel",
                code="youtube:no-channel",
                hint="reconnect the channel with the Google account that owns it",
            )
        if items[0].get("id") != account.external_id:
            raise AuthExpired(
                f"the token of YouTube channel {account.external_id} belongs to channel "
                f"{items[0].get('id')}",
                code="youtube:wrong-channel",
                hint="reconnect the channel with the Google account that owns it",
            )
        return dict(items[0])

    def _find_upload(
        self, service: Any, post: OutgoingPost, since: datetime, token: str
    ) -> Receipt | None:
        account = post.account
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)  # the service keeps UTC
        channel = self._own_channel(service, account, token)
        uploads = channel["contentDetails"]["relatedPlaylists"]["uploads"]
        tag = marker_tag(post.marker)
        horizon = since - self.clock_skew  # the two clocks may disagree a little
        page_token: str | None = None
        for _ in range(self.reconcile_pages):
            page = self._execute(
                service.playlistItems().list(
                    part="snippet",
                    playlistId=uploads,
                    maxResults=self.ids_per_call,
                    pageToken=page_token,
                ),
                account,
                "playlistItems.list",
                token,
            )
            entries = page.get("items") or []
            recent = [
                e["snippet"]["resourceId"]["videoId"]
                for e in entries
                if parse_time(e["snippet"]["publishedAt"]) >= horizon
            ]
            if recent:
                # playlistItems carry no tags: read them from the videos themselves.
                videos = self._execute(
                    service.videos().list(part="snippet,status", id=",".join(recent)),
                    account,
                    "videos.list",
                    token,
                )
                for video in videos.get("items") or []:
                    if tag in ((video.get("snippet") or {}).get("tags") or []):
                        return receipt_from_video(video)
            page_token = page.get("nextPageToken")
            # The uploads playlist lists the newest first: an older upload ends the search.
            if not page_token or len(recent) < len(entries):
                return None
        raise TransientError(
            f"looked through {self.reconcile_pages * self.ids_per_call} uploads of channel "
            f"{account.external_id} without reaching {rfc3339(horizon)}",
            code="youtube:reconcile-incomplete",
            hint="too many uploads since the attempt; raise reconcile_pages or reconcile by hand",
        )

    def take_down(self, account: Account, external_id: str, *, private: bool = False) -> bool:
        """``videos.delete`` (50 units; developers.google.com/youtube/v3/docs/videos/delete),
        or with ``private`` ``videos.update`` of its status to private (1 + 50 units): the
        current status is read first, since an update resets what it leaves out, and a
        ``publishAt`` is dropped so the video never goes public by itself.  A video YouTube
        no longer has (404) is gone already."""
        token = self._token(account)
        method = "videos.update" if private else "videos.delete"
        with self._connection(token) as service:
            try:
                if not private:
                    self._reserve(account, method)
                    service.videos().delete(id=external_id).execute()
                else:
                    self._reserve(account, "videos.list")
                    found = service.videos().list(part="status", id=external_id).execute()
                    items = found.get("items") or []
                    if not items:
                        return False
                    status = dict(items[0].get("status") or {})
                    settable = ("license", "embeddable", "publicStatsViewable")
                    body_status = {k: status[k] for k in settable if k in status}
                    body_status["privacyStatus"] = "private"
                    if "selfDeclaredMadeForKids" in status:
                        body_status["selfDeclaredMadeForKids"] = status["selfDeclaredMadeForKids"]
                    self._reserve(account, method)
                    service.videos().update(
                        part="status", body={"id": external_id, "status": body_status}
                    ).execute()
            except HttpError as exc:
                if exc.resp.status == 404:
                    return False
                raise self._failure(exc, account, method, token) from exc
            except RefreshError as exc:
                raise self._auth_refused(account, method) from exc
            except NETWORK_ERRORS as exc:
                raise self._network_error(exc, method, token) from exc
        log.info("took down video %s of channel %s (%s)", external_id, account.external_id, method)
        return True

    def fetch_metrics(self, account: Account, external_ids: Sequence[str]) -> list[Metrics]:
        """Statistics of the given videos, 50 ids a ``videos.list`` call (1 unit each)."""
        ids = list(external_ids)
        if not ids:
            return []
        token = self._token(account)
        groups = list(batches(ids, self.ids_per_call))
        # All or nothing: units spent on batches whose results are then thrown away (because
        # a later batch was refused) would be wasted.
        bucket, cost = cost_of("videos.list")
        self.ledger.reserve(self._quota_key(account), bucket, cost * len(groups))
        metrics: list[Metrics] = []
        with self._connection(token, account.grant) as service:
            for batch in groups:
                response = self._execute(
                    service.videos().list(part="statistics", id=",".join(batch)),
                    account,
                    "videos.list",
                    token,
                    reserve=False,
                )
                collected_at = datetime.now(UTC)
                metrics.extend(
                    metrics_from_video(v, collected_at) for v in response.get("items", [])
                )
        return metrics


class YouTubeSettings(BaseModel):
    """What the YouTube adapter is built from (the service's settings of the same names)."""

    model_config = ConfigDict(frozen=True)

    youtube_root_url: str = "https://youtube.googleapis.com/"
    youtube_quota_project: str | None = "default"
    youtube_daily_uploads: int = DEFAULT_LIMITS[UPLOADS]
    youtube_daily_units: int = DEFAULT_LIMITS[UNITS]
    media_root: Path | None = None


def youtube_adapter_from_settings(
    settings: YouTubeSettings | object, ledger: QuotaLedger
) -> YouTubeAdapter:
    """The YouTube adapter the pipeline uses: ``youtube_root_url`` of the settings (a
    :class:`YouTubeSettings`, or anything with those attributes) and ``ledger``."""
    values = SPEC.settings_from(settings)
    assert isinstance(values, YouTubeSettings)
    return YouTubeAdapter(
        root_url=values.youtube_root_url,
        ledger=ledger,
        quota_project=values.youtube_quota_project or None,
        media_root=values.media_root,
    )


# -- the channel as a unit ------------------------------------------------------------------


class YouTubeContent(TypedDict, total=False):
    """``Post.content`` of a YouTube post (see the module docstring)."""

    title: Required[str]
    description: str
    tags: list[str]
    video: Required[str]
    privacy: Literal["public", "unlisted", "private"]
    publish_at: str
    category_id: str
    made_for_kids: bool
    language: str


def _category(value: Any) -> str:
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise PydanticCustomError(
            "category",
            "{value} is not a YouTube category id (a number such as 19)",
            {"value": repr(value)},
        )
    return str(value).strip()


CategoryId = Annotated[str, PlainValidator(_category)]


class YouTubeIn(ChannelInput):
    """The ``youtube:`` block of a campaign file."""

    templates: ClassVar[tuple[str, ...]] = ("title", "description", "video")
    template_lists: ClassVar[tuple[str, ...]] = ("tags",)

    account: Text = "community"
    title: TemplateField
    description: TemplateField | None = None
    tags: list[TemplateField] = []
    video: TemplateField
    privacy: Literal["public", "unlisted", "private"] = "private"
    publish_at: Literal["occurrence"] | None = None
    upload_ahead: Duration = "2h"
    category: CategoryId = "19"
    made_for_kids: bool = False
    language: Text = "th"

    def fixed(self) -> dict[str, Any]:
        return {
            "privacy": self.privacy,
            "category_id": self.category,
            "made_for_kids": self.made_for_kids,
            "language": self.language,
        }

    def written_at(self) -> dict[str, str]:
        return {
            "privacy": "privacy",
            "category_id": "category",
            "publish_at": "publish_at",
            "tags": "tags",
        }

    def publish_at_occurrence(self) -> bool:
        return self.publish_at == "occurrence"

    def goes_out_before(self) -> timedelta:
        return duration(self.upload_ahead)


def _build(settings: YouTubeSettings, services: ChannelServices) -> YouTubeAdapter:
    if services.quota_ledger is not None:
        ledger = services.quota_ledger()
    else:
        ledger = InMemoryQuotaLedger(
            limits={UPLOADS: settings.youtube_daily_uploads, UNITS: settings.youtube_daily_units}
        )
    return youtube_adapter_from_settings(settings, ledger)


SPEC = ChannelSpec(
    kind=YouTubeLimits.kind,
    label_th="ยูทูบ",
    label_en="YouTube",
    colour="#d0242b",
    utm_source="youtube",
    utm_medium="video",
    campaign_model=YouTubeIn,
    media_keys=("video",),
    limits=YouTubeLimits,
    content=YouTubeContent,
    capabilities=frozenset(
        {
            Capability.PUBLISH,
            Capability.METRICS,
            Capability.ACCOUNT_CHECK,
            Capability.FIND_PUBLISHED,
            Capability.TAKE_DOWN,
            Capability.MAKE_PRIVATE,
        }
    ),
    settings_model=YouTubeSettings,
    factory=_build,
    # One upload a message: an upload takes seconds to minutes, and the daily-upload ledger,
    # when Redis has lost it, is rebuilt by counting every started attempt as spent
    # (marketing.quota_record) -- a claimed batch would count as spent uploads not yet made.
    posts_per_message=1,
)
