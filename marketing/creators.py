"""Creators' videos about a community: staff add a YouTube video's URL to a community; its
public statistics are read with the project's API key (``MARKETING_YOUTUBE_API_KEY``,
:mod:`channels.youtube_public`, 50 videos a call) and shown beside the community's own
channels -- a source of their own, never added into the owned channels' figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.youtube_public import public_videos, video_id_from_url
from marketing.models import Community, CreatorVideo

MAX_PER_COMMUNITY = 500


class CreatorRefused(ValueError):
    """The URL cannot be added; ``code`` says why (for the words staff read)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did."""

    videos: int  # read
    missing: int  # private or removed now
    calls: int  # videos.list calls (1 quota unit each)


def add_creator_video(
    *, session: Session, community_slug: str, url: str, actor: str, now: datetime
) -> CreatorVideo:
    """Add the video at ``url`` to the community (the same video twice: the row it has)."""
    community = session.scalars(
        select(Community).where(Community.slug == community_slug)
    ).one_or_none()
    if community is None:
        raise CreatorRefused("unknown_community", f"no community {community_slug!r}")
    video_id = video_id_from_url(url)
    if video_id is None:
        raise CreatorRefused(
            "not_a_video",
            "not a YouTube video address (youtube.com/watch?v=..., youtu.be/..., "
            "youtube.com/shorts/...)",
        )
    found = session.scalars(
        select(CreatorVideo).where(
            CreatorVideo.community_id == community.id, CreatorVideo.video_id == video_id
        )
    ).one_or_none()
    if found is not None:
        return found
    count = len(
        session.scalars(
            select(CreatorVideo.id).where(CreatorVideo.community_id == community.id)
        ).all()
    )
    if count >= MAX_PER_COMMUNITY:
        raise CreatorRefused("too_many", f"a community holds at most {MAX_PER_COMMUNITY} videos")
    video = CreatorVideo(
        community_id=community.id,
        video_id=video_id,
        url=url.strip()[:2000],
        missing=False,
        added_by=actor[:200],
        added_at=now,
    )
    session.add(video)
    session.flush()
    return video


def refresh_creator_videos(
    *, session: Session, api_key: SecretStr, root_url: str, now: datetime
) -> Refreshed:
    """Read every creator video's public statistics (50 a call) and store them; a video
    that is private or removed keeps its last figures and is marked missing."""
    videos = list(session.scalars(select(CreatorVideo)))
    ids = sorted({v.video_id for v in videos})
    found = public_videos(ids, api_key=api_key, root_url=root_url)
    missing = 0
    for video in videos:
        public = found.get(video.video_id)
        if public is None:
            video.missing = True
            missing += 1
            continue
        video.missing = False
        video.title = public.title[:300]
        video.channel_title = public.channel_title[:300]
        video.published_at = public.published_at
        video.views, video.likes, video.comments = public.views, public.likes, public.comments
        video.fetched_at = now
    session.flush()
    return Refreshed(videos=len(found), missing=missing, calls=-(-len(ids) // 50))


def community_creators(*, session: Session, community_id: int) -> list[CreatorVideo]:
    """A community's creator videos, most viewed first (unread ones last)."""
    videos = session.scalars(
        select(CreatorVideo).where(CreatorVideo.community_id == community_id)
    ).all()
    return sorted(videos, key=lambda v: (v.views is None, -(v.views or 0), v.added_at))
