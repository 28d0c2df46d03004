"""The reference data a plan reads, as plain values.

The planner (:mod:`campaigns.planning`) asks a :class:`Reference` for the communities,
channel accounts, highlights, subscribers' tags, the campaign's earlier posts and the times
other campaigns hold on its accounts (for best-time schedules) it needs, and gets these
frozen values back: it imports no database model.
:class:`marketing.plan_reference.DatabaseReference` reads them from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

#: Post states (``marketing.models.PostState`` values) that re-planning may change or cancel;
#: every other state is left alone.
EDITABLE_STATES: tuple[str, ...] = ("scheduled", "queued")
CANCELLED_STATE = "cancelled"
#: Post states that no longer hold a time on their account.
RELEASED_STATES: tuple[str, ...] = ("cancelled", "failed")


@dataclass(frozen=True)
class DestinationRef:
    """A community's shop, booking or product page (``marketing.models.CommunityDestination``)."""

    id: int
    kind: str  # shop, booking or product
    url: str


@dataclass(frozen=True)
class CommunityRef:
    id: int
    slug: str
    name_th: str
    name_en: str
    province: str
    description: str
    tags: tuple[str, ...]
    website: str | None
    timezone: str
    destinations: tuple[DestinationRef, ...] = ()


@dataclass(frozen=True)
class AccountRef:
    id: int
    slug: str
    kind: str  # a channel kind (channels.registry)
    external_id: str
    display_name: str
    community_id: int | None


@dataclass(frozen=True)
class HighlightRef:
    id: int
    community_id: int
    key: str
    title: str
    body: str
    media: tuple[str, ...]
    tags: tuple[str, ...]
    link: str | None
    people_consent: bool
    last_posted_at: datetime | None


@dataclass(frozen=True)
class ExistingPost:
    """A post the campaign already has."""

    key: str  # idempotency key
    community_id: int
    occurrence_key: str
    highlight_id: int | None
    state: str  # a PostState value
    scheduled_at: datetime


class Reference(Protocol):
    """Where a plan's reference data comes from."""

    def communities(self, slugs: Sequence[str] | None = None) -> list[CommunityRef]:
        """The communities of ``slugs`` (unknown ones left out), or every community by slug."""
        ...

    def community_slugs(self) -> list[str]:
        """Every community's slug (for "did you mean")."""
        ...

    def accounts(self) -> list[AccountRef]:
        """Every channel account."""
        ...

    def subscriber_tags(self, community_ids: Sequence[int]) -> Iterable[tuple[int, Sequence[str]]]:
        """(community id, tags) of each subscriber of those communities who has not
        unsubscribed."""
        ...

    def highlights(self, community_ids: Sequence[int]) -> list[HighlightRef]:
        """Those communities' highlights, by community, then position, then id."""
        ...

    def existing_posts(self, campaign_slug: str) -> list[ExistingPost]:
        """The posts campaign ``campaign_slug`` has already."""
        ...

    def library_file_without_consent(self, path: str) -> str | None:
        """The name of the media library file at ``path`` (relative to the media root) if
        people can be recognised in it and no consent of theirs is recorded, else None."""
        ...

    def destination_link(
        self, *, community_id: int, destination_id: int, channel: str, campaign: str
    ) -> str:
        """The signed short link on this service that counts a click and leads to the
        destination (``/go/<token>``, :meth:`channels.tracking.TrackingLinks.go_url`)."""
        ...

    def times_taken(
        self, campaign_slug: str, account_ids: Sequence[int], start: datetime, end: datetime
    ) -> list[tuple[int, datetime]]:
        """(account id, scheduled time) of every post of campaigns other than
        ``campaign_slug`` on ``account_ids`` between ``start`` and ``end`` (both included)
        that still holds its time (not in :data:`RELEASED_STATES`)."""
        ...
