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
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from channels.base import Adapter, ContentProblem


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
    photo_suffixes: ClassVar[frozenset[str]] = frozenset(
        {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tiff"}
    )

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
            elif key == "photo" and path.suffix.lower() not in cls.photo_suffixes:
                problems.append(ContentProblem(key, f"{path.suffix} is not an image type"))
        title = content.get("video_title")
        if title is not None and len(str(title)) > cls.video_title_max_chars:
            problems.append(
                ContentProblem("video_title", f"is longer than {cls.video_title_max_chars}")
            )
        return problems
