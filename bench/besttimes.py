"""Best times on a simulated world: does the learner find each community's good hours?

Ten communities, each with a true engagement rate per two-hour block of the week: its own
level, times a programme-wide pattern (evenings x1.3, Friday to Sunday x1.1, early afternoon
x0.85), times x1.8 in two or three blocks that are its own best hours (Thursday to Sunday
evenings, where the pattern points; or anywhere, in the harder world), times a little noise.
Each posts five times a week (three in the sparse world) in the allowed hours (blocks
starting 08:00-18:00, as quiet hours leave), in distinct blocks.  A post's interactions are
drawn from its views (1,000-2,000) and its block's true rate times a post-to-post factor
(lognormal, sd 0.25; 0.4 in the sparse world: one post catches on, another does not).

Three ways to choose the slots, compared by the true rates of the blocks they choose: the
learner -- :func:`marketing.besttimes.estimate` on every post so far (empirical Bayes, shrunk
toward the programme's pattern), then :func:`campaigns.besttime.draw_order` (Thompson
sampling, as a ``best_time`` schedule does), the first distinct blocks; the oracle -- each
community's truly best allowed blocks; and fixed slots -- 10:00 on weekdays, one a post (a
scheduler's default times).  Figures: the learner's share of the oracle in week 9 (after
eight weeks of learning) and over weeks 1-8 (what exploring costs while it learns), beside
fixed slots' share on the same worlds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import ClassVar

from bench.base import Benchmark
from bench.results import Figure, Target
from campaigns.besttime import BLOCKS, BLOCKS_PER_DAY, UNIFORM, draw_order
from marketing.besttimes import PostFigure, estimate
from marketing.models import ChannelKind

COMMUNITIES = 10
WEEKS = 8
ALLOWED = [d * BLOCKS_PER_DAY + h // 2 for d in range(7) for h in range(8, 20, 2)]
BEST_BOOST = 1.8


@dataclass(frozen=True)
class Setting:
    """How a simulated world posts and how noisy single posts are."""

    posts_per_week: int = 5
    post_noise: float = 0.25  # sd of a post's log factor (one catches on, one does not)
    anywhere: bool = False  # best hours anywhere, not only where the pattern points

    @property
    def fixed(self) -> list[int]:
        """A scheduler's default: 10:00 on the first weekdays, one a post."""
        return [day * BLOCKS_PER_DAY + 5 for day in range(self.posts_per_week)]


def _pattern() -> list[float]:
    """The programme-wide shape: evenings and weekends better, early afternoon worse."""
    out = []
    for block in range(BLOCKS):
        day, hour = divmod(block, BLOCKS_PER_DAY)
        hour *= 2
        evening = 1.3 if 16 <= hour < 22 else 1.0
        afternoon = 0.85 if 12 <= hour < 16 else 1.0
        weekend = 1.1 if day >= 4 else 1.0
        out.append(evening * afternoon * weekend)
    return out


PATTERN = _pattern()
#: Where a community's own best hours are drawn from in the main world: the evening blocks
#: of Thursday to Sunday, where the programme's pattern points (2-3 of these 12).
LIKELY = [b for b in ALLOWED if b // BLOCKS_PER_DAY >= 3 and (b % BLOCKS_PER_DAY) * 2 >= 16]


def world(rng: random.Random, *, anywhere: bool = False) -> list[list[float]]:
    """Each community's true rate per block (``anywhere``: its best hours may be any
    allowed block, not only where the programme's pattern points)."""
    truths = []
    for _ in range(COMMUNITIES):
        level = rng.uniform(0.025, 0.06)
        best = set(rng.sample(ALLOWED if anywhere else LIKELY, rng.choice((2, 3))))
        truths.append(
            [
                level
                * PATTERN[b]
                * (BEST_BOOST if b in best else 1.0)
                * math.exp(rng.gauss(0, 0.1))
                for b in range(BLOCKS)
            ]
        )
    return truths


def _value(truth: list[float], blocks: list[int]) -> float:
    return sum(truth[b] for b in blocks)


def oracle(truth: list[float], posts: int) -> list[int]:
    return sorted(ALLOWED, key=lambda b: -truth[b])[:posts]


def learner_choice(
    figures: list[PostFigure], community: int, rng: random.Random, posts: int
) -> list[int]:
    """``posts`` distinct blocks by Thompson sampling on the model fitted to ``figures``."""
    fitted = estimate(figures)
    mine = fitted.get(community)
    if mine is not None:
        posterior = [(e.rate, e.sd) for e in mine.blocks]
    elif fitted:
        sample = next(iter(fitted.values()))
        sd = max(e.sd for e in sample.blocks)
        posterior = [(sample.programme_average * f, sd) for f in sample.pattern]
    else:
        posterior = list(UNIFORM)
    return draw_order(posterior, ALLOWED, rng)[:posts]


def simulate(rng: random.Random, setting: Setting) -> tuple[float, float, float]:
    """One world: the learner's share of the oracle in week 9 and over weeks 1-8, and fixed
    slots' share (the same every week)."""
    truths = world(rng, anywhere=setting.anywhere)
    posts = setting.posts_per_week
    figures: list[PostFigure] = []
    post_id = 0
    learnt = best = 0.0
    for _week in range(WEEKS):
        # Every community chooses from what was known at the week's start.
        choices = [learner_choice(figures, c, rng, posts) for c in range(COMMUNITIES)]
        for community, blocks in enumerate(choices):
            truth = truths[community]
            learnt += _value(truth, blocks)
            best += _value(truth, oracle(truth, posts))
            for block in blocks:
                views = rng.randint(1000, 2000)
                rate = min(0.9, truth[block] * math.exp(rng.gauss(0, setting.post_noise)))
                hits = sum(1 for _ in range(views) if rng.random() < rate)
                post_id += 1
                figures.append(
                    PostFigure(post_id, community, ChannelKind.FACEBOOK, block, hits, views)
                )
    week9 = [learner_choice(figures, c, rng, posts) for c in range(COMMUNITIES)]
    learnt9 = sum(_value(truths[c], week9[c]) for c in range(COMMUNITIES))
    best9 = sum(_value(t, oracle(t, posts)) for t in truths)
    fixed = sum(_value(t, setting.fixed) for t in truths) / best9
    return learnt9 / best9, learnt / best, fixed


class BestTimeLearning(Benchmark):
    name = "best-times"
    full_runs: ClassVar[int] = 3
    note = (
        "**Best-time learning.** "
        + " ".join((__doc__ or "").split("\n\n")[1].split())
        + " Each run simulates 10 worlds (quick: 2) with its own seed; a figure is the mean "
        "over the run's worlds. Pure computation: the real model and the real Thompson "
        "draw, no database."
    )

    def __init__(self, *, quick: bool) -> None:
        super().__init__(quick=quick)
        fixed = "fixed slots weekdays 10:00"
        self.week9 = Figure(
            self.name,
            "week 9, 5 posts a week, post noise 0.25: learner's share of the oracle",
            "share",
            higher_is_better=True,
            baseline_name=fixed,
            target=Target("at_least", 0.9, ">= 0.9 (and above fixed slots)"),
        )
        self.weeks = Figure(
            self.name,
            "weeks 1-8 (while learning), same world: learner's share of the oracle",
            "share",
            higher_is_better=True,
            baseline_name=fixed,
        )
        self.sparse = Figure(
            self.name,
            "week 9, 3 posts a week, post noise 0.4: learner's share of the oracle",
            "share",
            higher_is_better=True,
            baseline_name=fixed,
        )
        self.anywhere = Figure(
            self.name,
            "week 9, best hours anywhere (5 a week, noise 0.25): learner's share",
            "share",
            higher_is_better=True,
            baseline_name=fixed,
        )

    def figures(self) -> list[Figure]:
        return [self.week9, self.weeks, self.sparse, self.anywhere]

    def run_once(self, run: int) -> None:
        rng = random.Random(7_000 + run)
        worlds = 2 if self.quick else 10

        def mean(setting: Setting) -> list[float]:
            results = [simulate(rng, setting) for _ in range(worlds)]
            return [sum(r[i] for r in results) / worlds for i in range(3)]

        main = mean(Setting())
        self.week9.add(main[0], main[2])
        self.weeks.add(main[1], main[2])
        sparse = mean(Setting(posts_per_week=3, post_noise=0.4))
        self.sparse.add(sparse[0], sparse[2])
        anywhere = mean(Setting(anywhere=True))
        self.anywhere.add(anywhere[0], anywhere[2])
