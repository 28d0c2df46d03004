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
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from channels.base import Adapter, ContentProblem


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
        elif tags_length(tags) > cls.tags_max_chars:
            problems.append(
                ContentProblem(
                    "tags",
                    f"take {tags_length(tags)} characters with commas and quotes; "
                    f"YouTube allows {cls.tags_max_chars}",
                )
            )
        video = content.get("video")
        if not video:
            problems.append(ContentProblem("video", "is required"))
        elif not Path(str(video)).is_file():
            problems.append(ContentProblem("video", f"file {video} not found"))
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
