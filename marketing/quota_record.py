"""The YouTube quota a day's attempts have spent, read from the database: the record that
rebuilds the quota ledger when Redis has forgotten it (a restart; Redis keeps no copy).

Each publishing attempt is written (outcome ``unknown``) *before* the adapter reserves its
``videos.insert`` and calls YouTube, so counting a quota day's YouTube attempts counts every
upload that may have spent quota, in flight and unknown ones included.  It errs towards
"spent" on purpose:

- an attempt refused by our own ledger (``error_code`` ``quota:...``) made no call and is not
  counted; every other attempt counts as one upload, even one that failed before reaching
  YouTube (an unreadable video, a missing token);
- an attempt that has started but not yet reserved when the counter is rebuilt is counted
  now and reserved again when it gets there: at most one extra unit per attempt in flight.
  That is why YouTube posts are claimed one a message (its spec's ``posts_per_message``):
  a claimed batch would be counted as that many uploads before any was made.

Unit-costing calls (``videos.list``, ``playlistItems.list``) leave no row, so the units and
search buckets start again from 0: they are 10,000 a day and this service spends a few
hundred.  An upload session that had to be opened twice within one attempt cost two.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Engine, func, or_, select

from channels.quota import PACIFIC, REFUSAL_CODE_PREFIX, UPLOADS, QuotaSeed, next_reset
from marketing.db import session_scope
from marketing.models import Attempt, ChannelAccount, ChannelKind, Post


def uploads_attempted(
    *, engine: Engine | None, account: str, day: date, quota_project: str | None
) -> int:
    """YouTube upload attempts started on the quota ``day`` (a Pacific date) under the
    ledger key ``account``: all channels' when it is ``quota_project``, else one channel's."""
    start = datetime.combine(day, time(0), tzinfo=PACIFIC)
    query = (
        select(func.count(Attempt.id))
        .join(Post, Post.id == Attempt.post_id)
        .where(
            Post.channel == ChannelKind.YOUTUBE,
            Attempt.started_at >= start,
            Attempt.started_at < next_reset(start),
            or_(
                Attempt.error_code.is_(None),
                Attempt.error_code.not_like(f"{REFUSAL_CODE_PREFIX}%"),
            ),
        )
    )
    if not quota_project or account != quota_project:
        query = query.join(ChannelAccount, ChannelAccount.id == Post.channel_account_id).where(
            ChannelAccount.external_id == account
        )
    with session_scope(engine) as session:
        return session.scalar(query) or 0


def quota_seed(*, engine: Engine | None, quota_project: str | None) -> QuotaSeed:
    """The ledger's ``seed``: a day's upload attempts for the uploads bucket, 0 for the
    buckets no row records.  ``engine`` None: the process's configured database, looked up
    on each call (so it is the right one again after a fork disposed the engines)."""

    def seed(account: str, bucket: str, day: date) -> int:
        if bucket != UPLOADS:
            return 0
        return uploads_attempted(
            engine=engine, account=account, day=day, quota_project=quota_project
        )

    return seed
