"""What changed in a campaign since its last approved version: the approver's view.

:func:`campaigns.lifecycle.approve_campaign` keeps the file and every post as approved
(``Campaign.approved_source_text``, ``Campaign.approved_posts``).  :func:`approval_diff`
compares them with the campaign now: the file line by line (its settings), and each post's
text field by field (posts added, removed and changed).  The page shows the diff with the
campaign's :func:`~campaigns.lifecycle.approval_hash`, and the approval is refused if the
campaign changed after the page was shown (:class:`~campaigns.lifecycle.ApprovalOutdated`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from campaigns.lifecycle import approved_snapshot
from marketing.models import Campaign

TEXT_KEYS = (
    "message",
    "link",
    "photo",
    "video",
    "video_title",
    "title",
    "description",
    "tags",
    "subject",
    "preheader",
    "sender_name",
    "html",
    "text",
)


@dataclass
class PostDiff:
    key: str
    channel: str
    community: str
    occurrence: str
    change: str  # added, removed, changed
    fields: list[tuple[str, list[str]]] = field(default_factory=list)  # key -> diff lines


@dataclass
class ApprovalDiff:
    approved: bool  # whether there is an approved version to compare with
    settings: list[str]  # unified diff lines of the file
    posts: list[PostDiff]

    @property
    def empty(self) -> bool:
        return not self.settings and not self.posts


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _lines(before: str, after: str) -> list[str]:
    return [
        line.rstrip("\n")
        for line in difflib.unified_diff(
            before.splitlines(), after.splitlines(), "approved", "now", n=1, lineterm=""
        )
    ][2:]


def approval_diff(*, session: Session, campaign: Campaign) -> ApprovalDiff:
    """``campaign`` now against its last approved version (nothing to compare: every post is
    new, ``approved`` False)."""
    before_posts: dict[str, Any] = campaign.approved_posts or {}
    now_posts = approved_snapshot(session=session, campaign_id=campaign.id)
    settings = _lines(campaign.approved_source_text or "", campaign.source_text)
    posts: list[PostDiff] = []
    for key in sorted(
        set(before_posts) | set(now_posts),
        key=lambda k: (
            (now_posts.get(k) or before_posts[k])["at"],
            (now_posts.get(k) or before_posts[k])["community"],
            k,
        ),
    ):
        old, new = before_posts.get(key), now_posts.get(key)
        shown = new or old
        assert shown is not None
        change = "added" if old is None else "removed" if new is None else "changed"
        diff = PostDiff(key, shown["channel"], shown["community"], shown["occurrence"], change)
        texts_kept = all(side is None or "content" in side for side in (old, new))
        for name in TEXT_KEYS if texts_kept else ():
            a = _text((old or {}).get("content", {}).get(name))
            b = _text((new or {}).get("content", {}).get(name))
            if a != b:
                diff.fields.append((name, _lines(a, b)))
        if not texts_kept and old is not None and new is not None and old["hash"] != new["hash"]:
            # a post beyond the ones whose text is kept: its content changed, shown by hash
            diff.fields.append(("content_hash", [f"-{old['hash']}", f"+{new['hash']}"]))
        if old is not None and new is not None and old["at"] != new["at"]:
            diff.fields.append(("time", [f"-{old['at']}", f"+{new['at']}"]))
        if diff.fields or change != "changed":
            posts.append(diff)
    return ApprovalDiff(
        approved=campaign.approved_source_text is not None, settings=settings, posts=posts
    )
