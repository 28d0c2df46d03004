"""Realistic best-times data: communities with published Facebook posts and the channel's
snapshots, the engagement drawn from a known truth (Friday evening twice the rest) with a
seeded generator, so a test knows which block really is best."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from marketing.besttimes import AGE, BLOCKS_PER_DAY
from marketing.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    MetricSnapshot,
    Post,
    PostState,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
NOW = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)
FRIDAY_EVENING = 4 * BLOCKS_PER_DAY + 9  # Friday 18:00-20:00
MONDAY_MORNING = 0 * BLOCKS_PER_DAY + 4  # Monday 08:00-10:00
TUESDAY_NOON = 1 * BLOCKS_PER_DAY + 6


class Programme:
    """Communities, one account each, one campaign, and a way to add a published post."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.campaign = Campaign(
            slug="best-times",
            name="ทดสอบเวลาที่ดีที่สุด",
            source_text="name: x",
            source_hash="0" * 64,
            status=CampaignStatus.APPROVED,
        )
        session.add(self.campaign)
        session.flush()
        self.accounts: dict[int, int] = {}
        self.count = 0

    def community(self, slug: str) -> int:
        community = Community(slug=slug, name_th=slug, name_en=slug, province="น่าน")
        self.session.add(community)
        self.session.flush()
        account = ChannelAccount(
            slug=f"{slug}-fb",
            kind=ChannelKind.FACEBOOK,
            external_id=f"page-{slug}",
            display_name=slug,
            community_id=community.id,
        )
        self.session.add(account)
        self.session.flush()
        self.accounts[community.id] = account.id
        return community.id

    def post(
        self,
        community_id: int,
        published: datetime,
        snapshots: list[tuple[timedelta, int, int]],  # (age, views, interactions)
    ) -> int:
        self.count += 1
        post = Post(
            campaign_id=self.campaign.id,
            community_id=community_id,
            channel_account_id=self.accounts[community_id],
            channel=ChannelKind.FACEBOOK,
            idempotency_key=f"k{self.count}",
            occurrence_key=f"o{self.count}",
            scheduled_at=published,
            next_try_at=published,
            content={"message": "โพสต์"},
            content_hash="0" * 64,
            state=PostState.PUBLISHED,
            published_at=published,
            external_id=f"x{self.count}",
        )
        self.session.add(post)
        self.session.flush()
        for age, views, interactions in snapshots:
            at = published + age
            self.session.add(
                MetricSnapshot(
                    post_id=post.id,
                    collected_at=at,
                    day=at.astimezone(BANGKOK).date(),
                    views=views,
                    reactions=interactions,
                    comments=0,
                    shares=0,
                    clicks=0,
                )
            )
        return post.id


LAST_MONDAY = date(2027, 5, 3)  # the Monday of the week the posts are counted back from


def at_block(block: int, weeks_ago: int, *, last_monday: date = LAST_MONDAY) -> datetime:
    """A moment inside ``block`` (Bangkok) ``weeks_ago`` weeks before the week of
    ``last_monday`` (by default some weeks before NOW)."""
    if last_monday.weekday() != 0:
        raise ValueError(f"{last_monday} is not a Monday")
    monday = datetime.combine(last_monday, time(), tzinfo=BANGKOK) - timedelta(weeks=weeks_ago)
    day, slot = divmod(block, BLOCKS_PER_DAY)
    return (monday + timedelta(days=day, hours=slot * 2, minutes=30)).astimezone(UTC)


def truth(block: int) -> float:
    """The true engagement rate: Friday evening twice the rest."""
    return 0.08 if block == FRIDAY_EVENING else 0.04


def seeded_programme(
    session: Session, rng: random.Random, *, last_monday: date = LAST_MONDAY
) -> tuple[Programme, dict[str, int]]:
    """Three communities with 18 posts each over three blocks (Friday evening truly best) and
    a small one with five posts, one of them a lucky Tuesday; posted in the six weeks before
    the week of ``last_monday``."""
    programme = Programme(session)

    def at(block: int, weeks_ago: int) -> datetime:
        return at_block(block, weeks_ago, last_monday=last_monday)

    ids = {slug: programme.community(slug) for slug in ("busy", "small", "other-1", "other-2")}
    blocks = [FRIDAY_EVENING, MONDAY_MORNING, TUESDAY_NOON]
    # Well-posted communities: 18 posts each spread over three blocks, true rates.
    for slug in ("busy", "other-1", "other-2"):
        for n in range(18):
            block = blocks[n % 3]
            views = 1500 + rng.randrange(500)
            # Posts differ beyond chance (one catches on, one does not): a lognormal factor.
            rate = truth(block) * rng.lognormvariate(0, 0.4)
            hits = sum(1 for _ in range(views) if rng.random() < rate)
            programme.post(ids[slug], at(block, 1 + n // 3), [(AGE, views, hits)])
    # A small community: four ordinary posts and one lucky Tuesday (a 30 % rate on 200 views).
    for n in range(4):
        programme.post(ids["small"], at(MONDAY_MORNING, 1 + n), [(AGE, 300, 12)])
    programme.post(ids["small"], at(TUESDAY_NOON, 1), [(AGE, 200, 60)])
    session.commit()
    return programme, ids
