"""When to post for each community: engagement by hour of the week, learnt from its own posts
and shrunk toward the programme's pattern.

The model (empirical Bayes over posts)
    A post's *rate* is its interactions over its reach as :mod:`marketing.engagement`
    defines them (Facebook, YouTube: reactions + comments + shares + clicks over views) at
    one age, :data:`AGE` after it was published -- the channel's snapshot taken last before
    that age -- so a post out for a week is not compared with one out for a day.  Posts
    younger than :data:`MIN_AGE` have no comparable figure yet and are left out.
    The unit of evidence is the post, not the view: posts differ far more than their view
    counts suggest (one goes viral), so 200 views on one lucky post are one post's worth.

    Within one channel, a community's rate in hour block *b* (two hours of one weekday, in the
    community's zone) is shrunk toward ``level x pattern_b``: the community's own average
    (itself shrunk toward the programme's) times the programme's pattern for that block (how
    much better or worse than their own average all communities do there, shrunk toward "no
    effect").  Each shrinkage is ``(sum of the k posts' rates + prior x mean) / (k + prior)``,
    where *prior* -- how many posts the prior counts for -- is the spread of single posts
    over the spread of true group means, both estimated from the data (method of moments,
    with a median so one outlier cannot inflate the spread between groups), between
    :data:`MIN_PRIOR_POSTS` and :data:`MAX_PRIOR_POSTS`.

    A community with five posts and one lucky Friday is therefore not whipsawed: the lucky
    block moves only part of the way from the pattern, and the recommendation says how sure
    it is (:attr:`Recommendation.probability`, the posterior chance that the block beats the
    community's own average, by a normal approximation).

Exploring, not only exploiting: :func:`thompson_block` draws one rate from each block's
posterior and returns the best draw (Thompson sampling), so a schedule that asks for a "best
time" keeps trying blocks it is unsure of and the model keeps learning.

Everything here reads the database and returns plain values; the web app, the CLI and the
reports render them (Thai first).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.besttime import (
    BLOCK_HOURS,
    BLOCKS,
    BLOCKS_PER_DAY,
    BestTimeSnapshot,
    ChannelTimes,
    block_of,
    draw_order,
)
from channels.base import Capability
from marketing import engagement
from marketing.models import (
    ChannelKind,
    Community,
    Delivery,
    DeliveryState,
    EmailEvent,
    EmailEventKind,
    MetricSnapshot,
    Post,
    PostState,
    channels_that,
)
from marketing.thai import WEEKDAYS

AGE = timedelta(hours=48)  # the age at which posts are compared
MIN_AGE = timedelta(hours=24)  # younger than this at their last snapshot: left out
MIN_POSTS = 3  # fewer posts in a channel: the community gets the programme's pattern
# The prior counts for between these many posts (see _prior_posts).
MIN_PRIOR_POSTS = 2.0
MAX_PRIOR_POSTS = 10.0
# E-mails older than this are not learnt from: their individual clicks may have been purged
# (MARKETING_TRACKING_RETENTION_DAYS, 400 by default).
EMAIL_HORIZON = timedelta(days=365)


def best_times_channels() -> list[ChannelKind]:
    """The channels best times are learnt for: those that publish and report engagement
    per publication (declared by their specs)."""
    measured = channels_that(Capability.METRICS)
    return [kind for kind in channels_that(Capability.PUBLISH) if kind in measured]


@dataclass(frozen=True)
class PostFigure:
    """One post's interactions over its views at :data:`AGE` (or the nearest age before)."""

    post_id: int
    community_id: int
    channel: ChannelKind
    block: int
    interactions: int
    views: int


@dataclass(frozen=True)
class BlockEstimate:
    """A community's engagement rate in one hour block, after shrinkage."""

    block: int
    posts: int
    interactions: int
    views: int
    rate: float  # posterior mean, interactions per view
    sd: float  # posterior standard deviation

    @property
    def weekday(self) -> int:
        """0 = Monday."""
        return self.block // BLOCKS_PER_DAY

    @property
    def start_hour(self) -> int:
        return (self.block % BLOCKS_PER_DAY) * BLOCK_HOURS


@dataclass(frozen=True)
class Recommendation:
    """The block to post in, how much better it is than the community's average, and how
    sure the model is."""

    block: BlockEstimate
    lift: float  # 0.32 = 32 % above the community's average rate
    probability: float  # posterior chance the block beats the community's average
    posts: int  # the community's posts in this channel that the model learnt from

    @property
    def confidence(self) -> str:
        """``high``, ``medium`` or ``low``."""
        if self.probability >= 0.9 and self.posts >= 10:
            return "high"
        if self.probability >= 0.7:
            return "medium"
        return "low"


@dataclass(frozen=True)
class BestTimes:
    """One community's hour-of-week picture for one channel."""

    community_id: int
    channel: ChannelKind
    blocks: tuple[BlockEstimate, ...]  # every block of the week, in order
    average: float  # the community's own overall rate, shrunk toward the programme's
    posts: int
    prior_posts: float  # how many posts a block's prior counts for
    level_prior_posts: float  # the same for the community's level against the programme's
    recommendation: Recommendation | None  # None: too few posts to say anything of its own
    left_out: int = 0  # posts too young to compare
    # The programme's pattern on this channel (each block's rate over a community's own
    # average, the same for every community) and its overall rate: what a community with no
    # post of its own gets.
    pattern: tuple[float, ...] = ()
    programme_average: float = 0.0


def post_figures(
    *, session: Session, channel: ChannelKind, now: datetime
) -> tuple[list[PostFigure], dict[int, int]]:
    """Every published post of ``channel`` with its figure at :data:`AGE`, and per community
    how many posts were left out as too young (their last snapshot before :data:`MIN_AGE`)."""
    posts = session.execute(
        select(Post.id, Post.community_id, Post.published_at, Community.timezone)
        .join(Community, Community.id == Post.community_id)
        .where(
            Post.channel == channel,
            Post.state == PostState.PUBLISHED,
            Post.published_at.is_not(None),
            Post.published_at <= now,
        )
    ).all()
    info = {p.id: p for p in posts}
    best: dict[int, tuple[datetime, int, int]] = {}  # post -> (collected_at, inter., views)
    for snap in session.execute(
        select(
            MetricSnapshot.post_id,
            MetricSnapshot.collected_at,
            *(getattr(MetricSnapshot, name) for name in engagement.SNAPSHOT_METRICS),
        ).where(MetricSnapshot.post_id.in_(info), MetricSnapshot.collected_at <= now)
    ):
        post = info[snap.post_id]
        if snap.collected_at > post.published_at + AGE:
            continue  # older than the age compared at
        kept = best.get(snap.post_id)
        if kept is None or snap.collected_at > kept[0]:
            best[snap.post_id] = (
                snap.collected_at,
                engagement.interactions(channel, snap),
                engagement.reach(channel, snap),
            )
    figures: list[PostFigure] = []
    left_out: dict[int, int] = defaultdict(int)
    for post_id, post in info.items():
        kept = best.get(post_id)
        if kept is None or kept[0] - post.published_at < MIN_AGE:
            left_out[post.community_id] += 1
            continue
        figures.append(
            PostFigure(
                post_id=post_id,
                community_id=post.community_id,
                channel=channel,
                block=block_of(post.published_at, post.timezone),
                interactions=kept[1],
                views=kept[2],
            )
        )
    return figures, left_out


def email_figures(*, session: Session, now: datetime) -> list[PostFigure]:
    """Every e-mail post sent at least :data:`MIN_AGE` and at most :data:`EMAIL_HORIZON`
    before ``now``: its clicks (subscribers who clicked within :data:`AGE` of sending) over
    its e-mails sent, in the block it was sent in -- the e-mail engagement rate."""
    posts = session.execute(
        select(Post.id, Post.community_id, Post.published_at, Community.timezone)
        .join(Community, Community.id == Post.community_id)
        .where(
            Post.channel == ChannelKind.EMAIL,
            Post.state == PostState.PUBLISHED,
            Post.published_at.is_not(None),
            Post.published_at <= now - MIN_AGE,
            Post.published_at >= now - EMAIL_HORIZON,
        )
    ).all()
    if not posts:
        return []
    ids = [p.id for p in posts]
    sent: dict[int, int] = defaultdict(int)
    for post_id, n in session.execute(
        select(Delivery.post_id, func.count())
        .where(Delivery.post_id.in_(ids), Delivery.state == DeliveryState.SENT)
        .group_by(Delivery.post_id)
    ):
        sent[post_id] = n
    clickers: dict[int, set[int]] = defaultdict(set)
    published = {p.id: p.published_at for p in posts}
    for post_id, subscriber_id, at in session.execute(
        select(EmailEvent.post_id, EmailEvent.subscriber_id, EmailEvent.occurred_at).where(
            EmailEvent.post_id.in_(ids), EmailEvent.kind == EmailEventKind.CLICK
        )
    ):
        if at <= published[post_id] + AGE:
            clickers[post_id].add(subscriber_id)
    return [
        PostFigure(
            post_id=p.id,
            community_id=p.community_id,
            channel=ChannelKind.EMAIL,
            block=block_of(p.published_at, p.timezone),
            interactions=len(clickers[p.id]),
            views=sent[p.id],
        )
        for p in posts
        if sent[p.id] > 0
    ]


def _prior_posts(deviations: Sequence[tuple[float, int]], within: float) -> float:
    """How many posts the prior counts for: ``within / between``, where ``between`` is the
    spread of the true means around their prior means, estimated from ``deviations`` (a
    group's mean minus its prior mean, and its number of posts) by the method of moments --
    with the median, so one lucky post cannot persuade the model that groups really differ
    that much -- and never below :data:`MIN_PRIOR_POSTS`."""
    excess = sorted(d * d - within / k for d, k in deviations)
    if not excess or within <= 0:
        return MIN_PRIOR_POSTS
    between = excess[len(excess) // 2]
    if between <= 0:
        return MAX_PRIOR_POSTS
    return min(MAX_PRIOR_POSTS, max(MIN_PRIOR_POSTS, within / between))


def _shrunk(total: float, k: int, mean: float, prior: float) -> float:
    """The posterior mean of a group of ``k`` posts whose rates add up to ``total``."""
    return (total + prior * mean) / (k + prior)


def estimate(
    figures: Iterable[PostFigure], *, left_out: dict[int, int] | None = None
) -> dict[int, BestTimes]:
    """Every community's :class:`BestTimes` for the channel of ``figures`` (one channel)."""
    figures = [f for f in figures if f.views > 0]
    if not figures:
        return {}
    channel = figures[0].channel
    rates: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in figures:
        rates[f.community_id][f.block].append(f.interactions / f.views)
    every = [r for f in figures for r in (f.interactions / f.views,)]
    overall = sum(every) / len(every)

    # The spread of one post's rate around its community-and-block mean (pooled).
    cells = [r for by_block in rates.values() for r in by_block.values()]
    dof = len(every) - len(cells)
    if dof > 0:
        within = sum(sum((r - sum(c) / len(c)) ** 2 for r in c) for c in cells) / dof
    else:
        within = sum((r - overall) ** 2 for r in every) / max(1, len(every) - 1)

    # Community levels, shrunk toward the programme.
    totals = {
        c: (sum(sum(v) for v in b.values()), sum(len(v) for v in b.values()))
        for c, b in rates.items()
    }
    level_prior = _prior_posts([(t / k - overall, k) for t, k in totals.values()], within)
    level = {c: _shrunk(t, k, overall, level_prior) for c, (t, k) in totals.items()}

    # The programme's pattern: each block's rate over the community's level, pooled over
    # communities and shrunk toward 1 (no effect).
    ratio_total: dict[int, float] = defaultdict(float)
    ratio_posts: dict[int, int] = defaultdict(int)
    for c, by_block in rates.items():
        for b, values in by_block.items():
            ratio_total[b] += sum(values) / level[c]
            ratio_posts[b] += len(values)
    pattern_within = within / overall**2 if overall > 0 else 0.0
    pattern_prior = _prior_posts(
        [(ratio_total[b] / ratio_posts[b] - 1, ratio_posts[b]) for b in ratio_total],
        pattern_within,
    )
    pattern = [_shrunk(ratio_total[b], ratio_posts[b], 1.0, pattern_prior) for b in range(BLOCKS)]

    # Each community's blocks, shrunk toward level x pattern.
    block_prior = _prior_posts(
        [
            (sum(v) / len(v) - level[c] * pattern[b], len(v))
            for c, by_block in rates.items()
            for b, v in by_block.items()
        ],
        within,
    )
    counts: dict[int, dict[int, tuple[int, int, int]]] = defaultdict(dict)
    for f in figures:
        posts, x, n = counts[f.community_id].get(f.block, (0, 0, 0))
        counts[f.community_id][f.block] = (posts + 1, x + f.interactions, n + f.views)
    left_out = left_out or {}
    result: dict[int, BestTimes] = {}
    for community_id, by_block in rates.items():
        posts = sum(len(v) for v in by_block.values())
        own = level[community_id]
        blocks = []
        for b in range(BLOCKS):
            values = by_block.get(b, [])
            k = len(values)
            _, x, n = counts[community_id].get(b, (0, 0, 0))
            blocks.append(
                BlockEstimate(
                    block=b,
                    posts=k,
                    interactions=x,
                    views=n,
                    rate=_shrunk(sum(values), k, own * pattern[b], block_prior),
                    sd=math.sqrt(within / (k + block_prior)),
                )
            )
        recommendation = None
        if posts >= MIN_POSTS:
            # Only blocks the community has posted in: a block it never tried is the
            # pattern's guess, which Thompson sampling explores instead.
            top = max((e for e in blocks if e.posts > 0), key=lambda e: e.rate)
            z = (top.rate - own) / top.sd if top.sd > 0 else 0.0
            recommendation = Recommendation(
                block=top,
                lift=top.rate / own - 1 if own > 0 else 0.0,
                probability=0.5 * (1 + math.erf(z / math.sqrt(2))),
                posts=posts,
            )
        result[community_id] = BestTimes(
            community_id=community_id,
            channel=channel,
            blocks=tuple(blocks),
            average=own,
            posts=posts,
            prior_posts=block_prior,
            level_prior_posts=level_prior,
            recommendation=recommendation,
            left_out=left_out.get(community_id, 0),
            pattern=tuple(pattern),
            programme_average=overall,
        )
    return result


def best_times(*, session: Session, channel: ChannelKind, now: datetime) -> dict[int, BestTimes]:
    """Every community's hour-of-week picture for ``channel`` from the posts published by
    ``now`` (community id -> :class:`BestTimes`)."""
    figures, left_out = post_figures(session=session, channel=channel, now=now)
    return estimate(figures, left_out=left_out)


def thompson_block(
    times: BestTimes, *, rng: random.Random, allowed: Sequence[int] | None = None
) -> int:
    """A block to post in next: one draw from each allowed block's posterior, the best draw
    wins (Thompson sampling) -- mostly the best block, sometimes one the model is unsure of."""
    blocks = [(e.rate, e.sd) for e in times.blocks]
    order = draw_order(blocks, allowed if allowed is not None else range(BLOCKS), rng)
    if not order:
        raise ValueError("no block allowed")
    return order[0]


def schedule_snapshot(*, session: Session, now: datetime) -> BestTimeSnapshot:
    """What a best-time campaign schedule draws from (see :mod:`campaigns.besttime`): every
    community's posterior per block on each social channel from the posts published by
    ``now``, and on e-mail from its letters' clicks (:func:`email_figures`), and the
    programme's pattern for communities with no post of their own."""
    communities: dict[tuple[int, str], ChannelTimes] = {}
    programme: dict[str, ChannelTimes] = {}
    for channel in (*best_times_channels(), ChannelKind.EMAIL):
        if channel == ChannelKind.EMAIL:
            learnt = estimate(email_figures(session=session, now=now))
        else:
            learnt = best_times(session=session, channel=channel, now=now)
        for community_id, times in learnt.items():
            communities[(community_id, channel.value)] = ChannelTimes(
                tuple((e.rate, e.sd) for e in times.blocks), source="own"
            )
        sample = next(iter(learnt.values()), None)
        if sample is not None:
            sd = next((e.sd for e in sample.blocks if e.posts == 0), None)
            if sd is None:
                sd = max(e.sd for e in sample.blocks)
            programme[channel.value] = ChannelTimes(
                tuple((sample.programme_average * f, sd) for f in sample.pattern),
                source="programme",
            )
    return BestTimeSnapshot(communities=communities, programme=programme)


def block_label(block: int, *, language: str = "th") -> str:
    """``ศุกร์ 18:00–20:00`` (Thai) or ``Friday 18:00–20:00``."""
    day = block // BLOCKS_PER_DAY
    start = (block % BLOCKS_PER_DAY) * BLOCK_HOURS
    names = (
        WEEKDAYS
        if language == "th"
        else ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    )
    return f"{names[day]} {start:02d}:00–{(start + BLOCK_HOURS) % 24:02d}:00"


CONFIDENCE_TH = {"high": "มั่นใจสูง", "medium": "มั่นใจปานกลาง", "low": "ยังไม่แน่ชัด"}


def reason(times: BestTimes, *, language: str = "th") -> str:
    """The recommendation in one sentence, with what it rests on."""
    rec = times.recommendation
    if rec is None:
        if language == "th":
            return f"ยังมีโพสต์น้อยเกินไป ({times.posts} โพสต์) ใช้ช่วงเวลาที่ได้ผลดีของทั้งโครงการไปก่อน"
        return f"Too few posts yet ({times.posts}); the programme's pattern is used meanwhile"
    percent = round(rec.lift * 100)
    label = block_label(rec.block.block, language=language)
    if language == "th":
        direction = "สูงกว่า" if percent >= 0 else "ต่ำกว่า"
        return (
            f"{label} ได้อัตราการมีส่วนร่วม{direction}ค่าเฉลี่ยของชุมชน {abs(percent)} % "
            f"จาก {rec.posts} โพสต์ ({CONFIDENCE_TH[rec.confidence]})"
        )
    direction = "above" if percent >= 0 else "below"
    return (
        f"{label}: engagement rate {abs(percent)} % {direction} the community's average, "
        f"from {rec.posts} posts ({rec.confidence} confidence)"
    )
