"""The variant rule on simulated tests: thousands of A/A tests (two identical variants) count
how often it names a false winner; A/B tests with a stated true lift measure its power.  The
baseline is the plain "probability of being best >= 95 %" rule on the same simulated tests.
Pure computation (no database): :mod:`marketing.variants` decides each test once, after its
wait, as the campaign does.

Facebook-like tests split a campaign's posts, not an audience: each arm is several posts,
each with its own reach (log-normal) and its own true rate per view (the arm's, varied by
the Page and the post); :func:`marketing.variants.pooled_arms` pools them with a design
effect before the same :func:`~marketing.variants.decide`.  Its baseline is the same rule on
the plain sums of views and interactions, as if every view were an independent trial."""

from __future__ import annotations

import math
import random
from typing import ClassVar

from bench.base import Benchmark
from bench.results import Figure, Target
from marketing.variants import Arm, Rule, binomial, decide, pooled_arms

BASE_RATE = 0.05  # a letter's click rate, or a post's interactions per view
LIFT = 0.30  # the stated true lift for power: 5 % -> 6.5 %
SMALL, LARGE = 1_000, 5_000  # trials per arm
RULE = Rule()  # 5 % false winners, at least 200 trials an arm: 97.5 % for two arms
NAIVE = Rule(false_winner=0.10)  # "probability of being best >= 95 %" whichever arm

# Facebook-like: interactions per view; posts' reach and rates vary.
POSTS_PER_ARM = 10  # a campaign of 50 Page posts with share 40 %: 20 test posts
POSTS_LARGE = 25  # a campaign of 125 posts
MEDIAN_REACH = 2_000  # views per post, log-normal
REACH_SPREAD = 0.8  # its sigma (log scale): the middle half of posts 1,170-3,420 views
RATE_SPREAD = 0.2  # sigma (log scale) of a post's true rate around its arm's
POST_RULE = Rule(min_trials=1_000)  # the shipped Facebook min_sample


class VariantRule(Benchmark):
    name = "variants"
    full_runs: ClassVar[int] = 3
    note = (
        "**Variant rule.** Simulated tests of two variants, decided once after the wait by "
        "`marketing.variants.decide` (Beta-Binomial, flat priors, exact probability of being "
        "best, at least 200 trials an arm, a winner needs 1 - 5 %/k: 97.5 % for two arms). "
        "A/A: both arms truly 5 %, 10,000 tests a run (quick: 500) at 1,000 trials an arm; "
        "a winner named is a false winner. Power: arm B truly 30 % better (5 % -> 6.5 %), "
        "2,000 tests a run (quick: 200) at 1,000 and at 5,000 trials an arm (a test share "
        "of 2,000 or 10,000 subscribers, or of views). Baseline: the plain rule, a winner at "
        "a probability of being best of 95 % or more -- either arm can reach it, so its "
        "false winners are about twice 5 %. Each run uses its own seed. "
        "**Facebook rows** (tests over a campaign's posts): each arm is 10 posts (25 for the "
        "last row), each post's views log-normal (median 2,000, sigma 0.8) and its true "
        "interactions per view the arm's 5 % times a log-normal post effect (sigma 0.2, mean "
        "1: Pages and hours differ); pooled by `marketing.variants.pooled_arms` (a design "
        "effect from the posts' spread, the largest arm's applied to both, at least 4 posts "
        "an arm) then the same `decide` with 1,000 views an arm. A/A: 4,000 tests a run "
        "(quick: 300); power on a +30 % lift: 1,000 tests a run (quick: 100). Baseline: the "
        "same rule on the plain sums of views, as if each view were an independent trial."
    )

    def __init__(self, *, quick: bool) -> None:
        super().__init__(quick=quick)
        self.false = Figure(
            self.name,
            f"A/A false-winner rate, 2 arms x {SMALL:,}, rate 5 %",
            "share",
            higher_is_better=False,
            baseline_name="plain 95 % rule",
            target=Target("at_most", 0.05, "<= 0.05"),
        )
        self.power_small = Figure(
            self.name,
            f"power, true lift +30 % (5 % -> 6.5 %), 2 arms x {SMALL:,}",
            "share",
            higher_is_better=True,
            baseline_name="plain 95 % rule",
        )
        self.power_large = Figure(
            self.name,
            f"power, true lift +30 % (5 % -> 6.5 %), 2 arms x {LARGE:,}",
            "share",
            higher_is_better=True,
            baseline_name="plain 95 % rule",
            target=Target("at_least", 0.8, ">= 0.8"),
        )

        self.posts_false = Figure(
            self.name,
            f"Facebook A/A false-winner rate, 2 arms x {POSTS_PER_ARM} posts, 5 % per view",
            "share",
            higher_is_better=False,
            baseline_name="plain sums of views",
            target=Target("at_most", 0.05, "<= 0.05"),
        )
        self.posts_power = Figure(
            self.name,
            f"Facebook power, true lift +30 %, 2 arms x {POSTS_PER_ARM} posts",
            "share",
            higher_is_better=True,
            baseline_name="plain sums of views",
        )
        self.posts_power_large = Figure(
            self.name,
            f"Facebook power, true lift +30 %, 2 arms x {POSTS_LARGE} posts",
            "share",
            higher_is_better=True,
            baseline_name="plain sums of views",
        )

    def figures(self) -> list[Figure]:
        return [
            self.false,
            self.power_small,
            self.power_large,
            self.posts_false,
            self.posts_power,
            self.posts_power_large,
        ]

    def run_once(self, run: int) -> None:
        rng = random.Random(1_000 + run)
        aa_tests = 500 if self.quick else 10_000
        ab_tests = 200 if self.quick else 2_000
        ours, naive = simulate(rng, aa_tests, SMALL, BASE_RATE, BASE_RATE)
        self.false.add(ours, naive)
        for figure, trials in ((self.power_small, SMALL), (self.power_large, LARGE)):
            ours, naive = simulate(rng, ab_tests, trials, BASE_RATE, BASE_RATE * (1 + LIFT))
            figure.add(ours, naive)
        aa_posts = 300 if self.quick else 4_000
        ab_posts = 100 if self.quick else 1_000
        self.posts_false.add(*simulate_posts(rng, aa_posts, POSTS_PER_ARM, 0.0))
        self.posts_power.add(*simulate_posts(rng, ab_posts, POSTS_PER_ARM, LIFT))
        self.posts_power_large.add(*simulate_posts(rng, ab_posts, POSTS_LARGE, LIFT))


def simulate(
    rng: random.Random, tests: int, trials: int, rate_a: float, rate_b: float
) -> tuple[float, float]:
    """The share of ``tests`` in which a winner is named, by our rule and by the plain one
    (for A/B tests: in which B is named, the true winner)."""
    alike = rate_a == rate_b
    ours = naive = 0
    for _ in range(tests):
        arms = [
            Arm("a", trials, binomial(trials, rate_a, rng)),
            Arm("b", trials, binomial(trials, rate_b, rng)),
        ]
        for rule, counter in ((RULE, "ours"), (NAIVE, "naive")):
            verdict = decide(arms, rule, intervals=False)
            named = verdict.winner is not None if alike else verdict.winner == "b"
            if named and counter == "ours":
                ours += 1
            elif named:
                naive += 1
    return ours / tests, naive / tests


def _post_figures(rng: random.Random, posts: int, rate: float) -> list[tuple[int, int]]:
    """One arm's posts: (views, interactions) each."""
    out = []
    for _ in range(posts):
        views = max(1, round(MEDIAN_REACH * math.exp(rng.gauss(0, REACH_SPREAD))))
        # A log-normal post effect with mean 1, so the arm's mean rate is ``rate``.
        effect = math.exp(rng.gauss(0, RATE_SPREAD) - RATE_SPREAD**2 / 2)
        out.append((views, binomial(views, min(0.9, rate * effect), rng)))
    return out


def simulate_posts(
    rng: random.Random, tests: int, posts_per_arm: int, lift: float
) -> tuple[float, float]:
    """Facebook-like tests over posts: the share in which a winner is named (A/A) or B is
    named (a true ``lift``), by the pooled arms and by plain sums of views."""
    ours = naive = 0
    for _ in range(tests):
        groups = [
            ("a", _post_figures(rng, posts_per_arm, BASE_RATE)),
            ("b", _post_figures(rng, posts_per_arm, BASE_RATE * (1 + lift))),
        ]
        pooled = pooled_arms(groups)
        enough = all(p.views >= POST_RULE.min_trials for p in pooled)
        verdict = decide([p.arm for p in pooled], Rule(min_trials=0), intervals=False)
        plain = [Arm(p.arm.key, p.views, p.interactions) for p in pooled]
        naive_verdict = decide(plain, POST_RULE, intervals=False)
        for winner, counter in (
            (verdict.winner if enough else None, "ours"),
            (naive_verdict.winner, "naive"),
        ):
            named = winner is not None if lift == 0 else winner == "b"
            if named and counter == "ours":
                ours += 1
            elif named:
                naive += 1
    return ours / tests, naive / tests
