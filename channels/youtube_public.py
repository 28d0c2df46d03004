"""Public statistics of anybody's YouTube videos -- a creator's who presents a community --
read with the project's API key, never with a channel's token.

``videos.list`` with ``key=`` reads public data only (developers.google.com/youtube/v3/
getting-started, "API keys"); at most 50 ids a call, 1 quota unit each; counts are strings
(/docs/videos#statistics), and a video that is private or gone is simply absent.  This module
takes values and returns values: no database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError
from googleapiclient.http import build_http
from pydantic import SecretStr

from channels.errors import ChannelError, PermanentError, QuotaExhausted, TransientError
from channels.youtube import batches, discovery_document

IDS_PER_CALL = 50
VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}


def video_id_from_url(text: str) -> str | None:
    """The video id of a YouTube video URL (``watch?v=``, ``youtu.be/``, ``shorts/``,
    ``embed/``, ``live/``), or None if ``text`` is not one."""
    text = text.strip()
    if len(text) > 2000:
        return None
    try:
        url = urlsplit(text if "://" in text else "https://" + text)
    except ValueError:
        return None
    host = (url.hostname or "").lower()
    found: str | None = None
    if host == "youtu.be":
        found = url.path.strip("/").split("/")[0]
    elif host in _HOSTS:
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["watch"]:
            found = (parse_qs(url.query).get("v") or [""])[0]
        elif len(parts) >= 2 and parts[0] in {"shorts", "embed", "live", "v"}:
            found = parts[1]
    return found if found and VIDEO_ID.match(found) else None


@dataclass(frozen=True)
class PublicVideo:
    """A video's public snippet and statistics at one time."""

    id: str
    title: str
    channel_title: str
    published_at: datetime | None
    views: int | None
    likes: int | None  # None: hidden by its owner
    comments: int | None


def _count(statistics: dict[str, Any], name: str) -> int | None:
    value = statistics.get(name)
    return int(value) if value is not None and str(value).isdigit() else None


def _video(item: dict[str, Any]) -> PublicVideo:
    snippet = item.get("snippet") or {}
    statistics = item.get("statistics") or {}
    published = snippet.get("publishedAt")
    return PublicVideo(
        id=str(item["id"]),
        title=str(snippet.get("title", "")),
        channel_title=str(snippet.get("channelTitle", "")),
        published_at=datetime.fromisoformat(published.replace("Z", "+00:00"))
        if published
        else None,
        views=_count(statistics, "viewCount"),
        likes=_count(statistics, "likeCount"),
        comments=_count(statistics, "commentCount"),
    )


def _failure(exc: HttpError) -> ChannelError:
    reason = ""
    try:
        reason = str(exc.error_details[0].get("reason", ""))
    except (IndexError, TypeError, AttributeError, KeyError):
        reason = ""
    status = exc.status_code
    message = f"videos.list with the API key: {status} {reason}".strip()
    if reason == "quotaExceeded":
        return QuotaExhausted(message, code="youtube:quota-exceeded")
    if status in (400, 401, 403):
        return PermanentError(
            message,
            code="youtube:api-key-refused",
            hint="Check MARKETING_YOUTUBE_API_KEY (a key of the project, with the YouTube "
            "Data API enabled).",
        )
    return TransientError(message, code="youtube:unavailable")


def public_videos(
    ids: Sequence[str], *, api_key: SecretStr, root_url: str, timeout: float = 30
) -> dict[str, PublicVideo]:
    """The public videos among ``ids`` (id -> video; private or removed ones absent), 50 ids
    a ``videos.list`` call."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    http = build_http()
    http.timeout = timeout
    service = build_from_document(
        discovery_document(root_url), developerKey=api_key.get_secret_value(), http=http
    )
    found: dict[str, PublicVideo] = {}
    try:
        for batch in batches(wanted, IDS_PER_CALL):
            response = (
                service.videos().list(part="snippet,statistics", id=",".join(batch)).execute()
            )
            for item in response.get("items", []):
                video = _video(item)
                found[video.id] = video
    except HttpError as exc:
        raise _failure(exc) from exc
    finally:
        http.close()
    return found
