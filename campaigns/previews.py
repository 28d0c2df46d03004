"""How a rendered post will look on its channel: the cuts and crops people see first.

Pure functions over a post's rendered content (``PlannedPost.content``), shared by the
composer's pages and the JSON API (``POST /api/v1/campaigns/preview``), so both show the same.

Where Facebook cuts a post behind "See more" is not documented by Meta.  Observed rules, as
published by social-media tool makers (socialk.it's and posthell.com's Facebook character
counters, bulkpublish.com's "Facebook character limit" 2026): the feed shows about the first
477 characters on a desktop and about 125 on a phone before "See more".  We cut there (by
characters as people see them: a Thai vowel or tone mark stays with its consonant), and at
the last space before the cut when there is one within 20 characters.  Link previews take no
characters.  A single photo is shown in the feed cropped to at most 4:5 upright or 1.91:1
wide (Facebook's recommended feed ratios); the preview crops with CSS ``object-fit``.

YouTube titles are at most 100 characters (the Data API refuses longer ones; counted in code
points, as :class:`channels.youtube.YouTubeLimits` checks them): the card shows the title cut
at 100 and says so, and the description's first 157 characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from channels.youtube import YouTubeLimits

FACEBOOK_SEE_MORE = {"desktop": 477, "phone": 125}
"""Characters Facebook shows before "See more" (observed; see the module docstring)."""
YOUTUBE_TITLE_MAX = YouTubeLimits.title_max_chars  # code points, as the channel checks it
YOUTUBE_DESCRIPTION_SHOWN = 157
WORD_BACKTRACK = 20


def _clusters(text: str) -> list[str]:
    """``text`` as characters people see: a base character with its combining marks (Thai
    vowels above and below, tone marks) as one."""
    out: list[str] = []
    for char in text:
        if out and (unicodedata.category(char) in ("Mn", "Me") or char == "\u200d"):
            out[-1] += char
        else:
            out.append(char)
    return out


def visible_length(text: str) -> int:
    """How many characters people see in ``text``."""
    return len(_clusters(text))


def cut(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` seen characters (at a space shortly before, if any), and
    whether anything was cut."""
    clusters = _clusters(text)
    if len(clusters) <= limit:
        return text, False
    head = clusters[:limit]
    for back in range(1, min(WORD_BACKTRACK, len(head)) + 1):
        if head[-back].isspace():
            head = head[: len(head) - back]
            break
    return "".join(head).rstrip(), True


@dataclass(frozen=True)
class FacebookCard:
    page_name: str
    page_picture: str | None
    shown: str  # the text before "See more"
    rest: str  # the text behind it
    see_more: bool
    link: str | None
    link_domain: str | None
    photo: str | None
    video: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def facebook_card(
    content: dict[str, Any], *, page_name: str, page_picture: str | None, width: str
) -> FacebookCard:
    """The Facebook feed card of a post at ``width`` (``desktop`` or ``phone``)."""
    message = str(content.get("message") or "")
    shown, more = cut(message, FACEBOOK_SEE_MORE[width])
    link = content.get("link") or None
    domain = None
    if link:
        domain = (urlsplit(str(link)).hostname or "").upper() or None
    return FacebookCard(
        page_name=page_name,
        page_picture=page_picture,
        shown=shown,
        rest=message[len(shown) :].lstrip() if more else "",
        see_more=more,
        link=str(link) if link else None,
        link_domain=domain,
        photo=content.get("photo") or None,
        video=content.get("video") or None,
    )


@dataclass(frozen=True)
class YouTubeCard:
    channel_name: str
    title: str
    title_cut: bool
    title_length: int
    description: str
    description_cut: bool
    video: str | None
    privacy: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def youtube_card(content: dict[str, Any], *, channel_name: str) -> YouTubeCard:
    """The YouTube card of a post: its title up to 100 characters, the description's start."""
    title = str(content.get("title") or "")
    title_cut = len(title) > YOUTUBE_TITLE_MAX
    shown_title = title[:YOUTUBE_TITLE_MAX]
    description, description_cut = cut(
        str(content.get("description") or ""), YOUTUBE_DESCRIPTION_SHOWN
    )
    return YouTubeCard(
        channel_name=channel_name,
        title=shown_title,
        title_cut=title_cut,
        title_length=len(title),
        description=description,
        description_cut=description_cut,
        video=content.get("video") or None,
        privacy=str(content.get("privacy") or "private"),
    )
