"""Metric tasks: collect engagement from the channels and keep community performance current."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from channels.base import Metrics
from channels.errors import AuthExpired, ChannelError
from marketing.db import get_engine, session_scope, utcnow
from marketing.models import AccountHealth, ChannelAccount, ChannelKind
from marketing.observability import count_metrics_collected
from marketing.performance import (
    DueMetrics,
    advance_schedule,
    due_for_metrics,
    rollup,
    store_collection,
)
from marketing.settings import MissingSecret
from tasks import wiring
from tasks.app import app
from tasks.housekeeping import record_heartbeat

log = logging.getLogger(__name__)


@app.task(name="marketing.collect_metrics", time_limit=600, soft_time_limit=560)
def collect_metrics(force: bool = False) -> dict[str, int]:
    """Fetch metrics for published posts whose collection time has come (``force``: all
    that are still collected), store snapshots and roll them up; return counts.

    The network first, then the database: every account's metrics are fetched, then stored
    together in one transaction (:func:`store_collection`: an account whose snapshots cannot
    be stored is rolled back to its own savepoint, the others' are kept) with the posts'
    next collection times, then rolled up once.  What was fetched is stored even if the
    pass is cut short (the soft time limit)."""
    engine = get_engine()
    fetched: dict[int, tuple[DueMetrics, list[tuple[int, Metrics]]]] = {}
    accounts_failed = 0
    collected = 0
    try:
        for due in due_for_metrics(engine=engine, force=force):
            with session_scope(engine) as session:
                account_row = session.get(ChannelAccount, due.account_id)
                assert account_row is not None
                if account_row.health != AccountHealth.OK:
                    continue
                kind, external_id = account_row.kind.value, account_row.external_id
                display_name, secret_name = account_row.display_name, account_row.secret_name
            try:
                # The encrypted store first (connected accounts, refreshed by google-auth),
                # else the environment or secrets file, as for publishing.
                account = wiring.account_of(
                    account_id=due.account_id,
                    kind=kind,
                    external_id=external_id,
                    display_name=display_name,
                    secret_name=secret_name,
                    engine=engine,
                )
                metrics = wiring.publisher(due.channel).fetch_metrics(account, list(due.posts))
            except (ChannelError, MissingSecret) as error:
                accounts_failed += 1
                _note_account_problem(due.account_id, error)
                continue
            items = [(due.posts[m.external_id], m) for m in metrics if m.external_id in due.posts]
            fetched[due.account_id] = (due, items)
    finally:
        if fetched:
            collected, failed = _store(engine, fetched)
            accounts_failed += failed
    record_heartbeat("metrics", collected=collected, accounts_failed=accounts_failed)
    return {"collected": collected, "accounts_failed": accounts_failed}


def _store(
    engine: Engine, fetched: dict[int, tuple[DueMetrics, list[tuple[int, Metrics]]]]
) -> tuple[int, int]:
    """Store what :func:`collect_metrics` fetched, advance the stored posts' schedules and
    roll up; return how many snapshots were stored and how many accounts failed to store."""
    now = utcnow()
    with session_scope(engine) as session:
        touched, failed = store_collection(
            session=session, batches={account: items for account, (_, items) in fetched.items()}
        )
        stored = [
            (due, items) for account, (due, items) in fetched.items() if account not in failed
        ]
        # An account that failed keeps its collection times: it is tried again next pass.
        advance_schedule(
            session=session,
            post_ids=[post_id for due, _ in stored for post_id in due.posts.values()],
            now=now,
        )
    for account, error in failed.items():
        log.error("metrics for account %s could not be stored: %r", account, error)
    collected = 0
    for due, items in stored:
        collected += len(items)
        count_metrics_collected(channel=ChannelKind(due.channel).value, count=len(items))
    # One rollup for the whole pass: it recomputes whole rows, so rolling up after every
    # account redid the same community days once per account.
    if touched:
        with session_scope(engine) as session:
            rollup(session=session, keys=touched)
    return collected, len(failed)


def _note_account_problem(account_id: int, error: Exception) -> None:
    """Record on the account what went wrong, so staff see it before its next post is due."""
    with session_scope() as session:
        account = session.get(ChannelAccount, account_id)
        assert account is not None
        if isinstance(error, AuthExpired | MissingSecret):
            account.health = AccountHealth.NEEDS_RECONNECT
        account.health_message = str(error)[:2000]
        account.health_checked_at = utcnow()
    log.warning("metrics for account %s failed: %s", account_id, error)


@app.task(name="marketing.rollup_recent", time_limit=300, soft_time_limit=280)
def rollup_recent(minutes: float = 15.0) -> int:
    """Refresh the performance rows of posts published in the last ``minutes``."""
    from datetime import timedelta

    from marketing.performance import recent_keys

    with session_scope() as session:
        keys = recent_keys(session=session, since=utcnow() - timedelta(minutes=minutes))
        return rollup(session=session, keys=keys)


@app.task(name="marketing.rollup_all", time_limit=1800, soft_time_limit=1700)
def rollup_all() -> int:
    """Recompute every community-performance row from the source records."""
    from marketing.performance import rebuild

    return rebuild(engine=get_engine())


__all__ = ["collect_metrics", "rollup_all"]
