"""The database as the planner's :class:`campaigns.reference.Reference`: each question one
query, each answer plain values (the planner imports no model)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.besttime import BestTimeSnapshot, BestTimeSource
from campaigns.loader import CampaignDefinition
from campaigns.planning import Plan, plan_campaign
from campaigns.reference import (
    RELEASED_STATES,
    AccountRef,
    CommunityRef,
    DestinationRef,
    ExistingPost,
    HighlightRef,
)
from channels.tracking import TrackingLinks
from marketing.models import (
    Campaign,
    ChannelAccount,
    Community,
    CommunityDestination,
    Consent,
    Highlight,
    MediaItem,
    PeopleShown,
    Post,
    PostState,
    Subscriber,
)
from marketing.settings import get_settings


class DatabaseReference:
    """The reference data of ``session``'s database."""

    def __init__(self, session: Session, links: TrackingLinks | None = None) -> None:
        self.session = session
        self._links = links

    def destination_link(
        self, *, community_id: int, destination_id: int, channel: str, campaign: str
    ) -> str:
        if self._links is None:
            settings = get_settings()
            self._links = TrackingLinks(settings.public_base_url, settings.tracking_secret)
        return self._links.go_url(
            community_id=community_id,
            destination_id=destination_id,
            channel=channel,
            campaign=campaign,
        )

    def communities(self, slugs: Sequence[str] | None = None) -> list[CommunityRef]:
        query = select(Community).order_by(Community.slug)
        if slugs is not None:
            query = query.where(Community.slug.in_(slugs))
        found = list(self.session.scalars(query))
        destinations: dict[int, list[DestinationRef]] = {}
        for d in self.session.scalars(
            select(CommunityDestination)
            .where(CommunityDestination.community_id.in_([c.id for c in found]))
            .order_by(CommunityDestination.id)
        ):
            destinations.setdefault(d.community_id, []).append(
                DestinationRef(id=d.id, kind=d.kind.value, url=d.url)
            )
        return [
            CommunityRef(
                id=c.id,
                slug=c.slug,
                name_th=c.name_th,
                name_en=c.name_en,
                province=c.province,
                description=c.description,
                tags=tuple(c.tags or ()),
                website=c.website,
                timezone=c.timezone,
                destinations=tuple(destinations.get(c.id, ())),
            )
            for c in found
        ]

    def community_slugs(self) -> list[str]:
        return list(self.session.scalars(select(Community.slug)))

    def accounts(self) -> list[AccountRef]:
        return [
            AccountRef(
                id=a.id,
                slug=a.slug,
                kind=a.kind.value,
                external_id=a.external_id,
                display_name=a.display_name,
                community_id=a.community_id,
            )
            for a in self.session.scalars(select(ChannelAccount))
        ]

    def subscriber_tags(self, community_ids: Sequence[int]) -> Iterable[tuple[int, Sequence[str]]]:
        rows = self.session.execute(
            select(Subscriber.community_id, Subscriber.tags).where(
                Subscriber.community_id.in_(list(community_ids)),
                Subscriber.unsubscribed_at.is_(None),
            )
        )
        return ((community_id, tags or ()) for community_id, tags in rows)

    def highlights(self, community_ids: Sequence[int]) -> list[HighlightRef]:
        return [
            HighlightRef(
                id=h.id,
                community_id=h.community_id,
                key=h.key,
                title=h.title,
                body=h.body,
                media=tuple(h.media or ()),
                tags=tuple(h.tags or ()),
                link=h.link,
                people_consent=h.people_consent,
                last_posted_at=h.last_posted_at,
            )
            for h in self.session.scalars(
                select(Highlight)
                .where(Highlight.community_id.in_(list(community_ids)))
                .order_by(Highlight.community_id, Highlight.position, Highlight.id)
            )
        ]

    def library_file_without_consent(self, path: str) -> str | None:
        return self.session.scalars(
            select(MediaItem.name).where(
                MediaItem.path == path,
                MediaItem.people == PeopleShown.YES,
                MediaItem.consent == Consent.MISSING,
            )
        ).first()

    def existing_posts(self, campaign_slug: str) -> list[ExistingPost]:
        rows = self.session.execute(
            select(
                Post.idempotency_key,
                Post.community_id,
                Post.occurrence_key,
                Post.highlight_id,
                Post.state,
                Post.scheduled_at,
            )
            .join(Campaign, Campaign.id == Post.campaign_id)
            .where(Campaign.slug == campaign_slug)
        )
        return [
            ExistingPost(key, community_id, occurrence, highlight, state.value, scheduled_at)
            for key, community_id, occurrence, highlight, state, scheduled_at in rows
        ]

    def times_taken(
        self, campaign_slug: str, account_ids: Sequence[int], start: datetime, end: datetime
    ) -> list[tuple[int, datetime]]:
        if not account_ids:
            return []
        rows = self.session.execute(
            select(Post.channel_account_id, Post.scheduled_at)
            .join(Campaign, Campaign.id == Post.campaign_id)
            .where(
                Campaign.slug != campaign_slug,
                Post.channel_account_id.in_(list(account_ids)),
                Post.state.not_in([PostState(state) for state in RELEASED_STATES]),
                Post.scheduled_at >= start,
                Post.scheduled_at <= end,
            )
        )
        return [(account_id, moment) for account_id, moment in rows]


def plan_from_database(
    *,
    session: Session,
    definition: CampaignDefinition,
    now: datetime | None = None,
    best_times: BestTimeSnapshot | BestTimeSource | None = None,
    seed: int = 0,
) -> Plan:
    """The plan of ``definition`` against ``session``'s database (see
    :func:`campaigns.planning.plan_campaign`; a best-time schedule draws from ``best_times``
    with generators seeded from ``seed``)."""
    return plan_campaign(
        reference=DatabaseReference(session),
        definition=definition,
        now=now or datetime.now(UTC),
        best_times=best_times,
        seed=seed,
    )
