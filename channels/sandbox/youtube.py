"""A local YouTube Data API v3 server that speaks what ``google-api-python-client`` sends.

What it serves, and the public pages each part follows:

- resumable upload of ``videos.insert``
  (developers.google.com/youtube/v3/guides/using_resumable_upload_protocol):
  ``POST /upload/youtube/v3/videos?uploadType=resumable&part=...`` with the video resource
  as JSON and ``X-Upload-Content-Length``/``-Type`` -> ``200`` with ``Location`` (step 1-2);
  ``PUT <Location>`` with ``Content-Range: bytes a-b/total`` -> ``308`` with
  ``Range: bytes=0-N`` while bytes are missing, ``201`` with the video resource when the last
  byte arrives (step 3); an empty ``PUT`` with ``Content-Range: bytes */total`` -> how much
  arrived (``308``, no ``Range`` when nothing did), or the resource when complete (step 4);
- ``videos.list`` (/docs/videos/list): parts ``snippet``, ``status``, ``statistics`` for up
  to 50 ids; counts are strings (/docs/videos#statistics).  With an API key instead of a
  token (``?key=``, /docs/getting-started "API keys"; "you can use an API key for requests
  that only retrieve public data"): public and unlisted videos of any channel, a private
  one left out as if absent; a key the sandbox does not know is refused as Google does
  (``400 badRequest``, "API key not valid. Please pass a valid API key."), and a request
  with neither key nor token gets ``403 forbidden`` ("The request is missing a valid API
  key.").  Other people's videos are added with :meth:`YouTubeSandbox.add_public_video`;
- ``videos.delete`` (/docs/videos/delete): ``DELETE /youtube/v3/videos?id=``, 50 units,
  ``204`` when gone; ``videos.update`` of ``part=status`` (/docs/videos/update), 50 units;
- ``channels.list(mine=true)`` (/docs/channels/list) with
  ``contentDetails.relatedPlaylists.uploads``;
- ``playlistItems.list`` (/docs/playlistItems/list) of the uploads playlist, newest first,
  ``maxResults`` up to 50 (default 5), paged with ``nextPageToken``; its snippet carries
  title and description but no tags (/docs/playlistItems#resource);
- quota (/determine_quota_cost): ``videos.insert`` counts in its own bucket (100 a day),
  everything else 1 unit against 10,000 a day, invalid requests included; the day resets at
  midnight Pacific time on the sandbox clock; over the limit -> ``403 quotaExceeded``;
- errors in Google's JSON format (/docs/errors): ``{"error": {"code", "message", "errors":
  [{"message", "domain", "reason"}], "status"}}``; 401 ``authError`` for an unknown or
  expired token, 400 ``uploadLimitExceeded`` past a channel's upload limit, 400
  ``invalidTitle``/``invalidDescription``/``invalidTags``/``invalidCategoryId``/
  ``invalidPublishAt`` for metadata that breaks the limits in /docs/videos#properties.

Google's OAuth 2.0 for web server apps (developers.google.com/identity/protocols/oauth2/
web-server) is served on the same port, for connecting a channel:

- ``GET /o/oauth2/auth`` -- the consent page: the Google account (a registered channel) to
  sign in as, and a checkbox per requested scope (granular consent: a scope may be unticked);
  ``POST /o/oauth2/approve`` redirects to ``redirect_uri`` with ``code`` and ``state`` (or
  ``error=access_denied``);
- ``POST /token`` -- ``grant_type=authorization_code`` (``code_verifier`` checked against the
  S256 ``code_challenge``, RFC 7636 §4.6; a code works once) answers ``access_token``
  (``ya29.``), ``expires_in`` 3599, ``scope`` (what was granted), ``token_type`` and, with
  ``access_type=offline``, ``refresh_token`` (``1//``); ``grant_type=refresh_token`` answers a
  new access token without a refresh token; a revoked grant answers 400 ``invalid_grant``
  (/identity/protocols/oauth2#expiration);
- ``POST /revoke?token=`` (/identity/protocols/oauth2/web-server#tokenrevoke) or
  :meth:`YouTubeSandbox.revoke_grant` revoke a grant with its access tokens.

Access tokens expire an hour after issue on the sandbox clock (401 ``authError``).  Uploads
are forced private while :attr:`YouTubeSandbox.force_private` is set, as YouTube does for
API projects that have not passed its audit (developers.google.com/youtube/v3/docs/videos/
insert: "All videos uploaded via the videos.insert endpoint from unverified API projects
created after 28 July 2020 will be restricted to private viewing mode").

The title limit is enforced in code points (the stricter reading of "100 characters").
Quota is per sandbox (Google counts it per Cloud project); engagement grows
deterministically with :func:`channels.sandbox.base.engagement`.  Faults come from
``self.faults``; ``drop_during`` on ``PUT /upload/`` cuts a chunk in the middle (the bytes
that arrived are kept), ``drop_after`` on the last chunk completes the video and loses the
answer.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import random
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

from channels.sandbox.base import (
    Fault,
    SandboxClock,
    SandboxHandler,
    SandboxServer,
    engagement,
)

# -- YouTube's documented rules, written here from the documentation and not taken from the
# adapter (channels/youtube.py, channels/quota.py): a wrong limit on our side must meet a
# sandbox that refuses as YouTube would.  tests/test_sandbox_independence.py compares both.

# https://developers.google.com/youtube/v3/docs/videos#properties
# snippet.title: "The property value has a maximum length of 100 characters and may contain
# all valid UTF-8 characters except < and >" (checked in code points, the stricter reading).
TITLE_MAX_CHARS = 100
# snippet.description: "a maximum length of 5000 bytes ... all valid UTF-8 characters except
# < and >".
DESCRIPTION_MAX_BYTES = 5_000
FORBIDDEN_CHARS = "<>"
# snippet.tags[]: "The property value has a maximum length of 500 characters.  Note that the
# character limit includes commas between items, and that a tag containing a space counts
# with quotation marks around it."
TAGS_MAX_CHARS = 500
# status.privacyStatus: "Valid values for this property are: private, public, unlisted".
PRIVACY_VALUES = frozenset({"private", "public", "unlisted"})

# https://developers.google.com/youtube/v3/determine_quota_cost
# "a default quota allocation of 100 search.list calls, 100 videos.insert calls, and 10,000
# units per day combined for all other endpoints ... Daily quotas reset at midnight Pacific
# Time (PT)."  The bucket names are the methods' (videos.insert, search.list) and "units".
UNITS = "units"
UPLOADS = "videos.insert"
SEARCHES = "search.list"
DEFAULT_QUOTA: dict[str, int] = {UNITS: 10_000, UPLOADS: 100, SEARCHES: 100}
PACIFIC = ZoneInfo("America/Los_Angeles")

# https://developers.google.com/youtube/v3/docs/videos/list: ``maxResults`` "Acceptable values
# are 1 to 50"; the sandbox takes at most that many ids in one videos.list.
MAX_IDS = 50

# The carrier of our own marker: the adapter adds one tag, ``glo-`` and 20 hex digits
# (docs/channels/youtube.md, "The marker: how an upload is found again").  The sandbox only
# reads the tag; turning a post's marker into it is the business of the tests' helpers
# (tests/support/markers.py).
MARKER_TAG = re.compile(r"glo-[0-9a-f]{20}")


def quota_day(moment: datetime) -> date:
    """The quota day (a date in Pacific time) ``moment`` falls in; see DEFAULT_QUOTA."""
    return moment.astimezone(PACIFIC).date()


def tags_length(tags: list[str]) -> int:
    """``tags`` counted as the videos#properties page says: commas between items, quotes
    around a tag that contains a space."""
    return sum(len(t) + (2 if " " in t else 0) for t in tags) + max(len(tags) - 1, 0)


def rfc3339(moment: datetime) -> str:
    """``moment`` in UTC as the API writes ``datetime`` values (``2026-06-02T03:00:00Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """An RFC 3339 time (``...Z`` or with an offset) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


UPLOAD_PATH = "/upload/youtube/v3/videos"
API_PREFIX = "/youtube/v3/"
VIDEO_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

QUOTA_MESSAGE = (
    "The request cannot be completed because you have exceeded your "
    '<a href="/youtube/v3/getting-started#quota">quota</a>.'
)


def google_error(
    code: int, reason: str, message: str, *, domain: str = "youtube.api"
) -> dict[str, Any]:
    """An error body in Google's JSON error format (developers.google.com/youtube/v3/docs/
    errors)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": STATUS_NAMES.get(code, "UNKNOWN"),
        }
    }


def error_fault(
    status: int,
    reason: str,
    message: str = "injected by the sandbox",
    *,
    method: str = "*",
    path: str = "",
    times: int | None = 1,
    domain: str = "youtube.api",
    headers: dict[str, str] | None = None,
) -> Fault:
    """A fault that answers ``status`` with a Google-format error of ``reason``."""
    return Fault(
        "error",
        method=method,
        path=path,
        status=status,
        body=google_error(status, reason, message, domain=domain),
        headers=headers or {},
        times=times,
    )


@dataclass
class SandboxChannel:
    """A YouTube channel the sandbox knows, with the one token that acts for it."""

    id: str
    token: str
    title: str
    upload_limit: int | None = None  # uploads per 24 h before uploadLimitExceeded
    token_expired: bool = False

    @property
    def uploads_playlist(self) -> str:
        # YouTube's convention: channel UCxxxx has the uploads playlist UUxxxx.
        return "UU" + self.id[2:] if self.id.startswith("UC") else "UU" + self.id


#: Scopes that let a token read the channel, and upload to it
#: (developers.google.com/youtube/v3/guides/auth/server-side-web-apps#identify-access-scopes).
READ_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/youtube",
        "https://www.googleapis.com/auth/youtube.readonly",
        "https://www.googleapis.com/auth/youtube.force-ssl",
    }
)
UPLOAD_SCOPES = frozenset(
    {"https://www.googleapis.com/auth/youtube", "https://www.googleapis.com/auth/youtube.upload"}
)
ACCESS_TOKEN_SECONDS = 3599


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    channel_id: str
    scopes: list[str]
    challenge: str | None
    challenge_method: str
    offline: bool
    issued_at: datetime
    used: bool = False


@dataclass
class Grant:
    """One consent: a refresh token and the access tokens issued under it."""

    refresh_token: str | None
    client_id: str
    channel_id: str
    scopes: list[str]
    revoked: bool = False
    access_tokens: dict[str, datetime] = field(default_factory=dict)  # token -> expiry


@dataclass
class Upload:
    """One resumable upload session and, once its last byte arrived, its video."""

    id: str
    channel_id: str
    part: list[str]
    resource: dict[str, Any]
    content_type: str
    total: int | None
    started_at: datetime
    data: bytearray = field(default_factory=bytearray)
    video_id: str | None = None
    completed_at: datetime | None = None

    @property
    def tags(self) -> list[str]:
        return list((self.resource.get("snippet") or {}).get("tags") or [])

    @property
    def marker_tags(self) -> list[str]:
        """The tags of this upload that have the shape of a marker tag (see MARKER_TAG)."""
        return [t for t in self.tags if MARKER_TAG.fullmatch(t)]


@dataclass
class Video:
    """A video on a sandbox channel."""

    id: str
    channel_id: str
    snippet: dict[str, Any]
    status: dict[str, Any]
    published_at: datetime
    upload_id: str


class YouTubeHandler(SandboxHandler):
    sandbox: YouTubeSandbox

    def route(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if url.path == "/o/oauth2/auth" and self.command == "GET":
            self.sandbox._consent_page(self, query)
        elif url.path == "/o/oauth2/approve" and self.command == "POST":
            self.sandbox._approve(self, self.form())
        elif url.path == "/token" and self.command == "POST":
            self.sandbox._token(self, self.form())
        elif url.path == "/revoke" and self.command == "POST":
            self.sandbox._revoke(self, {**query, **self.form()})
        elif url.path == UPLOAD_PATH and self.command == "POST":
            self.sandbox._start_upload(self, query)
        elif url.path == UPLOAD_PATH and self.command == "PUT":
            self.sandbox._upload_chunk(self, query)
        elif url.path.startswith(API_PREFIX) and self.command == "GET":
            self.sandbox._api_call(self, url.path[len(API_PREFIX) :], query)
        elif url.path == API_PREFIX + "videos" and self.command == "DELETE":
            self.sandbox._delete_video(self, query)
        elif url.path == API_PREFIX + "videos" and self.command == "PUT":
            self.sandbox._update_video_status(self, query)
        else:
            self.send_json(
                404, google_error(404, "notFound", f"{self.command} {url.path} is not served")
            )

    def control(self) -> None:
        """Adds ``POST /_sandbox/channels`` ({"channel_id", "token", "title"?}) and
        ``POST /_sandbox/expire`` ({"token"}) to the shared controls."""
        if self.command == "POST" and self.path.startswith("/_sandbox/channels"):
            spec = json.loads(self._read_body() or b"{}")
            channel = self.sandbox.register_channel(
                spec["channel_id"], spec["token"], title=spec.get("title")
            )
            self.send_json(200, {"id": channel.id, "uploads": channel.uploads_playlist})
        elif self.command == "POST" and self.path.startswith("/_sandbox/expire"):
            spec = json.loads(self._read_body() or b"{}")
            self.sandbox.expire_token(spec["token"])
            self.send_json(200, {"ok": True})
        else:
            super().control()

    def form(self) -> dict[str, str]:
        """The form-encoded body, with HTTP Basic client credentials as ``client_id`` and
        ``client_secret`` (RFC 6749 §2.3.1 allows either)."""
        body = self._read_body().decode("utf-8", "replace")
        values = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
        header = self.headers.get("Authorization") or ""
        if header.lower().startswith("basic "):
            from urllib.parse import unquote

            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            values.setdefault("client_id", unquote(user))
            values.setdefault("client_secret", unquote(password))
        return values

    def bearer(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        match = re.fullmatch(r"\s*Bearer\s+(\S+)\s*", header, flags=re.IGNORECASE)
        return match.group(1) if match else None


class YouTubeSandbox(SandboxServer):
    """The YouTube Data API on 127.0.0.1: channels, resumable uploads, statistics, quota."""

    handler_class = YouTubeHandler

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: SandboxClock | None = None,
        quota_limits: dict[str, int] | None = None,
        reach: int = 5_000,
    ) -> None:
        super().__init__(host=host, port=port, seed=seed, clock=clock)
        self.quota_limits = {**DEFAULT_QUOTA, **(quota_limits or {})}
        self.reach = reach
        self.channels: dict[str, SandboxChannel] = {}
        self.uploads: dict[str, Upload] = {}
        self.videos: dict[str, Video] = {}
        self.playlists: dict[str, list[str]] = {}  # playlist id -> video ids, newest first
        self.calls: list[tuple[str, dict[str, str]]] = []  # (method, query) of API calls
        self.deleted: list[Video] = []  # removed with videos.delete (takedowns)
        self._quota: dict[tuple[str, str], int] = {}  # (bucket, Pacific day) -> used
        self._ids = random.Random(seed)
        self.clients: dict[str, OAuthClient] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.grants: list[Grant] = []
        self.force_private = False  # uploads come back private, as for an unaudited project
        self.api_keys: set[str] = set()  # keys of API projects (public data only)
        self._secrets = random.Random(f"{seed}:oauth")

    # -- set-up and inspection (tests, the demo)

    def register_channel(
        self,
        channel_id: str,
        token: str,
        *,
        title: str | None = None,
        upload_limit: int | None = None,
    ) -> SandboxChannel:
        """Make ``channel_id`` exist, acted for by ``token`` (replacing an earlier token)."""
        with self.lock:
            channel = SandboxChannel(channel_id, token, title or channel_id, upload_limit)
            self.channels[channel_id] = channel
            self.playlists.setdefault(channel.uploads_playlist, [])
            return channel

    def register_api_key(self, key: str) -> None:
        """An API key that may read public data (``videos.list`` with ``?key=``)."""
        with self.lock:
            self.api_keys.add(key)

    def add_public_video(
        self,
        video_id: str,
        *,
        channel_id: str,
        title: str,
        channel_title: str | None = None,
        published_at: datetime | None = None,
        privacy: str = "public",
    ) -> Video:
        """A video on somebody else's channel (a creator's), public unless ``privacy`` says
        otherwise; its statistics grow from ``published_at`` like the others'."""
        when = published_at or self.clock.now()
        video = Video(
            id=video_id,
            channel_id=channel_id,
            snippet={
                "publishedAt": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "channelId": channel_id,
                "title": title,
                "description": "",
                "channelTitle": channel_title or channel_id,
                "tags": [],
                "categoryId": "19",
            },
            status={"uploadStatus": "processed", "privacyStatus": privacy},
            published_at=when,
            upload_id="",
        )
        with self.lock:
            self.videos[video_id] = video
        return video

    def expire_token(self, token_or_channel: str) -> None:
        """Make a channel's token fail with 401 from now on (give a channel id or token)."""
        with self.lock:
            for channel in self.channels.values():
                if token_or_channel in (channel.token, channel.id):
                    channel.token_expired = True

    def register_client(self, client_id: str, client_secret: str) -> None:
        """An OAuth client (a Google Cloud project's web client) that may ask for consent."""
        with self.lock:
            self.clients[client_id] = OAuthClient(client_id, client_secret)

    def revoke_grant(self, channel_id: str) -> int:
        """Revoke every grant for ``channel_id`` (the owner removed the app's access at
        myaccount.google.com/permissions); return how many."""
        with self.lock:
            found = [g for g in self.grants if g.channel_id == channel_id and not g.revoked]
            for grant in found:
                grant.revoked = True
            return len(found)

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token the OAuth endpoints issued (for leak checks)."""
        with self.lock:
            tokens = [t for g in self.grants for t in g.access_tokens]
            return tokens + [g.refresh_token for g in self.grants if g.refresh_token]

    def completed_uploads(self) -> list[Upload]:
        """Uploads whose last byte arrived (each made one video)."""
        with self.lock:
            return [u for u in self.uploads.values() if u.video_id is not None]

    def uploads_tagged(self, tag: str) -> list[Upload]:
        """Completed uploads that carry the marker tag ``tag``: more than one is a duplicate
        post.  (tests/support/markers.py turns a post's marker into its tag.)"""
        return [u for u in self.completed_uploads() if tag in u.marker_tags]

    def count_by_marker_tag(self) -> dict[str, int]:
        """How many completed uploads carry each marker tag."""
        counts: dict[str, int] = {}
        for upload in self.completed_uploads():
            for tag in upload.marker_tags:
                counts[tag] = counts.get(tag, 0) + 1
        return counts

    def calls_to(self, method: str) -> int:
        """How many API calls of ``method`` (``"videos.list"``) the sandbox answered."""
        with self.lock:
            return sum(1 for name, _ in self.calls if name == method)

    def quota_used(self, bucket: str = UNITS) -> int:
        """Quota spent today (sandbox clock, Pacific day) in ``bucket``."""
        with self.lock:
            return self._quota.get((bucket, quota_day(self.clock.now()).isoformat()), 0)

    def spend_quota(self, bucket: str, units: int) -> None:
        """Spend ``units`` of today's quota as if other calls had (to test exhaustion)."""
        with self.lock:
            key = (bucket, quota_day(self.clock.now()).isoformat())
            self._quota[key] = self._quota.get(key, 0) + units

    def statistics(self, video: Video) -> dict[str, str]:
        """The video's statistics now, as strings; growth starts when it became public."""
        start = video.published_at
        publish_at = video.status.get("publishAt")
        if publish_at:
            start = max(start, parse_time(publish_at))
        counts = engagement(self.seed, video.id, self.clock.now() - start, reach=self.reach)
        return {
            "viewCount": str(counts["views"]),
            "likeCount": str(counts["reactions"]),
            "favoriteCount": "0",
            "commentCount": str(counts["comments"]),
        }

    def state(self) -> dict[str, Any]:
        base = super().state()
        with self.lock:
            base.update(
                channels=sorted(self.channels),
                uploads_started=len(self.uploads),
                videos=len(self.videos),
                quota={
                    bucket: self._quota.get((bucket, quota_day(self.clock.now()).isoformat()), 0)
                    for bucket in self.quota_limits
                },
                calls={name: self.calls_to(name) for name in {n for n, _ in self.calls}},
            )
        return base

    # -- request handling (called from handler threads)

    def _new_id(self, length: int) -> str:
        with self.lock:
            return "".join(self._ids.choice(VIDEO_ID_ALPHABET) for _ in range(length))

    def _authenticate(self, handler: YouTubeHandler) -> SandboxChannel | None:
        """The channel the request's token acts for; answers 401 and returns None if none."""
        token = handler.bearer()
        with self.lock:
            channel = next((c for c in self.channels.values() if c.token == token), None)
            if channel is None and token is not None:
                channel = self._granted_channel(token)
        if channel is None or channel.token_expired:
            reason, message = (
                ("required", "Login Required.")
                if token is None
                else (
                    "authError",
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.",
                )
            )
            handler._read_body()
            handler.send_json(
                401,
                google_error(401, reason, message, domain="global"),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
            return None
        return channel

    def _scoped(self, handler: YouTubeHandler, needed: frozenset[str]) -> bool:
        """Whether the request's token carries one of ``needed``; answers 403
        ``insufficientPermissions`` (/docs/errors) and returns False if not."""
        scopes = self.scopes_of(handler.bearer())
        if scopes is None or scopes & needed:
            return True
        handler._read_body()
        handler.send_json(
            403,
            google_error(
                403,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
                domain="global",
            ),
        )
        return False

    def _charge(self, handler: YouTubeHandler, bucket: str, units: int) -> bool:
        """Spend quota, or answer 403 quotaExceeded (spending nothing) and return False."""
        with self.lock:
            key = (bucket, quota_day(self.clock.now()).isoformat())
            used = self._quota.get(key, 0)
            if used + units > self.quota_limits[bucket]:
                refused = True
            else:
                self._quota[key] = used + units
                refused = False
        if refused:
            handler._read_body()
            handler.send_json(
                403, google_error(403, "quotaExceeded", QUOTA_MESSAGE, domain="youtube.quota")
            )
        return not refused

    def _start_upload(self, handler: YouTubeHandler, query: dict[str, str]) -> None:
        channel = self._authenticate(handler)
        if channel is None or not self._scoped(handler, UPLOAD_SCOPES):
            return
        self._record("videos.insert", query)
        if query.get("uploadType") != "resumable":
            handler._read_body()
            handler.send_json(
                400,
                google_error(
                    400,
                    "badRequest",
                    "the sandbox serves only uploadType=resumable (what the client library "
                    "sends for a resumable MediaUpload)",
                ),
            )
            return
        if not self._charge(handler, UPLOADS, 1):
            return
        body = handler._read_body()
        try:
            resource = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            handler.send_json(400, google_error(400, "parseError", "Parse Error"))
            return
        part = [p.strip() for p in query.get("part", "").split(",") if p.strip()]
        problem = self.metadata_problem(resource, part)
        if problem is not None:
            handler.send_json(400, google_error(400, *problem))
            return
        with self.lock:
            recent = [
                v
                for v in self.videos.values()
                if v.channel_id == channel.id
                and v.published_at > self.clock.now() - timedelta(hours=24)
            ]
            over = channel.upload_limit is not None and len(recent) >= channel.upload_limit
        if over:
            handler.send_json(
                400,
                google_error(
                    400,
                    "uploadLimitExceeded",
                    "The user has exceeded the number of videos they may upload.",
                    domain="youtube.video",
                ),
            )
            return
        length = handler.headers.get("X-Upload-Content-Length")
        upload = Upload(
            id=secrets.token_urlsafe(12),
            channel_id=channel.id,
            part=part,
            resource=resource,
            content_type=handler.headers.get("X-Upload-Content-Type") or "video/*",
            total=int(length) if length and length.isdigit() else None,
            started_at=self.clock.now(),
        )
        with self.lock:
            self.uploads[upload.id] = upload
        location = f"{self.url}{UPLOAD_PATH}?uploadType=resumable&upload_id={upload.id}"
        handler.send_bytes(200, b"", None, {"Location": location})

    def metadata_problem(self, resource: dict[str, Any], part: list[str]) -> tuple[str, str] | None:
        """(reason, message) of the first rule the video resource breaks, or None."""
        if not part:
            return "missingRequiredParameter", "No filter selected. Expected one of: part"
        snippet = resource.get("snippet") or {}
        status = resource.get("status") or {}
        title = snippet.get("title")
        if not isinstance(title, str) or not title.strip():
            return "invalidTitle", "The request metadata specifies an invalid or empty title."
        if len(title) > TITLE_MAX_CHARS or any(c in title for c in FORBIDDEN_CHARS):
            return "invalidTitle", "The request metadata specifies an invalid video title."
        description = str(snippet.get("description") or "")
        if len(description.encode("utf-8")) > DESCRIPTION_MAX_BYTES or any(
            c in description for c in FORBIDDEN_CHARS
        ):
            return (
                "invalidDescription",
                "The request metadata specifies an invalid video description.",
            )
        tags = snippet.get("tags") or []
        if not isinstance(tags, list) or tags_length([str(t) for t in tags]) > TAGS_MAX_CHARS:
            return "invalidTags", "The request metadata specifies invalid video keywords."
        if not str(snippet.get("categoryId", "22")).isdigit():
            return "invalidCategoryId", "The snippet.categoryId property specifies an invalid ID."
        privacy = status.get("privacyStatus", "public")
        if privacy not in PRIVACY_VALUES:
            return "invalidVideoMetadata", "The request metadata is invalid."
        publish_at = status.get("publishAt")
        if publish_at is not None:
            try:
                moment = parse_time(str(publish_at))
            except ValueError:
                moment = None
            if privacy != "private" or moment is None or moment <= self.clock.now():
                return (
                    "invalidPublishAt",
                    "The request metadata specifies an invalid scheduled publishing time.",
                )
        return None

    def _upload_chunk(self, handler: YouTubeHandler, query: dict[str, str]) -> None:
        with self.lock:
            upload = self.uploads.get(query.get("upload_id", ""))
        if upload is None:
            handler._read_body()
            handler.send_json(404, google_error(404, "notFound", "Upload session not found."))
            return
        content_range = handler.headers.get("Content-Range") or ""
        body = handler._read_body()
        status_query = re.fullmatch(r"bytes \*/(\d+|\*)", content_range.strip())
        chunk = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range.strip())
        self._record("upload.status" if status_query else "upload.chunk", query)
        if status_query is None and chunk is None:
            handler.send_json(
                400, google_error(400, "badContent", f"bad Content-Range {content_range!r}")
            )
            return
        with self.lock:
            if upload.video_id is None and chunk is not None:
                start, total = int(chunk.group(1)), chunk.group(3)
                if total != "*":
                    upload.total = int(total)
                have = len(upload.data)
                # A chunk sent again (its answer was lost) overlaps what arrived: keep only
                # the new bytes.  A chunk past what arrived leaves a gap: take nothing and
                # answer with the real progress, which the client resumes from.
                if start <= have < start + len(body):
                    upload.data += body[have - start :]
            elif status_query is not None and status_query.group(1) != "*":
                upload.total = upload.total or int(status_query.group(1))
            complete = upload.video_id is None and upload.total == len(upload.data)
            if complete:
                self._complete(upload)
            video = self.videos.get(upload.video_id) if upload.video_id else None
            received = len(upload.data)
        if video is not None:
            status = 201 if complete else 200
            handler.send_json(status, self._video_resource(video, upload.part))
        else:
            headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
            handler.send_bytes(308, b"", None, headers)

    def _complete(self, upload: Upload) -> None:
        # Caller holds self.lock.
        now = self.clock.now()
        channel = self.channels[upload.channel_id]
        snippet = dict(upload.resource.get("snippet") or {})
        status = dict(upload.resource.get("status") or {})
        video = Video(
            id=self._new_id(11),
            channel_id=channel.id,
            snippet={
                "publishedAt": rfc3339(now),
                "channelId": channel.id,
                "title": snippet.get("title", ""),
                "description": snippet.get("description", ""),
                "thumbnails": {},
                "channelTitle": channel.title,
                "tags": list(snippet.get("tags") or []),
                "categoryId": str(snippet.get("categoryId", "22")),
                "liveBroadcastContent": "none",
                **(
                    {"defaultLanguage": snippet["defaultLanguage"]}
                    if "defaultLanguage" in snippet
                    else {}
                ),
                "localized": {
                    "title": snippet.get("title", ""),
                    "description": snippet.get("description", ""),
                },
            },
            status={
                "uploadStatus": "uploaded",
                "privacyStatus": (
                    "private" if self.force_private else status.get("privacyStatus", "public")
                ),
                **({"publishAt": status["publishAt"]} if "publishAt" in status else {}),
                "license": "youtube",
                "embeddable": True,
                "publicStatsViewable": True,
                "madeForKids": bool(status.get("selfDeclaredMadeForKids", False)),
                "selfDeclaredMadeForKids": bool(status.get("selfDeclaredMadeForKids", False)),
            },
            published_at=now,
            upload_id=upload.id,
        )
        if not video.snippet["tags"]:
            del video.snippet["tags"]
        self.videos[video.id] = video
        self.playlists[channel.uploads_playlist].insert(0, video.id)
        upload.video_id = video.id
        upload.completed_at = now

    def _video_resource(self, video: Video, part: list[str]) -> dict[str, Any]:
        resource: dict[str, Any] = {
            "kind": "youtube#video",
            "etag": _etag(video.id, part),
            "id": video.id,
        }
        if "snippet" in part:
            resource["snippet"] = video.snippet
        if "status" in part:
            resource["status"] = video.status
        if "statistics" in part:
            resource["statistics"] = self.statistics(video)
        return resource

    def _record(self, method: str, query: dict[str, str]) -> None:
        with self.lock:
            self.calls.append((method, query))

    def _api_call(self, handler: YouTubeHandler, resource: str, query: dict[str, str]) -> None:
        channel: SandboxChannel | None
        if handler.bearer() is None and resource == "videos":
            if not self._keyed(handler, query):
                return
            channel = None  # public data only
        else:
            channel = self._authenticate(handler)
            if channel is None or not self._scoped(handler, READ_SCOPES):
                return
        method = f"{resource}.list"
        self._record(method, query)
        if not self._charge(handler, UNITS, 1):
            return
        part = [p.strip() for p in query.get("part", "").split(",") if p.strip()]
        if not part:
            handler.send_json(
                400,
                google_error(
                    400,
                    "missingRequiredParameter",
                    "No filter selected. Expected one of: part",
                ),
            )
            return
        if resource == "videos":
            self._list_videos(handler, channel, query, part)
        elif channel is None:
            return
        elif resource == "channels":
            self._list_channels(handler, channel, query, part)
        elif resource == "playlistItems":
            self._list_playlist_items(handler, channel, query, part)
        else:
            handler.send_json(404, google_error(404, "notFound", f"{resource} is not served"))

    def _delete_video(self, handler: YouTubeHandler, query: dict[str, str]) -> None:
        """``videos.delete`` (developers.google.com/youtube/v3/docs/videos/delete): 50 units;
        ``204`` with no body when the channel's own video is gone; ``404 videoNotFound`` for
        an unknown id; ``403 forbidden`` for another channel's video."""
        channel = self._authenticate(handler)
        if channel is None:
            return
        self._record("videos.delete", query)
        if not self._charge(handler, UNITS, 50):
            return
        with self.lock:
            video = self.videos.get(query.get("id", ""))
            if video is not None and video.channel_id == channel.id:
                del self.videos[video.id]
                self.playlists[channel.uploads_playlist].remove(video.id)
                self.deleted.append(video)
                gone = True
            else:
                gone = False
        if gone:
            handler.send_bytes(204, b"")
        elif video is None:
            handler.send_json(
                404,
                google_error(
                    404,
                    "videoNotFound",
                    "The video that you are trying to delete cannot be found.",
                    domain="youtube.video",
                ),
            )
        else:
            handler.send_json(
                403,
                google_error(
                    403,
                    "forbidden",
                    "The video that you are trying to delete cannot be deleted. The request "
                    "might not be properly authorized.",
                    domain="youtube.video",
                ),
            )

    def _update_video_status(self, handler: YouTubeHandler, query: dict[str, str]) -> None:
        """``videos.update`` with ``part=status`` (developers.google.com/youtube/v3/docs/
        videos/update): 50 units; the body's ``status`` replaces the video's settable status
        properties (those left out return to their defaults, as the page warns); answers
        the updated resource.  Other parts are not served."""
        channel = self._authenticate(handler)
        if channel is None:
            return
        self._record("videos.update", query)
        if not self._charge(handler, UNITS, 50):
            return
        try:
            body = json.loads(handler._read_body() or b"{}")
        except ValueError:
            body = None
        part = [p.strip() for p in query.get("part", "").split(",") if p.strip()]
        if not isinstance(body, dict) or part != ["status"] or "status" not in body:
            handler.send_json(
                400,
                google_error(400, "invalidPart", "the sandbox updates part=status only"),
            )
            return
        with self.lock:
            video = self.videos.get(str(body.get("id", "")))
            if video is None:
                problem: tuple[int, str, str] | None = (
                    404,
                    "videoNotFound",
                    "The video that you are trying to update cannot be found.",
                )
            elif video.channel_id != channel.id:
                problem = (403, "forbidden", "The video that you are trying to update cannot "
                           "be updated. The request might not be properly authorized.")  # fmt: skip
            else:
                problem = None
                wanted = dict(body["status"])
                video.status = {
                    "uploadStatus": video.status.get("uploadStatus", "uploaded"),
                    "privacyStatus": wanted.get("privacyStatus", "public"),
                    **({"publishAt": wanted["publishAt"]} if wanted.get("publishAt") else {}),
                    "license": wanted.get("license", "youtube"),
                    "embeddable": bool(wanted.get("embeddable", True)),
                    "publicStatsViewable": bool(wanted.get("publicStatsViewable", True)),
                    "madeForKids": bool(wanted.get("selfDeclaredMadeForKids", False)),
                    "selfDeclaredMadeForKids": bool(wanted.get("selfDeclaredMadeForKids", False)),
                }
                resource = self._video_resource(video, part)
        if problem is not None:
            handler.send_json(
                problem[0], google_error(problem[0], problem[1], problem[2], domain="youtube.video")
            )
            return
        handler.send_json(200, resource)

    def _keyed(self, handler: YouTubeHandler, query: dict[str, str]) -> bool:
        """Whether a request without a token carries a known API key; answers as Google does
        and returns False if not."""
        key = query.get("key")
        if key is None:
            handler.send_json(
                403,
                google_error(403, "forbidden", "The request is missing a valid API key."),
            )
            return False
        with self.lock:
            known = key in self.api_keys
        if not known:
            handler.send_json(
                400,
                google_error(400, "badRequest", "API key not valid. Please pass a valid API key."),
            )
            return False
        return True

    def _list_videos(
        self,
        handler: YouTubeHandler,
        channel: SandboxChannel | None,
        query: dict[str, str],
        part: list[str],
    ) -> None:
        ids = [i for i in query.get("id", "").split(",") if i]
        if not ids:
            handler.send_json(
                400,
                google_error(
                    400,
                    "missingRequiredParameter",
                    "the sandbox answers videos.list only with the id filter",
                ),
            )
            return
        if len(ids) > MAX_IDS:
            # The reference allows a comma-separated list; clients batch by 50 (the most a
            # list page holds), and the sandbox refuses more so a client that does not
            # batch fails loudly.
            handler.send_json(
                400,
                google_error(400, "invalidValue", f"{len(ids)} ids; the sandbox takes {MAX_IDS}"),
            )
            return
        with self.lock:
            found = [self.videos[i] for i in ids if i in self.videos]
            items = [
                self._video_resource(v, part)
                for v in found
                if (channel is not None and v.channel_id == channel.id)
                or v.status.get("privacyStatus") != "private"
            ]
        handler.send_json(200, _list_response("youtube#videoListResponse", items, len(items)))

    def _list_channels(
        self,
        handler: YouTubeHandler,
        channel: SandboxChannel,
        query: dict[str, str],
        part: list[str],
    ) -> None:
        with self.lock:
            if query.get("mine") == "true":
                chosen = [channel]
            else:
                ids = [i for i in query.get("id", "").split(",") if i]
                chosen = [self.channels[i] for i in ids if i in self.channels]
            items = [_channel_resource(c, part, self.clock.now()) for c in chosen]
        handler.send_json(200, _list_response("youtube#channelListResponse", items, len(items)))

    def _list_playlist_items(
        self,
        handler: YouTubeHandler,
        channel: SandboxChannel,
        query: dict[str, str],
        part: list[str],
    ) -> None:
        playlist = query.get("playlistId", "")
        try:
            size = int(query.get("maxResults", "5"))
        except ValueError:
            size = -1
        if not 0 <= size <= 50:
            handler.send_json(
                400, google_error(400, "invalidValue", "maxResults must be between 0 and 50")
            )
            return
        with self.lock:
            if playlist not in self.playlists:
                handler.send_json(
                    404,
                    google_error(
                        404,
                        "playlistNotFound",
                        "The playlist identified with the request's playlistId parameter "
                        "cannot be found.",
                        domain="youtube.playlistItem",
                    ),
                )
                return
            owner = next(c for c in self.channels.values() if c.uploads_playlist == playlist)
            videos = [self.videos[i] for i in self.playlists[playlist]]
            if owner.id != channel.id:
                videos = [v for v in videos if v.status.get("privacyStatus") != "private"]
        offset = _page_offset(query.get("pageToken"))
        if offset is None:
            handler.send_json(
                400,
                google_error(
                    400, "invalidPageToken", "The request specifies an invalid page token."
                ),
            )
            return
        page = videos[offset : offset + size]
        items = [_playlist_item(v, owner, playlist, offset + n, part) for n, v in enumerate(page)]
        response = _list_response("youtube#playlistItemListResponse", items, len(videos))
        if offset + size < len(videos):
            response["nextPageToken"] = _page_token(offset + size)
        if offset > 0:
            response["prevPageToken"] = _page_token(max(offset - size, 0))
        handler.send_json(200, response)

    # -- Google OAuth 2.0 (developers.google.com/identity/protocols/oauth2/web-server)

    def _granted_channel(self, token: str) -> SandboxChannel | None:
        # Caller holds self.lock.  A revoked grant's or an hour-old access token is refused.
        now = self.clock.now()
        for grant in self.grants:
            expiry = grant.access_tokens.get(token)
            if expiry is not None and not grant.revoked and now < expiry:
                return self.channels.get(grant.channel_id)
        return None

    def scopes_of(self, token: str | None) -> set[str] | None:
        """The scopes an issued access token carries; None for a preset channel token."""
        with self.lock:
            for grant in self.grants:
                if token in grant.access_tokens:
                    return set(grant.scopes)
        return None

    def _random(self, alphabet: str, length: int) -> str:
        with self.lock:
            return "".join(self._secrets.choice(alphabet) for _ in range(length))

    def _consent_page(self, handler: YouTubeHandler, query: dict[str, str]) -> None:
        client = self.clients.get(query.get("client_id", ""))
        if client is None or query.get("response_type") != "code":
            handler.send_bytes(
                400,
                b"<h1>Error 401: invalid_client</h1><p>The OAuth client was not found.</p>",
                "text/html; charset=utf-8",
            )
            return
        scopes = [s for s in query.get("scope", "").split() if s]
        with self.lock:
            channels = list(self.channels.values())
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
            if k != "scope"
        )
        accounts = "".join(
            f'<label><input type="radio" name="channel_id" value="{html.escape(c.id)}"'
            f"{' checked' if i == 0 else ''}> {html.escape(c.title)}</label><br>"
            for i, c in enumerate(channels)
        )
        boxes = "".join(
            f'<label><input type="checkbox" name="scope" value="{html.escape(s)}" checked> '
            f"{html.escape(s)}</label><br>"
            for s in scopes
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Sign in - Google "
            "Accounts (sandbox)</title></head><body><h1>Choose an account</h1>"
            f"<form method='post' action='/o/oauth2/approve'>{hidden}{accounts}"
            f"<h2>The app wants to</h2>{boxes}"
            "<button type='submit' name='decision' value='allow'>Continue</button> "
            "<button type='submit' name='decision' value='deny'>Cancel</button>"
            "</form></body></html>"
        )
        handler.send_bytes(200, page.encode("utf-8"), "text/html; charset=utf-8")

    def _approve(self, handler: YouTubeHandler, form: dict[str, str]) -> None:
        body = handler._read_body().decode("utf-8", "replace")
        scopes = parse_qs(body).get("scope", [])
        redirect = form.get("redirect_uri", "")
        state = {"state": form["state"]} if "state" in form else {}
        if form.get("decision") != "allow" or form.get("channel_id") not in self.channels:
            target = f"{redirect}?{urlencode({'error': 'access_denied', **state})}"
            handler.send_bytes(302, b"", headers={"Location": target})
            return
        code = "4/0A" + self._random(VIDEO_ID_ALPHABET, 60)
        with self.lock:
            self.codes[code] = AuthorizationCode(
                client_id=form.get("client_id", ""),
                redirect_uri=redirect,
                channel_id=form["channel_id"],
                scopes=scopes,
                challenge=form.get("code_challenge"),
                challenge_method=form.get("code_challenge_method", "plain"),
                offline=form.get("access_type") == "offline",
                issued_at=self.clock.now(),
            )
        query = urlencode({"code": code, "scope": " ".join(scopes), **state})
        handler.send_bytes(302, b"", headers={"Location": f"{redirect}?{query}"})

    def _token_error(self, handler: YouTubeHandler, error: str, description: str) -> None:
        status = 401 if error == "invalid_client" else 400
        handler.send_json(status, {"error": error, "error_description": description})

    def _new_access(self, grant: Grant) -> dict[str, Any]:
        # Caller holds self.lock.
        token = "ya29.a0" + "".join(self._secrets.choice(VIDEO_ID_ALPHABET) for _ in range(100))
        grant.access_tokens[token] = self.clock.now() + timedelta(seconds=ACCESS_TOKEN_SECONDS)
        return {
            "access_token": token,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
        }

    def _token(self, handler: YouTubeHandler, form: dict[str, str]) -> None:
        client = self.clients.get(form.get("client_id", ""))
        if client is None or form.get("client_secret") != client.client_secret:
            self._token_error(handler, "invalid_client", "The OAuth client was not found.")
            return
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            self._exchange_code(handler, client, form)
        elif grant_type == "refresh_token":
            with self.lock:
                grant = next(
                    (g for g in self.grants if g.refresh_token == form.get("refresh_token")),
                    None,
                )
                if grant is None or grant.revoked or grant.client_id != client.client_id:
                    answer = None
                else:
                    answer = self._new_access(grant)  # no refresh_token: the client keeps its own
            if answer is None:
                self._token_error(handler, "invalid_grant", "Token has been expired or revoked.")
                return
            handler.send_json(200, answer)
        else:
            self._token_error(
                handler, "unsupported_grant_type", f"Invalid grant_type: {grant_type}"
            )

    def _exchange_code(
        self, handler: YouTubeHandler, client: OAuthClient, form: dict[str, str]
    ) -> None:
        with self.lock:
            code = self.codes.get(form.get("code", ""))
            if code is None or code.used or code.client_id != client.client_id:
                problem = "Malformed auth code." if code is None else "Bad Request"
            elif code.redirect_uri != form.get("redirect_uri"):
                problem = "redirect_uri_mismatch"
            elif self.clock.now() - code.issued_at > timedelta(minutes=10):
                problem = "Bad Request"
            elif code.challenge is not None and not _pkce_matches(
                form.get("code_verifier", ""), code.challenge, code.challenge_method
            ):
                problem = "Invalid code verifier."
            else:
                problem = None
            if code is not None:
                code.used = True  # a code is good for one try, right or wrong
            if problem is None and code is not None:
                grant = Grant(
                    refresh_token=(
                        "1//0g"
                        + "".join(self._secrets.choice(VIDEO_ID_ALPHABET) for _ in range(90))
                        if code.offline
                        else None
                    ),
                    client_id=client.client_id,
                    channel_id=code.channel_id,
                    scopes=code.scopes,
                )
                self.grants.append(grant)
                answer = self._new_access(grant)
                if grant.refresh_token:
                    answer["refresh_token"] = grant.refresh_token
        if problem is not None:
            self._token_error(handler, "invalid_grant", problem)
            return
        handler.send_json(200, answer)

    def _revoke(self, handler: YouTubeHandler, values: dict[str, str]) -> None:
        token = values.get("token", "")
        with self.lock:
            found = [g for g in self.grants if token == g.refresh_token or token in g.access_tokens]
            for grant in found:
                grant.revoked = True
        if not found:
            handler.send_json(400, {"error": "invalid_token", "error_description": "Bad Request"})
            return
        handler.send_json(200, {})


def _pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636 §4.6: S256 compares BASE64URL(SHA256(verifier)) without padding."""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    return verifier == challenge


def _etag(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:27]


def _list_response(kind: str, items: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "etag": _etag(kind, len(items), total),
        "pageInfo": {"totalResults": total, "resultsPerPage": len(items)},
        "items": items,
    }


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _page_offset(token: str | None) -> int | None:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    match = re.fullmatch(r"offset:(\d+)", text)
    return int(match.group(1)) if match else None


def _channel_resource(channel: SandboxChannel, part: list[str], now: datetime) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "kind": "youtube#channel",
        "etag": _etag(channel.id, part),
        "id": channel.id,
    }
    if "snippet" in part:
        resource["snippet"] = {
            "title": channel.title,
            "description": "",
            "publishedAt": rfc3339(now),
            "thumbnails": {},
            "localized": {"title": channel.title, "description": ""},
        }
    if "contentDetails" in part:
        resource["contentDetails"] = {
            "relatedPlaylists": {"likes": "", "uploads": channel.uploads_playlist}
        }
    return resource


def _playlist_item(
    video: Video, owner: SandboxChannel, playlist: str, position: int, part: list[str]
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "youtube#playlistItem",
        "etag": _etag(playlist, video.id, part),
        "id": base64.urlsafe_b64encode(f"{playlist}.{video.id}".encode()).decode().rstrip("="),
    }
    if "snippet" in part:
        item["snippet"] = {
            "publishedAt": video.snippet["publishedAt"],
            "channelId": owner.id,
            "title": video.snippet["title"],
            "description": video.snippet["description"],
            "thumbnails": {},
            "channelTitle": owner.title,
            "playlistId": playlist,
            "position": position,
            "resourceId": {"kind": "youtube#video", "videoId": video.id},
            "videoOwnerChannelTitle": owner.title,
            "videoOwnerChannelId": owner.id,
        }
    if "contentDetails" in part:
        item["contentDetails"] = {
            "videoId": video.id,
            "videoPublishedAt": video.status.get("publishAt") or video.snippet["publishedAt"],
        }
    if "status" in part:
        item["status"] = {"privacyStatus": video.status.get("privacyStatus", "public")}
    return item
