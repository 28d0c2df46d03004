"""Best times as people and programs see them: per community the recommendation, the
hour-of-week grid (7 days x 12 two-hour blocks) with each block's rate against the
community's average, and a JSON form.  Shared by ``marketing report best-times``, the
community page and ``GET /api/v1/communities/{slug}/best-times``.

A community with no published post of its own that is old enough to compare gets the
programme's pattern (``from_programme``: every block the programme's overall rate times the
pattern, no recommendation), labelled as such; when no community has such a post either,
``times`` is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.besttime import BLOCK_HOURS, BLOCKS_PER_DAY
from marketing.besttimes import (
    BestTimes,
    BlockEstimate,
    best_times,
    best_times_channels,
    block_label,
    reason,
)
from marketing.models import ChannelKind, Community

# A block's rate over the community's average: below the first bound is level 0, at or
# above the last is level 4 (level 2: within 5 % of the average).
LEVEL_BOUNDS = (0.8, 0.95, 1.05, 1.25)
LEVELS = len(LEVEL_BOUNDS) + 1


def checked_channel(channel: str) -> ChannelKind:
    """``channel`` if best times are learnt for it; ValueError (naming those) otherwise."""
    for kind in best_times_channels():
        if kind.value == channel:
            return kind
    known = ", ".join(kind.value for kind in best_times_channels())
    raise ValueError(f"best times are learnt for {known}, not {channel!r}")


class CommunityNotFound(LookupError):
    """No community has that slug."""


@dataclass(frozen=True)
class CommunityTimes:
    """One community's best times on one channel (``times`` None: no post of its own yet)."""

    slug: str
    name_th: str
    name_en: str
    channel: ChannelKind
    times: BestTimes | None
    from_programme: bool = False  # times is the programme's pattern, not its own


@dataclass(frozen=True)
class Cell:
    """One block of the grid as shown."""

    estimate: BlockEstimate
    relative: float  # rate / the community's average (1.0 = average)
    level: int  # 0 (far below average) .. LEVELS - 1 (far above)
    recommended: bool


def level_of(relative: float) -> int:
    """The colour level of a block whose rate is ``relative`` times the average."""
    return sum(1 for bound in LEVEL_BOUNDS if relative >= bound)


def community_times(
    *, session: Session, channel: ChannelKind, now: datetime, slug: str | None = None
) -> list[CommunityTimes]:
    """Every community's (or the one ``slug`` names) best times on ``channel`` from the posts
    published by ``now``, by province and slug; :class:`CommunityNotFound` for an unknown
    slug."""
    query = select(Community).order_by(Community.province, Community.slug)
    if slug is not None:
        query = query.where(Community.slug == slug)
    communities = session.scalars(query).all()
    if slug is not None and not communities:
        raise CommunityNotFound(f"no community {slug}")
    learnt = best_times(session=session, channel=channel, now=now)
    sample = next(iter(learnt.values()), None)
    out = []
    for c in communities:
        times = learnt.get(c.id)
        from_programme = times is None and sample is not None
        if from_programme and sample is not None:
            times = programme_times(sample, community_id=c.id)
        out.append(
            CommunityTimes(
                slug=c.slug,
                name_th=c.name_th,
                name_en=c.name_en,
                channel=channel,
                times=times,
                from_programme=from_programme,
            )
        )
    return out


def programme_times(sample: BestTimes, *, community_id: int) -> BestTimes:
    """The programme's pattern as one community's picture (no post, no recommendation), from
    any community's :class:`BestTimes` of the channel (they share the pattern)."""
    average = sample.programme_average
    # A block with no post has the prior's spread; the sample's unposted blocks show it.
    sd = next((e.sd for e in sample.blocks if e.posts == 0), max(e.sd for e in sample.blocks))
    blocks = tuple(
        BlockEstimate(block=b, posts=0, interactions=0, views=0, rate=average * factor, sd=sd)
        for b, factor in enumerate(sample.pattern)
    )
    return BestTimes(
        community_id=community_id,
        channel=sample.channel,
        blocks=blocks,
        average=average,
        posts=0,
        prior_posts=sample.prior_posts,
        level_prior_posts=sample.level_prior_posts,
        recommendation=None,
        pattern=sample.pattern,
        programme_average=average,
    )


def sentence(item: CommunityTimes, *, language: str = "th") -> str:
    """The recommendation in one sentence (or why there is none)."""
    if item.times is not None and not item.from_programme:
        return reason(item.times, language=language)
    if language == "th":
        return "ยังไม่มีโพสต์ของชุมชนนี้ให้เรียนรู้ ใช้ช่วงเวลาที่ได้ผลดีของทั้งโครงการไปก่อน"
    return "No posts of its own to learn from yet; the programme's pattern is used meanwhile"


def grid(times: BestTimes) -> list[list[Cell]]:
    """Seven rows (Monday first) of twelve cells (00:00 first)."""
    recommended = times.recommendation.block.block if times.recommendation else None
    rows: list[list[Cell]] = []
    for day in range(7):
        row = []
        for slot in range(BLOCKS_PER_DAY):
            estimate = times.blocks[day * BLOCKS_PER_DAY + slot]
            relative = estimate.rate / times.average if times.average > 0 else 1.0
            row.append(
                Cell(
                    estimate=estimate,
                    relative=relative,
                    level=level_of(relative),
                    recommended=estimate.block == recommended,
                )
            )
        rows.append(row)
    return rows


def start_hours() -> list[int]:
    """The first hour of each column: 0, 2, ..., 22."""
    return [slot * BLOCK_HOURS for slot in range(BLOCKS_PER_DAY)]


def as_json(item: CommunityTimes) -> dict[str, Any]:
    """One community's best times for programs: English keys, rates per view, Thai and
    English sentences."""
    out: dict[str, Any] = {
        "community": item.slug,
        "channel": item.channel.value,
        "source": "programme" if item.from_programme else "community" if item.times else None,
        "reason_th": sentence(item, language="th"),
        "reason_en": sentence(item, language="en"),
        "posts": 0,
        "left_out": 0,
        "average_rate": None,
        "recommendation": None,
        "blocks": [],
    }
    times = item.times
    if times is None:
        return out
    out.update(posts=times.posts, left_out=times.left_out, average_rate=times.average)
    rec = times.recommendation
    if rec is not None:
        out["recommendation"] = {
            "block": rec.block.block,
            "weekday": rec.block.weekday,
            "start_hour": rec.block.start_hour,
            "label_th": block_label(rec.block.block, language="th"),
            "label_en": block_label(rec.block.block, language="en"),
            "lift": rec.lift,
            "probability": rec.probability,
            "confidence": rec.confidence,
            "posts": rec.posts,
        }
    out["blocks"] = [
        {
            "block": cell.estimate.block,
            "weekday": cell.estimate.weekday,
            "start_hour": cell.estimate.start_hour,
            "rate": cell.estimate.rate,
            "sd": cell.estimate.sd,
            "relative": cell.relative,
            "posts": cell.estimate.posts,
            "interactions": cell.estimate.interactions,
            "views": cell.estimate.views,
        }
        for row in grid(times)
        for cell in row
    ]
    return out
