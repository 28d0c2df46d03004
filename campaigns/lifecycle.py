"""Storing campaigns and moving them through their statuses.

::

    apply ──> draft ──approve──> approved ──pause──> paused
                ^                    │  ^──resume──────┘
                └── a changed file ──┘  (approved or paused goes back to draft)
    cancel (from any status): cancelled, and every post not yet publishing is cancelled

Only ``approved`` campaigns are published (the publisher checks).  An approval is bound to
what the approver was shown: the page (or the CLI, or an API client) shows
:func:`approval_hash` with the campaign, and :func:`approve_campaign` approves only if the
campaign still has that hash; if an editor applied a change in between, it raises
:class:`ApprovalOutdated` and the approver must look again.  Applying writes the plan
with bulk statements (no per-row ORM flush) and touches only what changed: posts still
``scheduled`` or ``queued`` are updated or cancelled; posts in any other state are left
exactly as they are.  Applying the same file twice updates no row.

Approval is four-eyes (:func:`four_eyes_refusal`): whoever applied a change since the
campaign's last approval (or created it, if it was never approved) may not approve it.  Who
did what is read from the audit log (``campaign.apply`` and ``campaign.approve`` entries,
written by the web app, the API and the command line) and from ``Campaign.created_by``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from campaigns.besttime import BestTimeSnapshot, BestTimeSource
from campaigns.loader import read_campaign, read_campaign_file
from campaigns.planning import Plan, PlannedPost
from campaigns.reference import EDITABLE_STATES
from marketing.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    ChannelKind,
    Community,
    Post,
    PostState,
)
from marketing.plan_reference import plan_from_database

#: Post states that re-planning may change or cancel (campaigns.reference).
EDITABLE = tuple(PostState(state) for state in EDITABLE_STATES)

CANCELLABLE = (PostState.SCHEDULED, PostState.QUEUED, PostState.NEEDS_RECONNECT)
"""Post states a cancelled campaign cancels: those not yet handed to a channel."""

_BATCH = 5_000
APPLY_ACTION = "campaign.apply"
APPROVE_ACTION = "campaign.approve"


class CampaignStateError(Exception):
    """The campaign cannot do that now; ``hint`` says what to do instead."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(f"{message} -- {hint}" if hint else message)
        self.message = message
        self.hint = hint


class CampaignNotFound(CampaignStateError):
    """No campaign has that slug."""


class ApprovalOutdated(CampaignStateError):
    """The campaign is no longer what the approver was shown (its approval hash changed):
    nothing was approved.  The caller says who changed what (the audit log knows)."""

    code = "approval-outdated"

    def __init__(self, slug: str) -> None:
        super().__init__(
            f"campaign {slug!r} changed after it was shown to you",
            "look at it again (its page, `marketing campaign status`), then approve what you saw",
        )
        self.slug = slug


@dataclass
class ApplySummary:
    """What applying a campaign did."""

    slug: str
    status: CampaignStatus
    created: bool = False
    source_changed: bool = False
    back_to_draft: bool = False  # it was approved (or paused) and must be approved again
    added: int = 0
    updated: int = 0
    cancelled: int = 0
    unchanged: int = 0
    kept: int = 0  # planned, but in a state re-planning leaves alone
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.created or self.source_changed or self.added or self.updated or self.cancelled
        )


def plan_file(
    *,
    session: Session,
    path: Path,
    now: datetime | None = None,
    media_root: Path | None = None,
    best_times: BestTimeSnapshot | BestTimeSource | None = None,
    seed: int = 0,
) -> Plan:
    """The plan of campaign file ``path`` (media in ``media_root``, by default the settings';
    a best-time schedule draws from ``best_times``, see :func:`plan_campaign`);
    InvalidInput with every problem if it has any."""
    text, file = read_campaign_file(path)
    definition = read_campaign(
        text, file=file, base_dir=path.resolve().parent, media_root=media_root
    )
    return plan_from_database(
        session=session, definition=definition, now=now, best_times=best_times, seed=seed
    )


def apply_campaign(
    *,
    session: Session,
    path: Path,
    actor: str,
    now: datetime | None = None,
    best_times: BestTimeSnapshot | BestTimeSource | None = None,
    seed: int = 0,
) -> ApplySummary:
    """Store campaign file ``path`` as a draft and its plan as posts, in the caller's
    transaction; InvalidInput (and nothing written) if the file has any problem."""
    now = now or datetime.now(UTC)
    plan = plan_file(session=session, path=path, now=now, best_times=best_times, seed=seed)
    return store_plan(session=session, plan=plan, actor=actor, now=now)


def _get(session: Session, slug: str) -> Campaign:
    campaign = session.scalars(select(Campaign).where(Campaign.slug == slug)).one_or_none()
    if campaign is None:
        raise CampaignNotFound(
            f"no campaign {slug!r}", "see `marketing campaign list`, or apply the file first"
        )
    return campaign


def store_plan(*, session: Session, plan: Plan, actor: str, now: datetime) -> ApplySummary:
    """Write ``plan``: the campaign row and its posts (see the module docstring)."""
    d = plan.definition
    campaign = session.scalars(select(Campaign).where(Campaign.slug == d.slug)).one_or_none()
    values: dict[str, Any] = {
        "name": d.name,
        "description": d.description,
        "source_path": str(Path(d.file).resolve()),
        "source_text": d.text,
        "source_hash": plan.source_hash,
        "timezone": d.timezone,
        "window_start": d.window_start,
        "window_end": d.window_end,
    }
    summary = ApplySummary(slug=d.slug, status=CampaignStatus.DRAFT, notes=list(plan.notes))
    if campaign is None:
        campaign = Campaign(slug=d.slug, status=CampaignStatus.DRAFT, created_by=actor, **values)
        session.add(campaign)
        session.flush()
        summary.created = True
    else:
        if campaign.status == CampaignStatus.CANCELLED:
            raise CampaignStateError(
                f"campaign {d.slug!r} was cancelled",
                "a cancelled campaign stays cancelled; give the file a new slug",
            )
        summary.source_changed = campaign.source_hash != plan.source_hash
        for name, value in values.items():
            if getattr(campaign, name) != value:
                setattr(campaign, name, value)
        if summary.source_changed and campaign.status != CampaignStatus.DRAFT:
            summary.back_to_draft = campaign.status in (
                CampaignStatus.APPROVED,
                CampaignStatus.PAUSED,
            )
            campaign.status = CampaignStatus.DRAFT
            campaign.approved_by = None
            campaign.approved_at = None
        session.flush()
    summary.status = campaign.status
    _store_posts(session, campaign.id, plan.posts, summary, now)
    return summary


@dataclass
class PostChanges:
    """What storing a plan would do to a campaign's posts."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    kept: int = 0
    # idempotency key -> "new", "update", "same", or the state of a post left alone
    outcome: dict[str, str] = field(default_factory=dict)


def post_changes(
    *,
    session: Session,
    campaign_id: int | None,
    posts: list[PlannedPost],
    now: datetime,
    lock: bool = False,
) -> PostChanges:
    """Compare ``posts`` with the stored posts of campaign ``campaign_id`` (None: a new one).
    ``lock``: hold the stored rows until commit (PostgreSQL), so a worker's claim waits.
    A person's changes to single posts (:mod:`marketing.post_edits`) win over the plan."""
    from marketing.post_edits import with_overrides  # it imports campaigns.planning

    posts = with_overrides(session=session, campaign_id=campaign_id, posts=posts)
    changes = PostChanges()
    existing: dict[str, tuple[int, str, PostState, str, datetime, int | None]] = {}
    if campaign_id is not None:
        query = select(
            Post.id,
            Post.idempotency_key,
            Post.state,
            Post.content_hash,
            Post.scheduled_at,
            Post.highlight_id,
        ).where(Post.campaign_id == campaign_id)
        if lock:
            query = query.with_for_update()
        existing = {row[1]: row for row in session.execute(query)}
    planned_keys = set()
    for post in posts:
        planned_keys.add(post.idempotency_key)
        row = existing.get(post.idempotency_key)
        if row is None:
            changes.outcome[post.idempotency_key] = "new"
            changes.inserts.append(
                {
                    "community_id": post.community_id,
                    "channel_account_id": post.account_id,
                    "channel": ChannelKind(post.channel),
                    "highlight_id": post.highlight_id,
                    "idempotency_key": post.idempotency_key,
                    "occurrence_key": post.occurrence_key,
                    "scheduled_at": post.scheduled_at,
                    "next_try_at": post.scheduled_at,
                    "content": post.content,
                    "content_hash": post.content_hash,
                    "state": PostState.SCHEDULED,
                    "state_changed_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        post_id, _key, state, old_hash, old_time, old_highlight = row
        if state not in EDITABLE:
            changes.kept += 1
            changes.outcome[post.idempotency_key] = state.value
            continue
        if (old_hash, old_time, old_highlight) == (
            post.content_hash,
            post.scheduled_at,
            post.highlight_id,
        ):
            changes.unchanged += 1
            changes.outcome[post.idempotency_key] = "same"
            continue
        changes.outcome[post.idempotency_key] = "update"
        # A queued post whose time moved goes back to waiting; its publish message, if any,
        # then finds it no longer queued and does nothing.
        new_state = state if old_time == post.scheduled_at else PostState.SCHEDULED
        changes.updates.append(
            {
                "b_id": post_id,
                "b_content": post.content,
                "b_hash": post.content_hash,
                "b_time": post.scheduled_at,
                "b_highlight": post.highlight_id,
                "b_state": new_state,
                "b_changed": now if new_state != state else None,
                "b_now": now,
            }
        )
    changes.cancels = [
        {"b_id": row[0], "b_now": now}
        for key, row in existing.items()
        if key not in planned_keys and row[2] in EDITABLE
    ]
    return changes


def _store_posts(
    session: Session,
    campaign_id: int,
    posts: list[PlannedPost],
    summary: ApplySummary,
    now: datetime,
) -> None:
    changes = post_changes(
        session=session, campaign_id=campaign_id, posts=posts, now=now, lock=True
    )
    inserts = [{**row, "campaign_id": campaign_id} for row in changes.inserts]
    updates, cancels = changes.updates, changes.cancels
    summary.kept, summary.unchanged = changes.kept, changes.unchanged
    table = Post.__table__
    assert isinstance(table, Table)
    # (no IN: an executemany cannot expand it)
    editable = or_(*(table.c.state == state for state in EDITABLE))
    for start in range(0, len(inserts), _BATCH):
        session.execute(insert(Post), inserts[start : start + _BATCH])
    summary.added = len(inserts)
    if updates:
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), editable)
            .values(
                content=bindparam("b_content"),
                content_hash=bindparam("b_hash"),
                scheduled_at=bindparam("b_time"),
                next_try_at=bindparam("b_time"),
                highlight_id=bindparam("b_highlight"),
                state=bindparam("b_state"),
                state_changed_at=func.coalesce(bindparam("b_changed"), table.c.state_changed_at),
                updated_at=bindparam("b_now"),
            )
        )
        for start in range(0, len(updates), _BATCH):
            session.connection().execute(statement, updates[start : start + _BATCH])
    summary.updated = len(updates)
    if cancels:
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"), editable)
            .values(
                state=PostState.CANCELLED,
                state_changed_at=bindparam("b_now"),
                updated_at=bindparam("b_now"),
                action_hint="no longer in the campaign's plan when it was applied again",
            )
        )
        for start in range(0, len(cancels), _BATCH):
            session.connection().execute(statement, cancels[start : start + _BATCH])
    summary.cancelled = len(cancels)


APPROVAL_HASH_LENGTH = 64  # hex SHA-256


def _utc_text(when: datetime) -> str:
    # SQLite gives naive UTC, PostgreSQL aware: the same instant must hash the same.
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.isoformat()


def approval_hash(*, session: Session, slug: str) -> str:
    """What approving ``slug`` approves, as one SHA-256 (hex): the campaign's source hash and,
    for every post, its key, time, state and content hash (the rendered text, links and
    media).  Shown with the campaign to an approver, and required back by
    :func:`approve_campaign`."""
    campaign = _get(session, slug)
    digest = hashlib.sha256(b"glo-campaign-approval-v1\x00")
    digest.update(campaign.source_hash.encode("utf-8"))
    rows = session.execute(
        select(Post.idempotency_key, Post.scheduled_at, Post.state, Post.content_hash)
        .where(Post.campaign_id == campaign.id)
        .order_by(Post.idempotency_key)
    )
    for key, when, state, content in rows:
        digest.update(f"\x00{key}\x1f{_utc_text(when)}\x1f{state.value}\x1f{content}".encode())
    return digest.hexdigest()


def approve_campaign(
    *,
    session: Session,
    slug: str,
    actor: str,
    shown_hash: str,
    now: datetime | None = None,
    media_root: Path | None = None,
) -> Campaign:
    """Approve draft ``slug`` as the approver saw it (``shown_hash``: its
    :func:`approval_hash` when it was shown) after checking it again (media in
    ``media_root``, by default the settings').  Raises :class:`ApprovalOutdated` if it
    changed since it was shown, InvalidInput if it has problems now, CampaignStateError if it
    is not a draft or changed since it was applied."""
    now = now or datetime.now(UTC)
    campaign = _get(session, slug)
    if campaign.status == CampaignStatus.APPROVED:
        return campaign
    if campaign.status != CampaignStatus.DRAFT:
        hint = "resume it instead" if campaign.status == CampaignStatus.PAUSED else None
        raise CampaignStateError(f"campaign {slug!r} is {campaign.status.value}", hint)
    if shown_hash != approval_hash(session=session, slug=slug):
        raise ApprovalOutdated(slug)
    file = campaign.source_path or f"{slug}.yaml"
    definition = read_campaign(
        campaign.source_text, file=file, base_dir=Path(file).parent, media_root=media_root
    )
    plan = plan_from_database(session=session, definition=definition, now=now)
    if plan.source_hash != campaign.source_hash:
        raise CampaignStateError(
            f"a template file of {slug!r} changed after the campaign was applied",
            f"apply it again (marketing campaign apply {file}), check the plan, then approve",
        )
    differ = _differences(session, campaign.id, plan.posts)
    if differ:
        raise CampaignStateError(
            f"{differ} post(s) of {slug!r} would now be planned differently than when it was "
            "applied (the reference data changed)",
            f"apply it again (marketing campaign apply {file}), check the plan, then approve",
        )
    campaign.status = CampaignStatus.APPROVED
    campaign.approved_by = actor
    campaign.approved_at = now
    campaign.approved_source_text = campaign.source_text
    campaign.approved_posts = approved_snapshot(session=session, campaign_id=campaign.id)
    session.flush()
    return campaign


SNAPSHOT_TEXT_POSTS = 2_000
"""Posts whose content an approved version keeps (the first by time); of the others only
their content hash, so a campaign of a year of daily posts stays a small row."""


def approved_snapshot(*, session: Session, campaign_id: int) -> dict[str, Any]:
    """Every post of the campaign as approved: idempotency key -> channel, community slug,
    occurrence key, time (UTC ISO), content hash, and the content itself for the first
    :data:`SNAPSHOT_TEXT_POSTS` by time."""
    rows = session.execute(
        select(
            Post.idempotency_key,
            Post.channel,
            Community.slug,
            Post.occurrence_key,
            Post.scheduled_at,
            Post.content_hash,
        )
        .join(Community, Community.id == Post.community_id)
        .where(Post.campaign_id == campaign_id, Post.state != PostState.CANCELLED)
        .order_by(Post.scheduled_at, Post.idempotency_key)
    ).all()
    shown = {row[0] for row in rows[:SNAPSHOT_TEXT_POSTS]}
    contents: dict[str, dict[str, Any]] = {}
    if shown:
        contents = {
            key: content
            for key, content in session.execute(
                select(Post.idempotency_key, Post.content).where(
                    Post.campaign_id == campaign_id, Post.idempotency_key.in_(shown)
                )
            )
        }
    return {
        key: {
            "channel": channel.value,
            "community": community,
            "occurrence": occurrence,
            "at": _utc_text(when),
            "hash": content_hash,
            **({"content": contents[key]} if key in contents else {}),
        }
        for key, channel, community, occurrence, when, content_hash in rows
    }


FOUR_EYES_APPLIED = "applied-change"
"""Refusal code: the approver applied a change to the campaign since its last approval."""
FOUR_EYES_CREATED = "created"
"""Refusal code: the approver created the campaign, and it was never approved."""


def four_eyes_refusal(*, session: Session, campaign: Campaign, actor: str) -> str | None:
    """Why ``actor`` (a username) may not approve ``campaign``: :data:`FOUR_EYES_APPLIED` or
    :data:`FOUR_EYES_CREATED`; None if they may."""
    last_approval = session.scalar(
        select(func.max(AuditLog.at)).where(
            AuditLog.object_type == "campaign",
            AuditLog.object_id == campaign.slug,
            AuditLog.action == APPROVE_ACTION,
        )
    )
    applied = select(AuditLog.id).where(
        AuditLog.object_type == "campaign",
        AuditLog.object_id == campaign.slug,
        AuditLog.action == APPLY_ACTION,
        AuditLog.actor == actor,
    )
    if last_approval is not None:
        applied = applied.where(AuditLog.at > last_approval)
    if session.scalars(applied.limit(1)).first() is not None:
        return FOUR_EYES_APPLIED
    if campaign.approved_at is None and last_approval is None and campaign.created_by == actor:
        return FOUR_EYES_CREATED
    return None


def _differences(session: Session, campaign_id: int, posts: list[PlannedPost]) -> int:
    from marketing.post_edits import with_overrides

    posts = with_overrides(session=session, campaign_id=campaign_id, posts=posts)
    stored = {
        key: (content, when, highlight)
        for key, content, when, highlight in session.execute(
            select(
                Post.idempotency_key, Post.content_hash, Post.scheduled_at, Post.highlight_id
            ).where(Post.campaign_id == campaign_id, Post.state.in_(list(EDITABLE)))
        )
    }
    planned = {p.idempotency_key: (p.content_hash, p.scheduled_at, p.highlight_id) for p in posts}
    differ = sum(1 for key, value in stored.items() if planned.get(key) != value)
    every = set(
        session.scalars(select(Post.idempotency_key).where(Post.campaign_id == campaign_id))
    )
    return differ + sum(1 for key in planned if key not in every)


def _move(
    session: Session, slug: str, allowed: tuple[CampaignStatus, ...], to: CampaignStatus
) -> tuple[Campaign, bool]:
    """Campaign ``slug`` moved to status ``to``, and whether it moved (False: it was there)."""
    campaign = _get(session, slug)
    if campaign.status == to:
        return campaign, False
    if campaign.status not in allowed:
        raise CampaignStateError(
            f"campaign {slug!r} is {campaign.status.value}; it can be made {to.value} only "
            f"when {' or '.join(s.value for s in allowed)}"
        )
    campaign.status = to
    session.flush()
    return campaign, True


def pause_campaign(*, session: Session, slug: str) -> bool:
    """Stop publishing ``slug`` for now (approved -> paused); False if it was paused already."""
    return _move(session, slug, (CampaignStatus.APPROVED,), CampaignStatus.PAUSED)[1]


def resume_campaign(*, session: Session, slug: str) -> bool:
    """Publish ``slug`` again (paused -> approved; posts past their time go out now); False if
    it was approved already."""
    return _move(session, slug, (CampaignStatus.PAUSED,), CampaignStatus.APPROVED)[1]


def cancel_campaign(*, session: Session, slug: str, now: datetime | None = None) -> int:
    """Cancel ``slug`` and every post of it not yet publishing; the number of posts cancelled."""
    now = now or datetime.now(UTC)
    campaign, _moved = _move(
        session,
        slug,
        (
            CampaignStatus.DRAFT,
            CampaignStatus.APPROVED,
            CampaignStatus.PAUSED,
            CampaignStatus.COMPLETED,
        ),
        CampaignStatus.CANCELLED,
    )
    result = session.execute(
        update(Post)
        .where(Post.campaign_id == campaign.id, Post.state.in_(list(CANCELLABLE)))
        .values(
            state=PostState.CANCELLED,
            state_changed_at=now,
            updated_at=now,
            action_hint="the campaign was cancelled",
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class CampaignReport:
    """A campaign and how its posts stand."""

    campaign: Campaign
    states: Counter[PostState]
    by_channel: dict[ChannelKind, Counter[PostState]]
    communities: int
    next_posts: list[tuple[datetime, str, ChannelKind]]  # (time, community slug, channel)


def campaign_report(*, session: Session, slug: str, upcoming: int = 5) -> CampaignReport:
    """``slug``'s status, post counts by state and channel, and its next posts."""
    campaign = _get(session, slug)
    by_channel: dict[ChannelKind, Counter[PostState]] = {}
    states: Counter[PostState] = Counter()
    for channel, state, count in session.execute(
        select(Post.channel, Post.state, func.count())
        .where(Post.campaign_id == campaign.id)
        .group_by(Post.channel, Post.state)
    ):
        by_channel.setdefault(channel, Counter())[state] += count
        states[state] += count
    communities = session.scalar(
        select(func.count(func.distinct(Post.community_id))).where(Post.campaign_id == campaign.id)
    )
    next_posts = [
        (when, community, channel)
        for when, community, channel in session.execute(
            select(Post.scheduled_at, Community.slug, Post.channel)
            .join(Community, Community.id == Post.community_id)
            .where(Post.campaign_id == campaign.id, Post.state.in_(list(EDITABLE)))
            .order_by(Post.scheduled_at, Community.slug)
            .limit(upcoming)
        )
    ]
    return CampaignReport(campaign, states, by_channel, int(communities or 0), next_posts)


def list_campaigns(*, session: Session) -> list[tuple[Campaign, Counter[PostState]]]:
    """Every campaign, newest window first, with its post counts by state."""
    counts: dict[int, Counter[PostState]] = {}
    for campaign_id, state, count in session.execute(
        select(Post.campaign_id, Post.state, func.count()).group_by(Post.campaign_id, Post.state)
    ):
        counts.setdefault(campaign_id, Counter())[state] += count
    campaigns = session.scalars(
        select(Campaign).order_by(Campaign.window_start.desc(), Campaign.slug)
    )
    return [(c, counts.get(c.id, Counter())) for c in campaigns]
