"""Each community's shop, booking and product pages, and the click-throughs to them.

Staff set a community's destinations on its page (one of each kind: shop, booking, product,
with its address and a Thai label) or in the reference file (``destinations:`` under a
community).  Posts lead there through a signed short link on this service,
``/go/<token>`` (:meth:`channels.tracking.TrackingLinks.go_url`; templates write
``{{ destination('shop') }}``).  The token names the destination, not an address, so the
redirect goes only to the address the destination has now: no open redirect, and changing a
destination's address later moves its old links with it.

A click is counted in :class:`~marketing.models.DestinationClickDay`, one counter per
destination, channel and local day -- never a row per click, so a bot hammering a link
adds nothing but a number.  Link previews (Facebook's and LINE's crawlers, and the other
link-preview and search robots below) are redirected but not counted.

Clicks are a figure of their own in the community report and the yearly programme report
("คลิกไปยังร้าน/จองที่พัก/สินค้า"), beside the imported outcomes and never added into
engagement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketing.models import (
    Community,
    CommunityDestination,
    DestinationClickDay,
    DestinationKind,
)

MAX_URL = 2000
MAX_LABEL = 200

#: User agents of link previews and robots: redirected, never counted.  Facebook's crawler
#: (developers.facebook.com/docs/sharing/webmasters/web-crawlers: ``facebookexternalhit``,
#: ``Facebot``), LINE's URL preview (it sends ``facebookexternalhit/1.1;line-poker/1.0``),
#: and the usual preview and search robots.
PREVIEW_AGENTS = re.compile(
    r"facebookexternalhit|facebot|line-poker|twitterbot|slackbot|whatsapp|telegrambot|"
    r"discordbot|linkedinbot|skypeuripreview|pinterest|googlebot|bingbot|yandex|"
    r"applebot|embedly|bot\b|crawler|spider|preview",
    re.IGNORECASE,
)


class DestinationRefused(ValueError):
    """A destination cannot be saved; ``code`` says why (for the words staff read)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_preview(user_agent: str | None) -> bool:
    """True for a link preview or robot (or no user agent at all): not a person's click."""
    return not user_agent or PREVIEW_AGENTS.search(user_agent) is not None


def checked_url(url: str) -> str:
    """``url`` if it is an absolute http(s) address; DestinationRefused otherwise."""
    url = url.strip()
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > MAX_URL
        or any(ch.isspace() or ord(ch) < 32 for ch in url)
    ):
        raise DestinationRefused(
            "not_a_url", "a destination is an https:// (or http://) address of a web page"
        )
    return url


def set_destination(
    *, session: Session, community: Community, kind: DestinationKind, url: str, label_th: str
) -> CommunityDestination:
    """Set (add or change) the community's destination of ``kind``."""
    url = checked_url(url)
    label = " ".join(label_th.split())[:MAX_LABEL]
    if not label:
        raise DestinationRefused("no_label", "a destination needs a label")
    found = session.scalars(
        select(CommunityDestination).where(
            CommunityDestination.community_id == community.id,
            CommunityDestination.kind == kind,
        )
    ).one_or_none()
    if found is None:
        found = CommunityDestination(community_id=community.id, kind=kind, url=url, label_th=label)
        session.add(found)
    else:
        found.url, found.label_th = url, label
    session.flush()
    return found


def remove_destination(*, session: Session, community: Community, kind: DestinationKind) -> bool:
    """Remove the community's destination of ``kind`` (its links stop working, its counted
    clicks go with it); False if it had none."""
    found = session.scalars(
        select(CommunityDestination).where(
            CommunityDestination.community_id == community.id,
            CommunityDestination.kind == kind,
        )
    ).one_or_none()
    if found is None:
        return False
    session.delete(found)
    session.flush()
    return True


def community_destinations(*, session: Session, community_id: int) -> list[CommunityDestination]:
    """A community's destinations in the order of :class:`DestinationKind`."""
    order = {kind: i for i, kind in enumerate(DestinationKind)}
    found = session.scalars(
        select(CommunityDestination).where(CommunityDestination.community_id == community_id)
    ).all()
    return sorted(found, key=lambda d: order[d.kind])


def record_click(
    *, session: Session, destination: CommunityDestination, channel: str, day: date
) -> None:
    """Add one click to the destination's counter of ``channel`` and ``day`` (the caller
    commits).  Two first clicks at once: the loser of the insert adds to the winner's row."""
    bump = (
        update(DestinationClickDay)
        .where(
            DestinationClickDay.destination_id == destination.id,
            DestinationClickDay.channel == channel,
            DestinationClickDay.day == day,
        )
        .values(clicks=DestinationClickDay.clicks + 1)
    )
    if session.execute(bump).rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.add(
                DestinationClickDay(
                    destination_id=destination.id,
                    community_id=destination.community_id,
                    channel=channel,
                    day=day,
                    clicks=1,
                )
            )
    except IntegrityError:
        session.execute(bump)


@dataclass(frozen=True)
class DestinationClicks:
    """Clicks to one destination over a period, by channel."""

    destination: CommunityDestination
    by_channel: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_channel.values())


def clicks_by_destination(
    *, session: Session, community_id: int, start: date, end: date
) -> list[DestinationClicks]:
    """The community's destinations with their clicks from ``start`` to ``end`` (included)."""
    counts: dict[int, dict[str, int]] = {}
    for destination_id, channel, clicks in session.execute(
        select(
            DestinationClickDay.destination_id,
            DestinationClickDay.channel,
            func.sum(DestinationClickDay.clicks),
        )
        .where(
            DestinationClickDay.community_id == community_id,
            DestinationClickDay.day >= start,
            DestinationClickDay.day <= end,
        )
        .group_by(DestinationClickDay.destination_id, DestinationClickDay.channel)
    ):
        counts.setdefault(destination_id, {})[channel] = int(clicks or 0)
    return [
        DestinationClicks(d, counts.get(d.id, {}))
        for d in community_destinations(session=session, community_id=community_id)
    ]


def clicks_by_community(
    *, session: Session, start: date, end: date, community_ids: Sequence[int] | None = None
) -> dict[int, int]:
    """Community id -> its click-throughs from ``start`` to ``end`` (included); communities
    with no destination or no click are left out."""
    query = (
        select(DestinationClickDay.community_id, func.sum(DestinationClickDay.clicks))
        .where(DestinationClickDay.day >= start, DestinationClickDay.day <= end)
        .group_by(DestinationClickDay.community_id)
    )
    if community_ids is not None:
        query = query.where(DestinationClickDay.community_id.in_(list(community_ids)))
    return {cid: int(total or 0) for cid, total in session.execute(query)}
