"""Is the pipeline moving?  A verdict per component that does not cry wolf.

A component is *not moving* only when work for it has been due for several of its intervals
and nothing moved in that time.  With nothing due it is *idle* -- right after the demo
published its posts, say, with no worker running -- which is not a fault.  Each component:

* ``dispatcher`` (every ``dispatch_interval``): scheduled posts of approved campaigns due;
* ``recovery`` (every 2 x ``dispatch_interval``): attempts whose heartbeat stopped;
* ``worker``: posts queued and not picked up; an attempt started counts as a sign of life;
* ``metrics`` (every ``metrics_interval``): published Facebook and YouTube posts whose
  metrics are due.

The clock is a parameter (``now``), so tests fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.base import Capability
from marketing.models import (
    Attempt,
    Campaign,
    CampaignStatus,
    Heartbeat,
    Post,
    PostState,
    channels_that,
)
from marketing.settings import Settings

COMPONENTS: tuple[str, ...] = ("dispatcher", "recovery", "worker", "metrics")

# How many intervals without a sign of life, while work is due, make a component "not moving";
# never less than MIN_GRACE (a beat can wait for a busy worker).
INTERVALS = 6
MIN_GRACE = timedelta(seconds=60)

State = Literal["moving", "idle", "not_moving"]


@dataclass(frozen=True)
class ComponentHealth:
    """One component: its last sign of life, the work waiting for it, and the verdict."""

    name: str
    seen: datetime | None
    due: int  # items that have waited longer than ``grace``
    grace: timedelta
    state: State


def grace_of(name: str, settings: Settings) -> timedelta:
    """How long ``name`` may be silent while work is due before it counts as not moving."""
    interval = {
        "dispatcher": settings.dispatch_interval,
        "recovery": max(settings.dispatch_interval * 2, 2.0),
        "worker": settings.dispatch_interval,
        "metrics": settings.metrics_interval,
    }[name]
    if name == "metrics":  # a long interval: three missed collections are plenty
        return max(timedelta(seconds=interval * 3), MIN_GRACE)
    return max(timedelta(seconds=interval * INTERVALS), MIN_GRACE)


def due_posts(*, session: Session, at: datetime) -> int:
    """How many scheduled posts of approved campaigns were due at ``at``: the dispatcher's
    work, shown by the dashboard and ``marketing status`` too."""
    query = (
        select(func.count())
        .select_from(Post)
        .join(Campaign, Campaign.id == Post.campaign_id)
        .where(
            Post.state == PostState.SCHEDULED,
            Post.next_try_at <= at,
            Campaign.status == CampaignStatus.APPROVED,
        )
    )
    return int(session.scalar(query) or 0)


def _overdue(session: Session, name: str, cutoff: datetime, settings: Settings) -> int:
    """How many items of work for ``name`` were already due at ``cutoff``."""
    if name == "dispatcher":
        return due_posts(session=session, at=cutoff)
    elif name == "recovery":
        stale = cutoff - timedelta(seconds=settings.attempt_stale_after)
        query = (
            select(func.count())
            .select_from(Attempt)
            .where(Attempt.finished_at.is_(None), Attempt.heartbeat_at <= stale)
        )
    elif name == "worker":
        query = (
            select(func.count())
            .select_from(Post)
            .where(Post.state == PostState.QUEUED, Post.state_changed_at <= cutoff)
        )
    else:
        query = (
            select(func.count())
            .select_from(Post)
            .where(
                Post.state == PostState.PUBLISHED,
                Post.channel.in_(channels_that(Capability.METRICS)),
                Post.external_id.is_not(None),
                Post.metrics_due_at <= cutoff,
            )
        )
    return int(session.scalar(query) or 0)


def pipeline_health(
    *, session: Session, now: datetime, settings: Settings
) -> list[ComponentHealth]:
    """Every component's verdict at ``now`` (aware, UTC)."""
    beats = {b.component: b.beat_at for b in session.scalars(select(Heartbeat))}
    last_attempt = session.scalar(select(func.max(Attempt.started_at)))
    result = []
    for name in COMPONENTS:
        seen = beats.get(name)
        if name == "worker" and last_attempt is not None:
            seen = max(seen, last_attempt) if seen is not None else last_attempt
        grace = grace_of(name, settings)
        due = _overdue(session, name, now - grace, settings)
        state: State
        if seen is not None and now - seen <= grace:
            state = "moving"
        elif due:
            state = "not_moving"
        else:
            state = "idle"
        result.append(ComponentHealth(name=name, seen=seen, due=due, grace=grace, state=state))
    return result
