"""Taking a published post down from its channel on request (a person in a photo withdrew
consent, a complaint): the channel removes it (Facebook: the post is deleted; YouTube: the
video is deleted, or made private), and the post keeps who asked and why, in its row and in
the audit log.

E-mail cannot be recalled, so an e-mail post is refused.  The post stays ``published`` (it
was, and the reports count it); ``taken_down_at`` says it is no longer on the channel, and its
metrics are no longer collected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from channels import registry
from channels.base import Account, Capability, Publisher
from marketing.db import utcnow
from marketing.models import AuditLog, ChannelAccount, ChannelKind, Post, PostState
from marketing.settings import get_secret

__all__ = ["TakedownRefused", "Takedown", "take_down_post"]


class TakedownRefused(ValueError):
    """A takedown that cannot be done; the message says why."""


@dataclass(frozen=True)
class Takedown:
    post_id: int
    channel: ChannelKind
    external_id: str
    removed: bool  # False: the channel no longer had it


def take_down_post(
    *,
    session: Session,
    post_id: int,
    reason: str,
    by: str,
    publisher_for: Callable[[ChannelKind], Publisher],
    private: bool = False,
    now: datetime | None = None,
) -> Takedown:
    """Remove published post ``post_id`` from its channel through ``publisher_for(channel)``
    (``private``: make it private, where the channel allows) and record ``by`` and
    ``reason`` (TakedownRefused for a post that cannot be taken down;
    the channel's own errors are raised as they come, and nothing is recorded then)."""
    now = now or utcnow()
    reason, by = reason.strip(), by.strip()
    if not reason or not by:
        raise TakedownRefused("say who asked (--by) and why (--reason)")
    post = session.get(Post, post_id)
    if post is None:
        raise TakedownRefused(f"there is no post {post_id}")
    spec = registry.spec_for(post.channel)
    if not spec.can(Capability.TAKE_DOWN):
        raise TakedownRefused(
            f"post {post_id} is on {spec.label_en}: sent messages cannot be recalled"
            if spec.can(Capability.SEND_TO_MANY)
            else f"{spec.label_en} cannot take a post down"
        )
    if post.taken_down_at is not None:
        raise TakedownRefused(
            f"post {post_id} was taken down already ({post.taken_down_at:%Y-%m-%d %H:%M} UTC)"
        )
    if post.state != PostState.PUBLISHED or not post.external_id:
        raise TakedownRefused(
            f"post {post_id} is {post.state.value}, not published on its channel"
            + ("" if post.state != PostState.PUBLISHED else " (no channel id recorded)")
        )
    row = session.get(ChannelAccount, post.channel_account_id)
    assert row is not None
    account = Account(
        kind=row.kind.value,
        external_id=row.external_id,
        display_name=row.display_name,
        token=get_secret(row.secret_name) if row.secret_name else None,
    )
    if private and not spec.can(Capability.MAKE_PRIVATE):
        able = " or ".join(s.label_en for s in registry.with_capability(Capability.MAKE_PRIVATE))
        raise TakedownRefused(f"only a {able} post can be made private; leave out --private")
    removed = publisher_for(post.channel).take_down(account, post.external_id, private=private)
    post.taken_down_at = now
    post.takedown_by = by[:200]
    post.takedown_reason = reason[:2000]
    post.metrics_due_at = None
    session.add(
        AuditLog(
            actor=by[:80],
            action="post.takedown",
            object_type="post",
            object_id=str(post.id),
            detail={
                "reason": reason[:2000],
                "channel": post.channel.value,
                "external_id": post.external_id,
                "removed": removed,
                "how": "private" if private else "delete",
            },
            at=now,
        )
    )
    session.flush()
    return Takedown(post.id, post.channel, post.external_id, removed)
