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
  to 50 ids; counts are strings (/docs/videos#statistics);
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
import json
import random
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.quota import DEFAULT_LIMITS, UNITS, UPLOADS, quota_day
from channels.sandbox.base import (
    Fault,
    SandboxClock,
    SandboxHandler,
    SandboxServer,
    engagement,
)
from channels.youtube import YouTubeLimits, marker_tag, parse_time, rfc3339, tags_length

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

    def carries(self, marker: str) -> bool:
        """Whether this upload carries ``marker`` (as the adapter's marker tag)."""
        return marker_tag(marker) in self.tags


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
        if url.path == UPLOAD_PATH and self.command == "POST":
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
        self.quota_limits = {**DEFAULT_LIMITS, **(quota_limits or {})}
        self.reach = reach
        self.channels: dict[str, SandboxChannel] = {}
        self.uploads: dict[str, Upload] = {}
        self.videos: dict[str, Video] = {}
        self.playlists: dict[str, list[str]] = {}  # playlist id -> video ids, newest first
        self.calls: list[tuple[str, dict[str, str]]] = []  # (method, query) of API calls
        self.deleted: list[Video] = []  # removed with videos.delete (takedowns)
        self._quota: dict[tuple[str, str], int] = {}  # (bucket, Pacific day) -> used
        self._ids = random.Random(seed)

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

    def expire_token(self, token_or_channel: str) -> None:
        """Make a channel's token fail with 401 from now on (give a channel id or token)."""
        with self.lock:
            for channel in self.channels.values():
                if token_or_channel in (channel.token, channel.id):
                    channel.token_expired = True

    def completed_uploads(self) -> list[Upload]:
        """Uploads whose last byte arrived (each made one video)."""
        with self.lock:
            return [u for u in self.uploads.values() if u.video_id is not None]

    def uploads_for(self, marker: str) -> list[Upload]:
        """Completed uploads that carry ``marker``: more than one is a duplicate post."""
        return [u for u in self.completed_uploads() if u.carries(marker)]

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
        if channel is None:
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
        problem = self._metadata_problem(resource, part)
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

    def _metadata_problem(
        self, resource: dict[str, Any], part: list[str]
    ) -> tuple[str, str] | None:
        """(reason, message) of the first rule the video resource breaks, or None."""
        if not part:
            return "missingRequiredParameter", "No filter selected. Expected one of: part"
        snippet = resource.get("snippet") or {}
        status = resource.get("status") or {}
        title = snippet.get("title")
        limits = YouTubeLimits
        if not isinstance(title, str) or not title.strip():
            return "invalidTitle", "The request metadata specifies an invalid or empty title."
        if len(title) > limits.title_max_chars or any(c in title for c in "<>"):
            return "invalidTitle", "The request metadata specifies an invalid video title."
        description = str(snippet.get("description") or "")
        if len(description.encode("utf-8")) > limits.description_max_bytes or any(
            c in description for c in "<>"
        ):
            return (
                "invalidDescription",
                "The request metadata specifies an invalid video description.",
            )
        tags = snippet.get("tags") or []
        if not isinstance(tags, list) or tags_length([str(t) for t in tags]) > 500:
            return "invalidTags", "The request metadata specifies invalid video keywords."
        if not str(snippet.get("categoryId", "22")).isdigit():
            return "invalidCategoryId", "The snippet.categoryId property specifies an invalid ID."
        privacy = status.get("privacyStatus", "public")
        if privacy not in limits.privacy_values:
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
                "privacyStatus": status.get("privacyStatus", "public"),
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
        channel = self._authenticate(handler)
        if channel is None:
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

    def _list_videos(
        self,
        handler: YouTubeHandler,
        channel: SandboxChannel,
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
        if len(ids) > 50:
            # The reference allows a comma-separated list; clients batch by 50 (the most a
            # list page holds), and the sandbox refuses more so a client that does not
            # batch fails loudly.
            handler.send_json(
                400,
                google_error(400, "invalidValue", f"{len(ids)} ids; the sandbox takes 50"),
            )
            return
        with self.lock:
            found = [self.videos[i] for i in ids if i in self.videos]
            items = [
                self._video_resource(v, part)
                for v in found
                if v.channel_id == channel.id or v.status.get("privacyStatus") != "private"
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
