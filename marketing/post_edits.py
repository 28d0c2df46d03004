"""One post at a time: change its text, skip its occurrence, move it to another time.

Each change is recorded as a :class:`~marketing.models.PostOverride` of the campaign's plan,
so applying the campaign again keeps it (:func:`with_overrides` lays the overrides over
every new plan before it is compared with the stored posts), and the post row itself is
changed, so what the publisher claims is the changed post.

Exactly once still holds: a post is changed only while it is ``scheduled`` -- not yet
claimed by the dispatcher (``queued``), held by a worker (``publishing``) or gone out -- and
the change is one conditional ``UPDATE ... WHERE state = 'scheduled'``.  Whichever commits
first wins: if the dispatcher claimed the post in between, the update changes no row and
the person is told it is too late (:class:`~marketing.publishing.PostActionRefused`,
``code="not_editable"``); if the change committed first, the dispatcher claims the changed
row.  The marker the channel finds a publication by is the idempotency key, never the text,
so reconciliation is unaffected.

A new text is a change to what the approver approved (the approval covers every post's text):
the campaign goes back to draft, as when a changed file is applied, and the caller records
the change as the campaign's ``campaign.apply`` in the audit log, so the four-eyes rule keeps
whoever rewrote it from approving it.  Moving a post and skipping one are operational and
need no new approval.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns.planning import PlannedPost, content_hash
from channels.registry import limits_for
from marketing.db import utcnow
from marketing.models import Campaign, CampaignStatus, Post, PostOverride, PostState
from marketing.publishing import PostActionRefused

TEXT_KEYS: dict[str, tuple[str, ...]] = {
    "facebook": ("message",),
    "youtube": ("title", "description"),
    "email": ("subject", "preheader", "html"),
}
"""The content keys of each channel that a person may rewrite on one post."""

MAX_TEXT = 70_000  # more than any channel takes (Facebook: 63,206 characters)


def _post(session: Session, post_id: int) -> Post:
    post = session.get(Post, post_id)
    if post is None:
        raise PostActionRefused(f"there is no post {post_id}", code="no_post", id=post_id)
    if post.state != PostState.SCHEDULED:
        raise PostActionRefused(
            f"post {post_id} is {post.state.value}; only a post still waiting (scheduled) "
            "can be changed",
            code="not_editable",
            id=post_id,
            state=post.state.value,
        )
    return post


def _override(session: Session, post: Post, actor: str, now: datetime) -> PostOverride:
    found = session.scalars(select(PostOverride).where(PostOverride.post_id == post.id)).first()
    if found is None:
        found = PostOverride(post_id=post.id, content={}, skipped=False)
        session.add(found)
    found.changed_by = actor
    found.changed_at = now
    return found


def _update_waiting(session: Session, post: Post, **values: Any) -> None:
    """Change ``post`` only if it is still scheduled (see the module docstring)."""
    done = session.execute(
        update(Post)
        .where(Post.id == post.id, Post.state == PostState.SCHEDULED)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise PostActionRefused(
            f"post {post.id} was taken for publishing meanwhile and can no longer be changed",
            code="not_editable",
            id=post.id,
            state=PostState.QUEUED.value,
        )
    session.refresh(post)


def change_text(
    *,
    session: Session,
    post_id: int,
    text: dict[str, str],
    actor: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """Rewrite the text keys ``text`` of waiting post ``post_id`` (checked against its
    channel's limits); return the values they had.  An approved or paused campaign goes back
    to draft.  The caller commits and audits the campaign's change."""
    now = now or utcnow()
    post = _post(session, post_id)
    allowed = TEXT_KEYS.get(post.channel.value, ())
    for key, value in text.items():
        if key not in allowed or len(value) > MAX_TEXT:
            raise PostActionRefused(
                f"{key} cannot be rewritten on a {post.channel.value} post",
                code="not_a_text",
                key=key,
            )
    changed = {k: v for k, v in text.items() if v != post.content.get(k)}
    if not changed:
        raise PostActionRefused("nothing changed", code="no_change", id=post_id)
    content = {**post.content, **changed}
    problems = limits_for(post.channel.value).content_problems(content)
    if problems:
        first = problems[0]
        raise PostActionRefused(
            f"{first.field}: {first.message}",
            code="over_limits",
            field=first.field,
            problem=first.message,
        )
    before = {k: str(post.content.get(k) or "") for k in changed}
    _update_waiting(
        session, post, content=content, content_hash=content_hash(content), updated_at=now
    )
    override = _override(session, post, actor, now)
    override.content = {**(override.content or {}), **changed}
    campaign = session.get(Campaign, post.campaign_id)
    if campaign is not None and campaign.status in (CampaignStatus.APPROVED, CampaignStatus.PAUSED):
        campaign.status = CampaignStatus.DRAFT  # approved text changed: approve it again
        campaign.approved_by = None
        campaign.approved_at = None
    return before


def skip_occurrence(
    *, session: Session, post_id: int, actor: str, now: datetime | None = None
) -> Post:
    """Skip waiting post ``post_id``: it is cancelled and marked skipped (re-planning leaves
    a cancelled post alone).  The caller commits."""
    now = now or utcnow()
    post = _post(session, post_id)
    _update_waiting(
        session,
        post,
        state=PostState.CANCELLED,
        state_changed_at=now,
        action_hint="skipped by a person (this occurrence only)",
        updated_at=now,
    )
    _override(session, post, actor, now).skipped = True
    return post


def reschedule(
    *,
    session: Session,
    post_id: int,
    when: datetime,
    actor: str,
    now: datetime | None = None,
) -> datetime:
    """Move waiting post ``post_id`` to ``when`` (aware, in the future); return its old
    time.  A post that tells its channel when to make it public (YouTube's ``publish_at``)
    has that moved by as much.  The caller commits."""
    now = now or utcnow()
    post = _post(session, post_id)
    if when.tzinfo is None:
        raise ValueError("when must be aware")
    if when <= now:
        raise PostActionRefused("the new time has passed already", code="in_the_past", id=post_id)
    before = post.scheduled_at
    moved = when - before
    values: dict[str, Any] = {"scheduled_at": when, "next_try_at": when, "updated_at": now}
    override = _override(session, post, actor, now)
    publish_at = post.content.get("publish_at")
    if isinstance(publish_at, str):
        shifted = (datetime.fromisoformat(publish_at) + moved).astimezone(UTC).isoformat()
        content = {**post.content, "publish_at": shifted}
        values |= {"content": content, "content_hash": content_hash(content)}
        override.content = {**(override.content or {}), "publish_at": shifted}
    _update_waiting(session, post, **values)
    override.scheduled_at = when
    return before


def with_overrides(
    *, session: Session, campaign_id: int | None, posts: list[PlannedPost]
) -> list[PlannedPost]:
    """``posts`` (a new plan of campaign ``campaign_id``) with the campaign's overrides laid
    over them: rewritten text and moved times win over the plan."""
    if campaign_id is None:
        return posts
    rows = session.execute(
        select(Post.idempotency_key, PostOverride.content, PostOverride.scheduled_at)
        .join(PostOverride, PostOverride.post_id == Post.id)
        .where(Post.campaign_id == campaign_id)
    ).all()
    if not rows:
        return posts
    overrides = {key: (content or {}, when) for key, content, when in rows}
    laid: list[PlannedPost] = []
    for post in posts:
        found = overrides.get(post.idempotency_key)
        if found is None:
            laid.append(post)
            continue
        content = {**post.content, **found[0]}
        laid.append(
            dataclasses.replace(
                post,
                content=content,
                content_hash=content_hash(content),
                scheduled_at=found[1] or post.scheduled_at,
            )
        )
    return laid


def override_of(session: Session, post_id: int) -> PostOverride | None:
    """The person's changes to post ``post_id``, if any."""
    return session.scalars(select(PostOverride).where(PostOverride.post_id == post_id)).first()
