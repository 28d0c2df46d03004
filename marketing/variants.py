"""Choosing between variants of a post or an e-mail without declaring false winners.

A variant test sends each variant to a share of the audience, waits a stated time, then
decides once, by this rule (:func:`decide`):

* each arm is a Beta-Binomial: ``trials`` (e-mails sent, or a post's views) and
  ``successes`` (subscribers who clicked, or interactions); a flat Beta(1, 1) prior, so the
  posterior of the rate is Beta(1 + successes, 1 + failures);
* every arm needs at least :attr:`Rule.min_trials` trials, or the verdict is "too few";
* an arm wins when its posterior probability of being the best is at least
  ``1 - false_winner / k`` for ``k`` arms (97.5 % for two at the default 5 %).  The split is
  what keeps the rule honest: with two identical arms, "at least 95 %" is reached by *either*
  arm about 5 % of the time each, so a plain 95 % rule names a false winner about 10 % of the
  time (``bench/variants.py`` measures both);
* otherwise the verdict is "no clear winner", and the report says so.

Deciding once, after the stated wait, is what makes the bound hold: looking every hour and
stopping at the first 97.5 % would find false winners far more often.  Each arm's 95 %
credible interval (equal tails of its posterior) is given beside its rate.

Pure functions: no database, no clock.  The probability for two arms is exact (a finite sum,
Evan Miller's formula); for more arms it is a seeded Monte Carlo estimate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["winner", "no_clear_winner", "too_few"]

MONTE_CARLO_DRAWS = 20_000


@dataclass(frozen=True)
class Arm:
    """One variant's figures."""

    key: str  # "a", "b", ...
    trials: int
    successes: int

    def __post_init__(self) -> None:
        if self.trials < 0 or not 0 <= self.successes <= self.trials:
            raise ValueError(f"arm {self.key}: {self.successes} successes of {self.trials}")

    @property
    def rate(self) -> float:
        """The observed rate (0 with no trial)."""
        return self.successes / self.trials if self.trials else 0.0


@dataclass(frozen=True)
class Rule:
    """When a winner may be named."""

    false_winner: float = 0.05  # the chance of naming a winner when every arm is alike
    min_trials: int = 200  # per arm

    def needed(self, arms: int) -> float:
        """The probability of being best an arm needs, with ``arms`` arms."""
        return 1 - self.false_winner / max(1, arms)


@dataclass(frozen=True)
class ArmResult:
    """One arm as the verdict reports it."""

    arm: Arm
    probability_best: float
    low: float  # 95 % credible interval of the rate
    high: float


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    winner: str | None
    needed: float  # the probability of being best a winner needed
    arms: tuple[ArmResult, ...]


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def probability_b_beats_a(a: Arm, b: Arm) -> float:
    """P(rate of ``b`` > rate of ``a``) under flat priors, exactly."""
    a1, b1 = 1 + a.successes, 1 + a.trials - a.successes
    a2, b2 = 1 + b.successes, 1 + b.trials - b.successes
    base = _log_beta(a1, b1)
    total = 0.0
    for i in range(a2):
        total += math.exp(
            _log_beta(a1 + i, b1 + b2) - math.log(b2 + i) - _log_beta(1 + i, b2) - base
        )
    return min(1.0, max(0.0, total))


def probability_best(
    arms: Sequence[Arm], *, rng: random.Random | None = None, draws: int = MONTE_CARLO_DRAWS
) -> list[float]:
    """Each arm's posterior probability of having the highest rate (exact for two arms; a
    Monte Carlo estimate from ``rng``, seeded 0 by default, for more)."""
    if len(arms) == 1:
        return [1.0]
    if len(arms) == 2:
        p = probability_b_beats_a(arms[0], arms[1])
        return [1 - p, p]
    rng = rng or random.Random(0)
    wins = [0] * len(arms)
    params = [(1 + a.successes, 1 + a.trials - a.successes) for a in arms]
    for _ in range(draws):
        values = [rng.betavariate(x, y) for x, y in params]
        wins[values.index(max(values))] += 1
    return [w / draws for w in wins]


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta (modified Lentz)."""
    tiny = 1e-300

    def nonzero(v: float) -> float:
        return v if abs(v) > tiny else tiny

    c, d = 1.0, 1 / nonzero(1 - (a + b) * x / (a + 1))
    h = d
    for m in range(1, 300):
        even = m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m))
        d = 1 / nonzero(1 + even * d)
        c = nonzero(1 + even / c)
        h *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m))
        d = 1 / nonzero(1 + odd * d)
        c = nonzero(1 + odd / c)
        h *= d * c
        if abs(d * c - 1) < 1e-14:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The Beta(a, b) distribution function at ``x``."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_cf(a, b, x) / a
    return 1 - front * _beta_cf(b, a, 1 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The ``q`` quantile of Beta(a, b), by bisection."""
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if beta_cdf(mid, a, b) < q:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def interval(arm: Arm, *, level: float = 0.95) -> tuple[float, float]:
    """The equal-tailed credible interval of ``arm``'s rate."""
    a, b = 1 + arm.successes, 1 + arm.trials - arm.successes
    tail = (1 - level) / 2
    return beta_quantile(tail, a, b), beta_quantile(1 - tail, a, b)


def decide(
    arms: Sequence[Arm],
    rule: Rule | None = None,
    *,
    rng: random.Random | None = None,
    intervals: bool = True,
) -> Verdict:
    """The verdict on ``arms`` after the wait (see the module for the rule); ``intervals``
    False leaves them out (NaN), for simulations that need only the outcome."""
    rule = rule or Rule()
    if len(arms) < 2:
        raise ValueError("a variant test needs two arms or more")
    needed = rule.needed(len(arms))
    chances = probability_best(arms, rng=rng)
    results = tuple(
        ArmResult(arm, chance, *(interval(arm) if intervals else (math.nan, math.nan)))
        for arm, chance in zip(arms, chances, strict=True)
    )
    if any(arm.trials < rule.min_trials for arm in arms):
        return Verdict("too_few", None, needed, results)
    best = max(results, key=lambda r: r.probability_best)
    if best.probability_best >= needed:
        return Verdict("winner", best.arm.key, needed, results)
    return Verdict("no_clear_winner", None, needed, results)


#: Posts an arm needs before a test over posts can name a winner (the design effect below
#: needs at least four to be estimated at all).
MIN_UNITS = 4


@dataclass(frozen=True)
class Pooled:
    """An arm made of several posts, as :func:`pooled_arms` gives it."""

    arm: Arm  # the effective counts :func:`decide` weighs
    views: int  # the raw sums, for the report
    interactions: int
    units: int  # posts
    design_effect: float  # how many raw views count as one effective view


def pooled_arms(groups: Sequence[tuple[str, Sequence[tuple[int, int]]]]) -> list[Pooled]:
    """Arms made of posts (``(key, [(views, interactions) per post])``), ready for
    :func:`decide`.

    Views of one post are not independent trials: each Page and each post has its own rate
    (its followers, its hour, its photo), so summing views as if they were coin tosses
    overstates what is known -- with posts' rates varying by 20 % around the arm's, about
    half of simulated A/A tests would name a false winner.  Each arm's sums are therefore
    divided by a design effect: the arm's cluster-robust variance of its pooled rate (the
    posts' residuals from it, with the small-sample factors m/(m-1) and (m-1)/(m-3) for m
    posts) over the binomial variance, at least 1; the largest arm's is applied to every arm,
    which keeps false winners at 5 % or less in ``bench/variants.py``'s simulation.  An arm
    of fewer than :data:`MIN_UNITS` posts gets an infinite design effect (no effective
    view): the verdict is then "too few".
    """
    effects: list[float] = []
    sums: list[tuple[int, int, int]] = []
    for _key, posts in groups:
        m = len(posts)
        views = sum(max(0, n) for n, _ in posts)
        acts = sum(min(max(0, x), max(0, n)) for n, x in posts)
        sums.append((views, acts, m))
        rate = acts / views if views else 0.0
        binomial_var = rate * (1 - rate) / views if views else 0.0
        if m < MIN_UNITS:
            effects.append(math.inf)
            continue
        if binomial_var <= 0:
            effects.append(1.0)
            continue
        spread = sum((min(x, n) - n * rate) ** 2 for n, x in posts) / views**2
        robust = spread * m / (m - 3)  # m/(m-1), then (m-1)/(m-3)
        effects.append(max(1.0, robust / binomial_var))
    effect = max(effects, default=1.0)
    out = []
    for (key, _posts), (views, acts, m) in zip(groups, sums, strict=True):
        trials = 0 if math.isinf(effect) else round(views / effect)
        successes = 0 if math.isinf(effect) else min(trials, round(acts / effect))
        out.append(Pooled(Arm(key, trials, successes), views, acts, m, effect))
    return out


def binomial(n: int, p: float, rng: random.Random) -> int:
    """One Binomial(n, p) draw by inversion (for simulations; fine for small ``n * p``)."""
    if p <= 0:
        return 0
    if p >= 1:
        return n
    u = rng.random()
    q = 1 - p
    prob = q**n
    if prob == 0.0:  # n p large: a normal approximation is plenty for a simulation
        return max(0, min(n, round(rng.gauss(n * p, math.sqrt(n * p * q)))))
    cumulative, k = prob, 0
    while u > cumulative and k < n:
        prob *= (n - k) / (k + 1) * p / q
        k += 1
        cumulative += prob
    return k
