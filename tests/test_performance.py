"""Snapshots and the community-performance rollup: sums are right and replays change nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from channels.base import Metrics
from marketing.db import make_engine, session_scope
from marketing.engagement import engagement_rate
from marketing.models import (
    ChannelKind,
    CommunityPerformance,
    Delivery,
    DeliveryState,
    EmailEvent,
    EmailEventKind,
    MetricSnapshot,
    Post,
    PostState,
    Subscriber,
)
from marketing.performance import (
    keys_for_post,
    rebuild,
    record_email_event,
    rollup,
    store_collection,
    store_snapshots,
)
from tests.test_publishing_states import make_posts

# 16:30 UTC is 23:30 in Bangkok; 17:30 UTC is already the next local day.
T0 = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)


def publish(engine: Engine, post_ids: list[int], at: datetime = T0) -> None:
    with session_scope(engine) as s:
        for i in post_ids:
            post = s.get(Post, i)
            assert post is not None
            post.state, post.published_at, post.external_id = PostState.PUBLISHED, at, f"x{i}"


def perf(session: Session) -> dict[tuple[int, str, date], tuple[int, ...]]:
    session.commit()
    return {
        (r.community_id, r.channel.value, r.day): (
            r.posts,
            r.views,
            r.reactions,
            r.comments,
            r.shares,
            r.clicks,
            r.opens,
            r.unsubscribes,
            r.emails_sent,
        )
        for r in session.scalars(select(CommunityPerformance))
    }


def m(at: datetime, views: int, reactions: int = 0) -> Metrics:
    return Metrics(
        external_id="x",
        collected_at=at,
        views=views,
        reactions=reactions,
        comments=1,
        shares=None,
        raw={"views": views},
    )


def test_snapshots_roll_up_by_local_day_and_replay_changes_nothing(
    engine: Engine, session: Session
) -> None:
    a, b = make_posts(engine, 2)
    publish(engine, [a, b])
    batch1 = [(a, m(T0 + timedelta(minutes=10), 100, 5)), (b, m(T0 + timedelta(minutes=10), 40))]
    batch2 = [(a, m(T0 + timedelta(hours=2), 250, 9))]  # next local day
    keys = set()
    with session_scope(engine) as s:
        keys |= store_snapshots(session=s, items=batch1)
        keys |= store_snapshots(session=s, items=batch2)
        keys |= keys_for_post(session=s, post_id=a) | keys_for_post(session=s, post_id=b)
        rollup(session=s, keys=keys)
    first = perf(session)
    post_a = session.get(Post, a)
    assert post_a is not None
    ca = post_a.community_id
    day1, day2 = date(2026, 12, 1), date(2026, 12, 2)
    assert first[(ca, "facebook", day1)][:3] == (1, 100, 5)
    assert first[(ca, "facebook", day2)][:3] == (0, 150, 4)
    total_views = session.scalar(select(func.sum(CommunityPerformance.views)))
    assert total_views == 290  # 250 for a, 40 for b: growth is never counted twice

    with session_scope(engine) as s:  # replay both batches and roll up again
        again = store_snapshots(session=s, items=batch1 + batch2)
        rollup(session=s, keys=again | keys)
    assert perf(session) == first
    assert session.scalar(select(func.count()).select_from(MetricSnapshot)) == 3
    assert rebuild(engine=engine) == len(first)
    assert perf(session) == first


def test_a_late_older_snapshot_is_never_double_counted(engine: Engine, session: Session) -> None:
    (a,) = make_posts(engine, 1)
    publish(engine, [a])
    with session_scope(engine) as s:
        k = store_snapshots(session=s, items=[(a, m(T0 + timedelta(hours=3), 300))])
        k |= store_snapshots(session=s, items=[(a, m(T0 + timedelta(hours=2), 200))])
        rollup(session=s, keys=k)
    assert session.scalar(select(func.sum(CommunityPerformance.views))) == 300


def test_changes_within_a_batch_and_against_the_stored_snapshot(
    engine: Engine, session: Session
) -> None:
    """The changes stored for each snapshot (computed in SQL on PostgreSQL, in Python on
    SQLite): a batch holding several snapshots of a post, in any order, one older than the
    newest stored, one repeated, and a value the channel did not report."""
    a, b = make_posts(engine, 2)
    publish(engine, [a, b])
    h = [T0 + timedelta(hours=i) for i in range(6)]
    with session_scope(engine) as s:
        keys = store_snapshots(session=s, items=[(a, m(h[2], 200, 4))])
    with session_scope(engine) as s:
        keys |= store_snapshots(
            session=s,
            items=[
                (a, m(h[4], 450, 7)),
                (a, m(h[1], 100, 1)),  # older than the newest stored: no change counted
                (a, m(h[3], 300, 5)),
                (a, m(h[3], 999, 9)),  # the same moment again: not stored
                (b, m(h[0], 10)),
                (b, Metrics(external_id="x", collected_at=h[5], views=None, comments=3, raw={})),
            ],
        )
    got = {
        (r.post_id, r.collected_at): (r.views, r.d_views, r.d_reactions, r.d_comments, r.d_shares)
        for r in session.scalars(select(MetricSnapshot))
    }
    assert got == {
        (a, h[2]): (200, 200, 4, 1, 0),
        (a, h[1]): (100, 0, 0, 0, 0),
        (a, h[3]): (300, 100, 1, 0, 0),
        (a, h[4]): (450, 150, 2, 0, 0),
        (b, h[0]): (10, 10, 0, 1, 0),
        (b, h[5]): (None, 0, 0, 2, 0),
    }
    post_a, post_b = session.get(Post, a), session.get(Post, b)
    assert post_a is not None and post_b is not None
    # 16:30 UTC (h[0]) is still the 1st in Bangkok, 17:30 (h[1]) on are the 2nd.
    assert keys == {
        (post_a.community_id, ChannelKind.FACEBOOK, date(2026, 12, 2)),
        (post_b.community_id, ChannelKind.FACEBOOK, date(2026, 12, 1)),
        (post_b.community_id, ChannelKind.FACEBOOK, date(2026, 12, 2)),
    }


def test_a_collection_keeps_every_account_but_the_one_whose_snapshots_fail(
    engine: Engine, session: Session
) -> None:
    """A whole collection is stored in one transaction (first all at once); an account whose
    snapshots cannot be stored (a value too large for the column, on both databases) is
    rolled back to its own savepoint and reported, the other accounts' snapshots are kept,
    and storing the collection again adds no second copy of them."""
    a, b, c = make_posts(engine, 3)
    publish(engine, [a, b, c])
    h = [T0 + timedelta(hours=i) for i in range(3)]
    with session_scope(engine) as s:
        store_snapshots(session=s, items=[(a, m(h[0], 100)), (b, m(h[0], 10)), (c, m(h[0], 1))])
    collection = {
        "page-a": [(a, m(h[1], 150, 2))],
        "page-b": [(b, m(h[1], 20)), (b, m(h[2], 2**63))],  # too large for any integer column
        "page-c": [(c, m(h[1], 5))],
    }
    # A connection of its own, new: the temporary table PostgreSQL copies into is made in
    # the savepoint that is rolled back, and must be there again for each account.
    fresh = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with session_scope(fresh) as s:
            keys, failed = store_collection(session=s, batches=collection)
        assert set(failed) == {"page-b"}

        def stored() -> dict[tuple[int, datetime], tuple[int | None, int, int]]:
            session.commit()
            return {
                (r.post_id, r.collected_at): (r.views, r.d_views, r.d_reactions)
                for r in session.scalars(select(MetricSnapshot))
            }

        assert stored() == {
            (a, h[0]): (100, 100, 0),
            (b, h[0]): (10, 10, 0),
            (c, h[0]): (1, 1, 0),
            (a, h[1]): (150, 50, 2),
            (c, h[1]): (5, 4, 0),
        }
        community = {i: c for i, c in session.execute(select(Post.id, Post.community_id))}
        # 17:30 UTC (h[1]) is the 2nd in Bangkok; the failed account's snapshots add no key.
        assert keys == {
            (community[a], ChannelKind.FACEBOOK, date(2026, 12, 2)),
            (community[c], ChannelKind.FACEBOOK, date(2026, 12, 2)),
        }

        # The next pass, with the account's values fixed: its snapshots come, no others twice.
        collection["page-b"] = [(b, m(h[1], 20)), (b, m(h[2], 35))]
        with session_scope(fresh) as s:
            keys, failed = store_collection(session=s, batches=collection)
        assert failed == {}
        assert stored() == {
            (a, h[0]): (100, 100, 0),
            (b, h[0]): (10, 10, 0),
            (c, h[0]): (1, 1, 0),
            (a, h[1]): (150, 50, 2),
            (c, h[1]): (5, 4, 0),
            (b, h[1]): (20, 10, 0),
            (b, h[2]): (35, 15, 0),
        }
        assert (community[b], ChannelKind.FACEBOOK, date(2026, 12, 2)) in keys
        rebuild(engine=engine)
        session.commit()
        assert session.scalar(select(func.sum(CommunityPerformance.views))) == 150 + 35 + 5
    finally:
        fresh.dispose()


def test_email_events_and_deliveries_count(engine: Engine, session: Session) -> None:
    (post_id,) = make_posts(engine, 1, channel=ChannelKind.EMAIL)
    publish(engine, [post_id])
    with session_scope(engine) as s:
        post = s.get(Post, post_id)
        assert post is not None
        subs = s.scalars(
            select(Subscriber).where(Subscriber.community_id == post.community_id)
        ).all()
        for sub in subs:
            s.add(
                Delivery(
                    post_id=post_id, subscriber_id=sub.id, state=DeliveryState.SENT, sent_at=T0
                )
            )
        keys = keys_for_post(session=s, post_id=post_id)
        at = T0 + timedelta(minutes=5)
        for _ in range(2):  # a subscriber opening twice is one open
            keys |= record_email_event(
                session=s,
                post_id=post_id,
                subscriber_id=subs[0].id,
                kind=EmailEventKind.OPEN,
                occurred_at=at,
            )
        keys |= record_email_event(
            session=s,
            post_id=post_id,
            subscriber_id=subs[1].id,
            kind=EmailEventKind.OPEN,
            occurred_at=at,
        )
        keys |= record_email_event(
            session=s,
            post_id=post_id,
            subscriber_id=subs[1].id,
            kind=EmailEventKind.CLICK,
            url="https://x.example",
            occurred_at=at,
        )
        keys |= record_email_event(
            session=s,
            post_id=post_id,
            subscriber_id=subs[2].id,
            kind=EmailEventKind.UNSUBSCRIBE,
            occurred_at=at,
        )
        rollup(session=s, keys=keys)
        community_id = post.community_id
    row = perf(session)[(community_id, "email", date(2026, 12, 1))]
    posts, views, _r, _c, _s, clicks, opens, unsubscribes, sent = row
    assert (posts, views, clicks, opens, unsubscribes, sent) == (1, 0, 1, 2, 1, 3)
    rate = session.scalars(select(CommunityPerformance.engagement_rate)).one()
    assert abs(rate - 1 / 3) < 1e-6
    gone = session.scalars(select(Subscriber).where(Subscriber.unsubscribed_at.is_not(None)))
    assert len(gone.all()) == 1


def test_one_person_clicking_five_times_counts_once(engine: Engine, session: Session) -> None:
    """Clicks and opens count people, so an email's rate never passes 100 %; the raw events
    stay in ``EmailEvent``."""
    (post_id,) = make_posts(engine, 1, channel=ChannelKind.EMAIL)
    publish(engine, [post_id])
    with session_scope(engine) as s:
        post = s.get(Post, post_id)
        assert post is not None
        sub = s.scalars(
            select(Subscriber).where(Subscriber.community_id == post.community_id)
        ).first()
        assert sub is not None
        s.add(Delivery(post_id=post_id, subscriber_id=sub.id, state=DeliveryState.SENT, sent_at=T0))
        keys = keys_for_post(session=s, post_id=post_id)
        for n in range(5):
            for kind in (EmailEventKind.OPEN, EmailEventKind.CLICK):
                keys |= record_email_event(
                    session=s,
                    post_id=post_id,
                    subscriber_id=sub.id,
                    kind=kind,
                    url="https://x.example" if kind == EmailEventKind.CLICK else None,
                    # The first click is on the first day; the later ones on the next day.
                    occurred_at=T0 + timedelta(minutes=5) + timedelta(days=1 if n else 0),
                )
        rollup(session=s, keys=keys)
        community_id = post.community_id
    rows = perf(session)
    first = rows[(community_id, "email", date(2026, 12, 1))]
    _p, _v, _r, _c, _s, clicks, opens, _u, sent = first
    assert (clicks, opens, sent) == (1, 1, 1)
    later = rows.get((community_id, "email", date(2026, 12, 2)))
    assert later is None or (later[5], later[6]) == (0, 0)
    rates = session.scalars(select(CommunityPerformance.engagement_rate)).all()
    assert max(rates) <= 1.0
    events = select(func.count()).select_from(EmailEvent).where(EmailEvent.post_id == post_id)
    assert session.scalar(events) == 10


def test_engagement_rate_definition() -> None:
    class Row:
        views, reactions, comments, shares, clicks, emails_sent = 200, 10, 5, 3, 2, 0

    assert engagement_rate("facebook", Row()) == 0.1
    assert engagement_rate("email", Row()) == 0.0
