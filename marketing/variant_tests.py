"""E-mail variant tests as they run: who gets which variant, when the rest is decided, and
what the campaign report shows.

A campaign's e-mail with ``variants`` plans, per community and occurrence, one post per
variant (occurrence key ``<key>~a``, ``~b``...) at the occurrence's time, and one post for the
rest (``<key>~rest``) at the occurrence's time plus the wait (see :mod:`campaigns.planning`).
Each subscriber falls in one part of the audience for good: a hash of the test and the
subscriber gives a number in [0, 1); the first ``share`` percent is split evenly between the
variants, the rest waits.  A subscriber who consents later still falls in the same part.

Deciding (exactly once).  ``dispatch_due`` (the beat) queues the rest post at its time like
any other; its publish task, before sending anything, calls :func:`decide_rest`:

* a :class:`~marketing.models.VariantDecision` already stored for the post is used as it is
  (a retry, a redelivered message or a restarted worker never decides again);
* if a variant post is still sending, or the wait since the last variant was sent is not
  over, nothing is decided and the post is put back until then (a rate-limit style wait,
  not a failure);
* otherwise each variant's e-mails sent and subscribers who clicked (up to now) go to
  :func:`marketing.variants.decide`, and the verdict is stored in the same transaction that
  reads the figures, before the first e-mail of the rest goes out.  The rest gets the winner,
  or variant a -- the campaign's own subject -- when there is no clear winner or too few
  e-mails were sent; the report says which.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, func, select, true
from sqlalchemy.orm import Session

from marketing.db import write_session
from marketing.models import (
    Community,
    Delivery,
    DeliveryState,
    EmailEvent,
    EmailEventKind,
    Post,
    PostState,
    VariantDecision,
)
from marketing.variants import Arm, Rule, decide, interval

KEYS = ("a", "b", "c", "d", "e")
STILL_SENDING_WAIT = timedelta(minutes=5)
_FINAL = (PostState.PUBLISHED, PostState.FAILED, PostState.CANCELLED)


def variant_of(content: Mapping[str, Any]) -> dict[str, Any] | None:
    """The variant-test part of a post's content, if it is part of a test."""
    found = content.get("variant")
    return found if isinstance(found, dict) else None


def is_rest(content: Mapping[str, Any]) -> bool:
    """True for the post that sends the chosen variant to the rest of the audience."""
    variant = variant_of(content)
    return variant is not None and variant.get("arm") == "rest"


def position(test: str, subscriber_id: int) -> float:
    """Where a subscriber falls in a test's audience: a fixed number in [0, 1)."""
    digest = hashlib.sha256(f"{test}\x1f{subscriber_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def receives(content: Mapping[str, Any], subscriber_id: int) -> bool:
    """Does this post go to this subscriber: everyone for a post outside a test; the
    variant's part of the test share, or everyone beyond the share for the rest."""
    variant = variant_of(content)
    if variant is None:
        return True
    where = position(str(variant["test"]), subscriber_id)
    share = float(variant["share"]) / 100
    if variant["arm"] == "rest":
        return where >= share
    index, arms = KEYS.index(str(variant["arm"])), int(variant["arms"])
    return index * share / arms <= where < (index + 1) * share / arms


def chosen_content(content: Mapping[str, Any], decision: VariantDecision) -> dict[str, Any]:
    """The rest post's content with the chosen variant's subject and preheader."""
    variant = variant_of(content) or {}
    choice = (variant.get("choices") or {}).get(decision.chosen, {})
    out = {k: v for k, v in content.items() if k != "preheader"}
    out.update(choice)
    return out


def _arm_posts(session: Session, rest: Post) -> list[Post]:
    prefix = rest.occurrence_key.removesuffix("~rest")
    variant = variant_of(rest.content) or {}
    keys = [f"{prefix}~{k}" for k in KEYS[: int(variant.get("arms", 0))]]
    posts = session.scalars(
        select(Post).where(
            Post.campaign_id == rest.campaign_id,
            Post.community_id == rest.community_id,
            Post.channel_account_id == rest.channel_account_id,
            Post.occurrence_key.in_(keys),
        )
    ).all()
    return sorted(posts, key=lambda p: p.occurrence_key)


def arm_figures(session: Session, posts: list[Post], *, now: datetime | None) -> list[Arm]:
    """Each variant post's e-mails sent and subscribers who clicked by ``now`` (None: so
    far)."""
    ids = [p.id for p in posts]
    sent = dict(
        session.execute(
            select(Delivery.post_id, func.count())
            .where(Delivery.post_id.in_(ids), Delivery.state == DeliveryState.SENT)
            .group_by(Delivery.post_id)
        ).all()
    )
    clicked = dict(
        session.execute(
            select(EmailEvent.post_id, func.count(func.distinct(EmailEvent.subscriber_id)))
            .where(
                EmailEvent.post_id.in_(ids),
                EmailEvent.kind == EmailEventKind.CLICK,
                EmailEvent.occurred_at <= now if now is not None else true(),
            )
            .group_by(EmailEvent.post_id)
        ).all()
    )
    out = []
    for post in posts:
        trials = int(sent.get(post.id, 0))
        out.append(
            Arm(
                post.occurrence_key.rsplit("~", 1)[1],
                trials,
                min(trials, int(clicked.get(post.id, 0))),
            )
        )
    return out


def decide_rest(*, engine: Engine, post_id: int, now: datetime) -> VariantDecision | timedelta:
    """The stored decision of rest post ``post_id``, made now if it is due; or how long to
    wait before asking again (see the module)."""
    with write_session(engine) as session:
        stored = session.scalars(
            select(VariantDecision).where(VariantDecision.post_id == post_id)
        ).one_or_none()
        if stored is not None:
            session.expunge(stored)
            return stored
        rest = session.get(Post, post_id)
        assert rest is not None
        variant = variant_of(rest.content) or {}
        posts = _arm_posts(session, rest)
        if any(p.state not in _FINAL for p in posts):
            return STILL_SENDING_WAIT
        sent = [p.published_at for p in posts if p.published_at is not None]
        ready_at = max(sent) + timedelta(seconds=int(variant.get("wait", 0))) if sent else now
        if ready_at > now:
            return ready_at - now
        arms = arm_figures(session, posts, now=now)
        rule = Rule(min_trials=int(variant.get("min_sample", Rule().min_trials)))
        if len(arms) >= 2:
            verdict = decide(arms, rule)
            outcome, winner, needed = verdict.outcome, verdict.winner, verdict.needed
            results = [
                {
                    "key": r.arm.key,
                    "trials": r.arm.trials,
                    "successes": r.arm.successes,
                    "probability_best": r.probability_best,
                    "low": r.low,
                    "high": r.high,
                }
                for r in verdict.arms
            ]
        else:  # variant posts cancelled or never planned: nothing to compare
            outcome, winner, needed, results = "too_few", None, rule.needed(2), []
        decision = VariantDecision(
            post_id=post_id,
            outcome=outcome,
            winner=winner,
            chosen=winner or "a",
            needed=needed,
            arms=results,
            decided_at=now,
        )
        session.add(decision)
        session.flush()
        session.expunge(decision)
        return decision


@dataclass(frozen=True)
class ArmShown:
    """One variant as the campaign report shows it."""

    key: str
    subject: str
    trials: int
    successes: int
    rate: float
    low: float
    high: float
    probability_best: float | None  # None: not decided yet


@dataclass(frozen=True)
class VariantTestShown:
    """One variant test (a community's occurrence) as the campaign report shows it."""

    community_slug: str
    community_name: str
    occurrence: str
    outcome: Literal["winner", "no_clear_winner", "too_few", "waiting"]
    winner: str | None
    chosen: str | None
    needed: float | None
    decided_at: datetime | None
    arms: tuple[ArmShown, ...]


def campaign_tests(
    *, session: Session, campaign_id: int, now: datetime | None = None
) -> list[VariantTestShown]:
    """Every variant test of a campaign: decided ones with their stored verdict, the others
    with their figures so far."""
    rests = session.scalars(
        select(Post)
        .where(
            Post.campaign_id == campaign_id,
            Post.occurrence_key.like("%~rest"),
            Post.state != PostState.CANCELLED,
        )
        .order_by(Post.scheduled_at, Post.id)
    ).all()
    if not rests:
        return []
    decisions = {
        d.post_id: d
        for d in session.scalars(
            select(VariantDecision).where(VariantDecision.post_id.in_([r.id for r in rests]))
        )
    }
    names = {
        c.id: (c.slug, c.name_th)
        for c in session.scalars(
            select(Community).where(Community.id.in_({r.community_id for r in rests}))
        )
    }
    out = []
    for rest in rests:
        variant = variant_of(rest.content) or {}
        choices = variant.get("choices") or {}
        decision = decisions.get(rest.id)
        shown: list[ArmShown] = []
        if decision is not None and decision.arms:
            for arm in decision.arms:
                trials, successes = int(arm["trials"]), int(arm["successes"])
                shown.append(
                    ArmShown(
                        key=arm["key"],
                        subject=str(choices.get(arm["key"], {}).get("subject", "")),
                        trials=trials,
                        successes=successes,
                        rate=successes / trials if trials else 0.0,
                        low=float(arm["low"]),
                        high=float(arm["high"]),
                        probability_best=float(arm["probability_best"]),
                    )
                )
        else:
            for arm in arm_figures(session, _arm_posts(session, rest), now=now):
                low, high = interval(arm)
                shown.append(
                    ArmShown(
                        key=arm.key,
                        subject=str(choices.get(arm.key, {}).get("subject", "")),
                        trials=arm.trials,
                        successes=arm.successes,
                        rate=arm.rate,
                        low=low,
                        high=high,
                        probability_best=None,
                    )
                )
        slug, name = names.get(rest.community_id, ("", ""))
        out.append(
            VariantTestShown(
                community_slug=slug,
                community_name=name,
                occurrence=rest.occurrence_key.removesuffix("~rest"),
                outcome=decision.outcome if decision is not None else "waiting",  # type: ignore[arg-type]
                winner=decision.winner if decision is not None else None,
                chosen=decision.chosen if decision is not None else None,
                needed=decision.needed if decision is not None else None,
                decided_at=decision.decided_at if decision is not None else None,
                arms=tuple(shown),
            )
        )
    return out
