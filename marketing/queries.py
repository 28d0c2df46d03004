"""Reads the API, the web pages and the command line share: a campaign by its slug, posts by
a filter.  One query each, so the three show the same posts in the same order.

Writes stay where their rules are (``campaigns.lifecycle``, ``marketing.publishing``); these
functions only read, and leave "not found" to the caller (a 404, a page, a CLI message).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from marketing.models import Campaign, ChannelAccount, ChannelKind, Community, Post, PostState


def campaign_by_slug(*, session: Session, slug: str) -> Campaign | None:
    """The campaign called ``slug``, or None."""
    return session.scalars(select(Campaign).where(Campaign.slug == slug)).one_or_none()


@dataclass(frozen=True)
class PostFilter:
    """Which posts: each field narrows (None: any)."""

    campaign: str | None = None  # campaign slug
    community: str | None = None  # community slug
    state: PostState | None = None
    channel: ChannelKind | None = None
    since: datetime | None = None  # scheduled at or after
    before: datetime | None = None  # scheduled before
    # Also by names (the posts page): ``campaign`` matches words of the campaign's name,
    # ``community_ids`` are the communities whose names or province matched (see
    # :func:`marketing.search.community_ids_matching`), beside their slugs.
    campaign_name: bool = False
    community_ids: tuple[int, ...] = ()

    def conditions(self) -> list[ColumnElement[bool]]:
        """The filter as SQL conditions over Post joined with its Campaign and Community."""
        found: list[ColumnElement[bool]] = []
        if self.campaign and self.campaign_name:
            named = self.campaign.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            found.append(
                or_(
                    Campaign.slug == self.campaign,
                    Campaign.name.ilike(f"%{named}%", escape="\\"),
                )
            )
        elif self.campaign:
            found.append(Campaign.slug == self.campaign)
        if self.community and self.community_ids:
            found.append(
                or_(Community.slug == self.community, Community.id.in_(self.community_ids))
            )
        elif self.community:
            found.append(Community.slug == self.community)
        if self.state:
            found.append(Post.state == self.state)
        if self.channel:
            found.append(Post.channel == self.channel)
        if self.since is not None:
            found.append(Post.scheduled_at >= self.since)
        if self.before is not None:
            found.append(Post.scheduled_at < self.before)
        return found


@dataclass(frozen=True)
class PostRow:
    """A post with the names a list shows beside it."""

    post: Post
    campaign_slug: str
    campaign_name: str
    community_slug: str
    community_name_th: str
    account_slug: str


def _post_rows() -> Select[Post, str, str, str, str, str]:
    return (
        select(
            Post,
            Campaign.slug,
            Campaign.name,
            Community.slug,
            Community.name_th,
            ChannelAccount.slug,
        )
        .join(Campaign, Campaign.id == Post.campaign_id)
        .join(Community, Community.id == Post.community_id)
        .join(ChannelAccount, ChannelAccount.id == Post.channel_account_id)
    )


def find_posts(
    *, session: Session, where: PostFilter | None = None, limit: int | None, offset: int = 0
) -> list[PostRow]:
    """Posts matching ``where`` in time order (then by id), ``limit`` of them (None: all)
    from ``offset``."""
    query = (
        _post_rows()
        .where(*(where or PostFilter()).conditions())
        .order_by(Post.scheduled_at, Post.id)
        .offset(offset)
        .limit(limit)
    )
    return [PostRow(*row) for row in session.execute(query)]


def find_post(*, session: Session, post_id: int) -> PostRow | None:
    """Post ``post_id`` with its names, or None."""
    row = session.execute(_post_rows().where(Post.id == post_id)).first()
    return PostRow(*row) if row is not None else None
