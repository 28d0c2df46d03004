"""LINE is a best-times channel (#17): its broadcasts' figures (unique impressions as reach,
unique clicks as interactions, as channels/line.py reads them per request) teach each
community's best LINE block, apart from its Facebook posts; the schedule draws from them and
the community page's heat map shows them.  LINE is in because its spec declares the
capabilities best times need (publish and metrics), not because its name is listed."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from channels import registry
from channels.base import Capability
from marketing.besttimes import (
    AGE,
    BLOCKS,
    BLOCKS_PER_DAY,
    best_times,
    best_times_channels,
    schedule_snapshot,
)
from marketing.models import ChannelAccount, ChannelKind, MetricSnapshot, Post, PostState, Role
from marketing.web import create_app
from tests.support.besttimes import (
    BANGKOK,
    FRIDAY_EVENING,
    MONDAY_MORNING,
    NOW,
    Programme,
    at_block,
    seeded_programme,
)
from tests.support.web import WebClient, add_user, clock_at
from tests.test_best_times_views import CELL

SATURDAY_MORNING = 5 * BLOCKS_PER_DAY + 4  # Saturday 08:00-10:00: LINE's true best here


def _line_posts(session: Session, programme: Programme, community_id: int) -> None:
    """18 LINE broadcasts of the community over three blocks, Saturday morning truly twice
    as clicked per unique impression; the figures as the LINE adapter stores them."""
    rng = random.Random(11)
    account = ChannelAccount(
        slug=f"line-{community_id}",
        kind=ChannelKind.LINE,
        external_id="@glo-busy",
        display_name="ไลน์ชุมชน",
        community_id=community_id,
    )
    session.add(account)
    session.flush()
    blocks = [SATURDAY_MORNING, MONDAY_MORNING, FRIDAY_EVENING]
    for n in range(18):
        block = blocks[n % 3]
        published = at_block(block, 1 + n // 3)
        impressions = 900 + rng.randrange(300)
        rate = (0.10 if block == SATURDAY_MORNING else 0.05) * rng.lognormvariate(0, 0.3)
        clicks = sum(1 for _ in range(impressions) if rng.random() < rate)
        post = Post(
            campaign_id=programme.campaign.id,
            community_id=community_id,
            channel_account_id=account.id,
            channel=ChannelKind.LINE,
            idempotency_key=f"line-{n}",
            occurrence_key=f"line-o{n}",
            scheduled_at=published,
            next_try_at=published,
            content={"text": "ข่าวจากชุมชน"},
            content_hash="0" * 64,
            state=PostState.PUBLISHED,
            published_at=published,
            external_id=f"request-{n}",
        )
        session.add(post)
        session.flush()
        # An early reading (too young to count) and the one at the compared age.
        for age, share in ((timedelta(hours=3), 0.5), (AGE, 1.0)):
            at = published + age
            session.add(
                MetricSnapshot(
                    post_id=post.id,
                    collected_at=at,
                    day=at.astimezone(BANGKOK).date(),
                    views=int(impressions * share),
                    reactions=0,
                    comments=0,
                    shares=0,
                    clicks=int(clicks * share),
                )
            )
    session.commit()


def _seeded(session: Session) -> dict[str, int]:
    programme, ids = seeded_programme(session, random.Random(7))
    _line_posts(session, programme, ids["busy"])
    return ids


def test_line_is_learnt_because_its_spec_can_publish_and_report_metrics() -> None:
    spec = registry.spec_for("line")
    assert {Capability.PUBLISH, Capability.METRICS} <= spec.capabilities
    assert ChannelKind.LINE in best_times_channels()
    assert ChannelKind.EMAIL not in best_times_channels()  # e-mail is learnt from its clicks


def test_line_broadcasts_teach_their_own_best_block_apart_from_facebook(
    session: Session,
) -> None:
    ids = _seeded(session)
    line = best_times(session=session, channel=ChannelKind.LINE, now=NOW)
    assert set(line) == {ids["busy"]}  # only the community that broadcast on LINE
    rec = line[ids["busy"]].recommendation
    assert rec is not None and rec.block.block == SATURDAY_MORNING
    assert (rec.block.posts, rec.posts) == (6, 18)
    assert line[ids["busy"]].posts == 18
    facebook = best_times(session=session, channel=ChannelKind.FACEBOOK, now=NOW)
    fb_rec = facebook[ids["busy"]].recommendation
    assert fb_rec is not None and fb_rec.block.block == FRIDAY_EVENING  # not mixed
    snapshot = schedule_snapshot(session=session, now=NOW)
    own = snapshot.times_for(ids["busy"], "line")
    assert own.source == "own"
    assert max(range(BLOCKS), key=lambda b: own.blocks[b][0]) == SATURDAY_MORNING
    # A community with no LINE broadcast of its own draws from the programme's LINE pattern.
    assert snapshot.times_for(ids["small"], "line").source == "programme"


def test_the_community_page_shows_the_line_heat_map(session: Session, engine: Engine) -> None:
    _seeded(session)
    assert session.scalar(select(Post.id).where(Post.channel == ChannelKind.LINE)) is not None
    add_user(engine, "reader", Role.VIEWER)
    client = WebClient(create_app(engine=engine, clock=clock_at(NOW))).sign_in("reader")
    try:
        html = client.get("/communities/busy?channel=line").text
        assert '<strong aria-current="true">ไลน์</strong>' in html
        cells = CELL.findall(html)
        assert len(cells) == BLOCKS
        assert [i for i, c in enumerate(cells) if c[1]] == [SATURDAY_MORNING]
        assert cells[SATURDAY_MORNING][2].startswith("เสาร์ 08:00–10:00") and (
            "จาก 6 โพสต์" in cells[SATURDAY_MORNING][2]
        )
        # The Facebook map of the same community still recommends Friday evening, and its
        # channel links offer LINE.
        facebook = client.get("/communities/busy").text
        assert [i for i, c in enumerate(CELL.findall(facebook)) if c[1]] == [FRIDAY_EVENING]
        assert 'href="/communities/busy?channel=line#best-times"' in facebook
    finally:
        client.close()


def test_the_command_offers_every_best_times_channel() -> None:
    from marketing.cli.report import BEST_TIME_CHANNELS

    assert list(BEST_TIME_CHANNELS) == [kind.value for kind in best_times_channels()]
