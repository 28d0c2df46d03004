"""Variant tests over a campaign's posts (Facebook Pages), as they run.

A Page post reaches everyone who follows the Page: its audience cannot be split the way an
e-mail's is.  What can be split is the campaign's posts.  Planning
(:meth:`campaigns.planning._Planner.split_posts`) makes the first ``share`` percent of the
campaign's Facebook posts the test -- each carries one variant, the variants taking balanced
turns in a fixed random order -- and every later post "the rest", holding variant a until
the decision.

Deciding (exactly once, one row).  The publish task claims a rest post as any other (the
claim is committed first); before the network call it asks :func:`prepare`:

* with a stored :class:`~marketing.models.VariantDecision` for the test (``test`` is unique),
  the post's content is rewritten to the chosen variant, once (``variant.applied`` says it
  was), in a transaction that commits before the post goes out;
* without one, while a test post is still to go out, or ``wait`` since the last test post
  went out is not over, or its metrics were not yet collected after the wait (at most
  :data:`MEASURE_GRACE` longer), the answer is how long to wait: the task puts the post back
  (nothing is sent);
* otherwise each variant's interactions and views -- the latest snapshot of each of its
  posts, summed, as :mod:`marketing.engagement` defines them -- go to
  :func:`marketing.variants.decide` (the same rule as e-mail's), the verdict is stored, and
  every rest post not held by a worker is rewritten to the chosen variant in the same
  transaction.  A rest post held by a worker is rewritten by that worker's own
  :func:`prepare`, guarded by its attempt: no rest post goes out with variant a by default
  before the decision, nor twice.

The rest gets the winner; with no clear winner (or too few views), variant a -- the
campaign's own text and photo -- and the report says so plainly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from marketing import engagement
from marketing.db import write_session
from marketing.models import (
    Campaign,
    Community,
    MetricSnapshot,
    Post,
    PostOverride,
    PostState,
    VariantDecision,
)
from marketing.variants import MIN_UNITS, Arm, Pooled, Rule, decide, interval, pooled_arms

if TYPE_CHECKING:
    from marketing.publishing import Claim

KEYS = ("a", "b", "c", "d", "e")
STILL_OUT_WAIT = timedelta(minutes=5)
MEASURE_WAIT = timedelta(minutes=10)
#: How long past the wait a decision waits for metrics collected after the wait.
MEASURE_GRACE = timedelta(hours=12)
_FINAL = (PostState.PUBLISHED, PostState.FAILED, PostState.CANCELLED)
#: Rest posts the decision itself rewrites: every state but held by a worker or ended.
_REWRITABLE = (
    PostState.SCHEDULED,
    PostState.QUEUED,
    PostState.NEEDS_RECONNECT,
    PostState.FAILED,
)


def variant_of(content: Mapping[str, Any]) -> dict[str, Any] | None:
    """The test part of a post's content, for a test over a campaign's posts."""
    found = content.get("variant")
    return found if isinstance(found, dict) and found.get("unit") == "posts" else None


def is_rest(content: Mapping[str, Any]) -> bool:
    """True for a post that gets the decided variant (a test over posts)."""
    variant = variant_of(content)
    return variant is not None and variant.get("arm") == "rest"


def chosen_content(
    content: Mapping[str, Any], chosen: str, kept: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A rest post's content with the chosen variant's text and photo (a key the variant has
    no value for is removed), marked as applied; keys in ``kept`` -- what a person rewrote
    on this post (:class:`~marketing.models.PostOverride`) -- stay as they wrote them."""
    variant = dict(variant_of(content) or {})
    choice = (variant.get("choices") or {}).get(chosen, {})
    out = dict(content)
    for key, value in choice.items():
        if kept is not None and key in kept:
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    variant["applied"] = chosen
    out["variant"] = variant
    return out


def _content_hash(content: Mapping[str, Any]) -> str:
    # Imported here: the reports import this module for campaign_post_tests, and
    # `marketing report --help` must not load the campaign engine.
    from campaigns.planning import content_hash

    return content_hash(dict(content))


def test_posts(session: Session, campaign_id: int, test: str) -> list[Post]:
    """The campaign's posts in test ``test`` (variants and rest), by time."""
    posts = session.scalars(
        select(Post).where(Post.campaign_id == campaign_id).order_by(Post.scheduled_at, Post.id)
    ).all()
    return [p for p in posts if (variant_of(p.content) or {}).get("test") == test]


def arm_figures(session: Session, posts: Sequence[Post], *, now: datetime | None) -> list[Pooled]:
    """Per variant: the views and interactions of each of its published posts, from each
    post's latest snapshot by ``now`` (None: so far), pooled by
    :func:`marketing.variants.pooled_arms` (a post not yet measured counts for nothing)."""
    arms_total = max((int((variant_of(p.content) or {}).get("arms", 0)) for p in posts), default=0)
    keys = KEYS[:arms_total]
    ids = [p.id for p in posts if p.state == PostState.PUBLISHED]
    latest: dict[int, MetricSnapshot] = {}
    if ids:
        query = select(MetricSnapshot).where(MetricSnapshot.post_id.in_(ids))
        if now is not None:
            query = query.where(MetricSnapshot.collected_at <= now)
        for row in session.scalars(query.order_by(MetricSnapshot.collected_at)):
            latest[row.post_id] = row
    units: dict[str, list[tuple[int, int]]] = {k: [] for k in keys}
    for post in posts:
        key = str((variant_of(post.content) or {}).get("arm"))
        snap = latest.get(post.id)
        if key not in units or snap is None:
            continue
        units[key].append(
            (
                engagement.reach(post.channel, snap),
                engagement.interactions(post.channel, snap),
            )
        )
    return pooled_arms([(k, units[k]) for k in keys])


def _wait(
    session: Session, posts: Sequence[Post], variant: Mapping[str, Any], now: datetime
) -> timedelta | None:
    """How long before the test can be decided; None: now."""
    tests = [p for p in posts if not is_rest(p.content)]
    wait = timedelta(seconds=int(variant.get("wait", 0)))
    out = [p for p in tests if p.state not in _FINAL]
    if out:
        latest = max(p.next_try_at for p in out)
        return max(STILL_OUT_WAIT, latest + wait - now)
    published = [p for p in tests if p.published_at is not None]
    if not published:
        return None
    ready_at = max(p.published_at for p in published if p.published_at) + wait
    if ready_at > now:
        return ready_at - now
    if now < ready_at + MEASURE_GRACE:
        measured = dict(
            session.execute(
                select(MetricSnapshot.post_id, func.max(MetricSnapshot.collected_at))
                .where(
                    MetricSnapshot.post_id.in_([p.id for p in published]),
                    MetricSnapshot.collected_at <= now,
                )
                .group_by(MetricSnapshot.post_id)
            ).all()
        )
        unmeasured = [
            p
            for p in published
            if p.published_at is not None
            and ((last := measured.get(p.id)) is None or last < p.published_at + wait)
        ]
        if unmeasured:
            # Ask again when their next collection is due (at most MEASURE_WAIT away).
            due = [p.metrics_due_at for p in unmeasured if p.metrics_due_at is not None]
            if not due:
                return MEASURE_WAIT
            return min(MEASURE_WAIT, max(timedelta(minutes=1), max(due) - now))
    return None


def _decide(
    session: Session, posts: Sequence[Post], variant: Mapping[str, Any], post_id: int, now: datetime
) -> VariantDecision:
    min_sample = int(variant.get("min_sample", Rule().min_trials))
    pooled = arm_figures(session, posts, now=now)
    if len(pooled) >= 2:
        # The rule's own minimum is checked on the raw views (what the campaign file says);
        # the probability of being best weighs the effective views.
        verdict = decide([p.arm for p in pooled], Rule(min_trials=0))
        enough = all(p.views >= min_sample and p.units >= MIN_UNITS for p in pooled)
        outcome = verdict.outcome if enough else "too_few"
        winner = verdict.winner if enough else None
        needed = verdict.needed
        results = [
            {
                "key": p.arm.key,
                "trials": p.views,
                "successes": p.interactions,
                "posts": p.units,
                "effective_trials": p.arm.trials,
                "effective_successes": p.arm.successes,
                "design_effect": None if math.isinf(p.design_effect) else p.design_effect,
                "probability_best": r.probability_best,
                "low": r.low,
                "high": r.high,
            }
            for p, r in zip(pooled, verdict.arms, strict=True)
        ]
    else:
        outcome, winner, needed, results = "too_few", None, Rule().needed(2), []
    decision = VariantDecision(
        post_id=post_id,
        test=str(variant["test"]),
        outcome=outcome,
        winner=winner,
        chosen=winner or "a",
        needed=needed,
        arms=results,
        decided_at=now,
    )
    session.add(decision)
    rewritable = [p for p in posts if is_rest(p.content) and p.state in _REWRITABLE]
    kept = _overrides(session, [p.id for p in rewritable])
    for post in rewritable:
        _apply(post, decision.chosen, kept.get(post.id))
    session.flush()
    return decision


def _overrides(session: Session, post_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What people rewrote on these posts, per post."""
    if not post_ids:
        return {}
    return {
        post_id: dict(content or {})
        for post_id, content in session.execute(
            select(PostOverride.post_id, PostOverride.content).where(
                PostOverride.post_id.in_(post_ids)
            )
        )
    }


def _apply(post: Post, chosen: str, kept: Mapping[str, Any] | None) -> None:
    if (variant_of(post.content) or {}).get("applied") == chosen:
        return
    post.content = chosen_content(post.content, chosen, kept)
    post.content_hash = _content_hash(post.content)


def prepare(*, engine: Engine, claim: Claim, now: datetime) -> Claim | timedelta:
    """The claim of a rest post with the chosen variant's content (stored before it goes
    out), deciding the test if it is due; or how long to wait (see the module)."""
    variant = variant_of(claim.content) or {}
    with write_session(engine) as session:
        post = session.get(Post, claim.post_id)
        assert post is not None
        # One decider at a time per campaign (SQLite: the write lock already).
        locked = select(Campaign.id).where(Campaign.id == post.campaign_id)
        if session.get_bind().dialect.name != "sqlite":
            locked = locked.with_for_update()
        session.execute(locked)
        test = str(variant.get("test"))
        decision = session.scalars(
            select(VariantDecision).where(VariantDecision.test == test)
        ).one_or_none()
        if decision is None:
            posts = test_posts(session, post.campaign_id, test)
            wait = _wait(session, posts, variant, now)
            if wait is not None:
                return wait
            decision = _decide(session, posts, variant, claim.post_id, now)
        if post.state != PostState.PUBLISHING or post.attempt_count != claim.attempt_number:
            return STILL_OUT_WAIT  # not ours any more (never expected): send nothing
        content = chosen_content(
            post.content, decision.chosen, _overrides(session, [post.id]).get(post.id)
        )
        session.execute(
            update(Post)
            .where(Post.id == post.id)
            .values(content=content, content_hash=_content_hash(content))
        )
        return replace(claim, content=content)


# -- the campaign report --------------------------------------------------------------------


@dataclass(frozen=True)
class PostArmShown:
    """One variant of a test over posts, as the campaign report shows it."""

    key: str
    message: str
    photo: str
    posts: int
    trials: int  # views
    successes: int  # interactions
    rate: float
    low: float
    high: float
    probability_best: float | None  # None: not decided yet


@dataclass(frozen=True)
class PostTestShown:
    """One test over a campaign's posts."""

    channel: str
    test: str
    outcome: Literal["winner", "no_clear_winner", "too_few", "waiting"]
    winner: str | None
    chosen: str | None
    needed: float | None
    decided_at: datetime | None
    rest_posts: int
    communities: tuple[str, ...]  # the Thai names of the test posts' communities
    arms: tuple[PostArmShown, ...]


def campaign_post_tests(
    *, session: Session, campaign_id: int, now: datetime | None = None
) -> list[PostTestShown]:
    """Every test over the campaign's posts: decided ones with their stored verdict, the
    others with their figures so far."""
    posts = session.scalars(
        select(Post)
        .where(Post.campaign_id == campaign_id, Post.state != PostState.CANCELLED)
        .order_by(Post.scheduled_at, Post.id)
    ).all()
    by_test: dict[str, list[Post]] = {}
    for post in posts:
        variant = variant_of(post.content)
        if variant is not None:
            by_test.setdefault(str(variant.get("test")), []).append(post)
    if not by_test:
        return []
    decisions = {
        d.test: d
        for d in session.scalars(
            select(VariantDecision).where(VariantDecision.test.in_(list(by_test)))
        )
    }
    names = dict(
        session.execute(
            select(Community.id, Community.name_th).where(
                Community.id.in_({p.community_id for p in posts})
            )
        ).all()
    )
    out = []
    for test, members in by_test.items():
        rests = [p for p in members if is_rest(p.content)]
        choices: dict[str, Any] = {}
        for p in rests:
            choices = (variant_of(p.content) or {}).get("choices") or {}
            break
        decision = decisions.get(test)
        counts: dict[str, int] = {}
        for p in members:
            key = str((variant_of(p.content) or {}).get("arm"))
            if key != "rest" and p.state == PostState.PUBLISHED:
                counts[key] = counts.get(key, 0) + 1
        figures: list[tuple[Arm, float, float, float | None, int]] = []
        if decision is not None and decision.arms:
            for arm in decision.arms:
                a = Arm(str(arm["key"]), int(arm["trials"]), int(arm["successes"]))
                figures.append(
                    (
                        a,
                        float(arm["low"]),
                        float(arm["high"]),
                        float(arm["probability_best"]),
                        int(arm.get("posts", 0)),
                    )
                )
        else:
            for pooled in arm_figures(session, members, now=now):
                low, high = interval(pooled.arm)
                raw = Arm(pooled.arm.key, pooled.views, pooled.interactions)
                figures.append((raw, low, high, None, pooled.units))
        shown = []
        for a, low, high, chance, n in figures:
            choice = choices.get(a.key) or {}
            own = next(
                (p.content for p in members if (variant_of(p.content) or {}).get("arm") == a.key),
                {},
            )
            message = choice.get("message") if choices else own.get("message")
            photo = choice.get("photo") if choices else own.get("photo")
            shown.append(
                PostArmShown(
                    key=a.key,
                    message=str(message or ""),
                    photo=str(photo or "").rsplit("/", 1)[-1],
                    posts=n,
                    trials=a.trials,
                    successes=a.successes,
                    rate=a.rate,
                    low=low,
                    high=high,
                    probability_best=chance,
                )
            )
        tested = [p for p in members if not is_rest(p.content)]
        out.append(
            PostTestShown(
                channel=str(members[0].channel.value),
                test=test,
                outcome=decision.outcome if decision is not None else "waiting",  # type: ignore[arg-type]
                winner=decision.winner if decision is not None else None,
                chosen=decision.chosen if decision is not None else None,
                needed=decision.needed if decision is not None else None,
                decided_at=decision.decided_at if decision is not None else None,
                rest_posts=len(rests),
                communities=tuple(dict.fromkeys(names.get(p.community_id, "") for p in tested)),
                arms=tuple(shown),
            )
        )
    return out
