"""The variant rule on simulated tests: thousands of A/A tests (two identical variants) count
how often it names a false winner; A/B tests with a stated true lift measure its power.  The
baseline is the plain "probability of being best >= 95 %" rule on the same simulated tests.
Pure computation (no database): :mod:`marketing.variants` decides each test once, after its
wait, as the campaign does."""

from __future__ import annotations

import random
from typing import ClassVar

from bench.base import Benchmark
from bench.results import Figure, Target
from marketing.variants import Arm, Rule, binomial, decide

BASE_RATE = 0.05  # a letter's click rate, or a post's interactions per view
LIFT = 0.30  # the stated true lift for power: 5 % -> 6.5 %
SMALL, LARGE = 1_000, 5_000  # trials per arm
RULE = Rule()  # 5 % false winners, at least 200 trials an arm: 97.5 % for two arms
NAIVE = Rule(false_winner=0.10)  # "probability of being best >= 95 %" whichever arm


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
        "false winners are about twice 5 %. Each run uses its own seed."
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

    def figures(self) -> list[Figure]:
        return [self.false, self.power_small, self.power_large]

    def run_once(self, run: int) -> None:
        rng = random.Random(1_000 + run)
        aa_tests = 500 if self.quick else 10_000
        ab_tests = 200 if self.quick else 2_000
        ours, naive = simulate(rng, aa_tests, SMALL, BASE_RATE, BASE_RATE)
        self.false.add(ours, naive)
        for figure, trials in ((self.power_small, SMALL), (self.power_large, LARGE)):
            ours, naive = simulate(rng, ab_tests, trials, BASE_RATE, BASE_RATE * (1 + LIFT))
            figure.add(ours, naive)


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
