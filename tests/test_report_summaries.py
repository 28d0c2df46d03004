"""Reports read whole months from the monthly summary and the programme's days from the daily
one (``marketing.performance.summarise``); they must give exactly what summing every daily
record gives, for any period, on both databases."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from marketing.models import (
    ChannelKind,
    Community,
    CommunityMonthPerformance,
    CommunityPerformance,
    ProgrammeDayPerformance,
)
from marketing.performance import rollup, summarise, summarise_all
from marketing.reports.period import Period
from marketing.reports.queries import _daily, _now_and_before, _ranks, whole_months
from marketing.reports.rows import CHANNELS, RAW_FIELDS, Metrics

FIRST, LAST = date(2027, 11, 20), date(2028, 3, 10)  # a new year and a leap February


def p(start: str, end: str) -> Period:
    return Period(start=date.fromisoformat(start), end=date.fromisoformat(end))


@pytest.mark.parametrize(
    ("period", "months", "rest"),
    [
        (p("2028-01-01", "2028-01-31"), ["2028-01-01"], []),
        (p("2028-01-02", "2028-01-31"), [], [p("2028-01-02", "2028-01-31")]),
        (p("2028-01-01", "2028-01-30"), [], [p("2028-01-01", "2028-01-30")]),
        (p("2028-02-01", "2028-02-29"), ["2028-02-01"], []),  # leap February
        (p("2028-02-01", "2028-02-28"), [], [p("2028-02-01", "2028-02-28")]),
        (
            p("2027-12-15", "2028-03-03"),
            ["2028-01-01", "2028-02-01"],
            [p("2027-12-15", "2027-12-31"), p("2028-03-01", "2028-03-03")],
        ),
        (p("2028-03-05", "2028-03-05"), [], [p("2028-03-05", "2028-03-05")]),
        (
            p("2027-11-01", "2028-10-31"),
            [
                f"{y}-{m:02d}-01"
                for y, m in [(2027, 11), (2027, 12)] + [(2028, n) for n in range(1, 11)]
            ],
            [],
        ),
    ],
)
def test_whole_months_cut_a_period_into_months_and_leftover_days(
    period: Period, months: list[str], rest: list[Period]
) -> None:
    assert whole_months(period) == ([date.fromisoformat(m) for m in months], rest)
    # Together they are every day of the period, once.
    days = [d for m in whole_months(period)[0] for d in _month_days(m)]
    days += [d for r in whole_months(period)[1] for d in r.each_day()]
    assert sorted(days) == period.each_day()


def _month_days(month: date) -> list[date]:
    out, day = [], month
    while day.month == month.month:
        out.append(day)
        day += timedelta(days=1)
    return out


def _load(session: Session) -> list[dict[str, object]]:
    """Random records for five communities (one with none), as a report would find them."""
    rng = random.Random(20271120)
    ids = []
    for n in range(5):
        community = Community(slug=f"c-{n}", name_th=f"ชุมชน {n}", name_en=f"C {n}", province="น่าน")
        session.add(community)
        session.flush()
        ids.append(community.id)
    rows = []
    day = FIRST
    while day <= LAST:
        for community_id in ids[:-1]:
            for channel in CHANNELS:
                if rng.random() < 0.3:
                    continue  # days without a record, as in real data
                email = channel == ChannelKind.EMAIL
                rows.append(
                    {
                        "community_id": community_id,
                        "channel": channel,
                        "day": day,
                        "posts": rng.randrange(3),
                        "views": 0 if email else rng.randrange(500),
                        "reactions": 0 if email else rng.randrange(40),
                        "comments": 0 if email else rng.randrange(10),
                        "shares": 0 if email else rng.randrange(5),
                        "clicks": rng.randrange(20),
                        "opens": rng.randrange(50) if email else 0,
                        "unsubscribes": rng.randrange(2) if email else 0,
                        "emails_sent": rng.randrange(200) if email else 0,
                    }
                )
        day += timedelta(days=1)
    session.execute(insert(CommunityPerformance), rows)
    summarise_all(session=session)
    session.commit()
    return rows


def _sums(rows: list[dict[str, object]], start: date, end: date) -> dict[tuple[int, str], Metrics]:
    """The reference: every daily record of the period added up in Python."""
    totals: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        day = row["day"]
        assert isinstance(day, date)
        if start <= day <= end:
            key = (int(str(row["community_id"])), ChannelKind(row["channel"]).value)
            for name in RAW_FIELDS:
                totals[key][name] += int(str(row[name]))
    return {key: Metrics.of_channel(key[1], values) for key, values in totals.items()}


PERIODS = [
    p("2028-01-01", "2028-01-31"),  # one whole month; the previous is December, whole too
    p("2028-01-10", "2028-02-29"),  # leftover days on one side, leap February whole
    p("2027-12-15", "2028-03-03"),  # leftovers on both sides; the previous starts before data
    p("2028-02-14", "2028-02-20"),  # a week: no whole month
    p("2027-11-20", "2028-03-10"),  # all the data
    p("2028-03-01", "2028-03-31"),  # a whole month partly after the data
]


@pytest.mark.parametrize("period", PERIODS, ids=lambda x: f"{x.start}..{x.end}")
def test_report_sums_from_summaries_equal_the_daily_records_added_up(
    session: Session, period: Period
) -> None:
    rows = _load(session)
    previous = period.previous()
    now_ref = _sums(rows, period.start, period.end)
    before_ref = _sums(rows, previous.start, previous.end)

    found = _now_and_before(session, period)
    got_now = {(c, ch): pair[0] for c, by in found.items() for ch, pair in by.items()}
    got_before = {(c, ch): pair[1] for c, by in found.items() for ch, pair in by.items()}
    zero = Metrics()
    assert {k: v for k, v in got_now.items() if v != zero} == {
        k: v for k, v in now_ref.items() if v != zero
    }
    assert {k: v for k, v in got_before.items() if v != zero} == {
        k: v for k, v in before_ref.items() if v != zero
    }

    one = next(iter(found))
    assert _now_and_before(session, period, one) == {one: found[one]}

    # Ranks over the period: 1 + how many communities do better (ties share), from the sums.
    per_community: dict[int, list[Metrics]] = defaultdict(list)
    for (community_id, _), metrics in now_ref.items():
        per_community[community_id].append(metrics)
    ids = session.scalars(select(Community.id)).all()
    totals = {c: Metrics.total(per_community.get(c, [])) for c in ids}
    ranks = _ranks(session, period)
    for community_id, metrics in totals.items():
        better = sum(1 for m in totals.values() if m.interactions > metrics.interactions)
        assert ranks[community_id].by_interactions == 1 + better
        assert ranks[community_id].of == len(ids)

    # The programme's daily trend.
    daily = {(point.day, point.channel): point for point in _daily(session, period, None)}
    for day in period.each_day():
        for channel in CHANNELS:
            ref = Metrics.total(
                m for (c, ch), m in _sums(rows, day, day).items() if ch == channel.value
            )
            point = daily[(day, channel.value)]
            assert (point.views, point.interactions, point.reach) == (
                ref.views,
                ref.interactions,
                ref.reach,
            )


def test_rollup_keeps_the_summaries_and_running_it_again_changes_nothing(
    session: Session,
) -> None:
    rows = _load(session)
    # Records changed behind the summaries' back, then rolled up for two keys: those keys'
    # month and days are recomputed (rollup recomputes the records from the source records,
    # which this test has none of: both become zero).
    community_id = int(str(rows[0]["community_id"]))
    keys = {
        (community_id, ChannelKind.FACEBOOK, date(2028, 1, 5)),
        (community_id, ChannelKind.EMAIL, date(2028, 2, 29)),
    }
    rollup(session=session, keys=keys)
    session.commit()

    def month_row(month: date, channel: ChannelKind) -> tuple[int, ...]:
        m = CommunityMonthPerformance
        row = session.execute(
            select(*(getattr(m, name) for name in RAW_FIELDS)).where(
                m.community_id == community_id, m.month == month, m.channel == channel
            )
        ).one()
        return tuple(row)

    def month_ref(month: date, channel: ChannelKind) -> tuple[int, ...]:
        cp = CommunityPerformance
        records = session.execute(
            select(*(getattr(cp, name) for name in RAW_FIELDS)).where(
                cp.community_id == community_id,
                cp.channel == channel,
                cp.day.between(month, _month_days(month)[-1]),
            )
        ).all()
        return tuple(sum(r[i] for r in records) for i in range(len(RAW_FIELDS)))

    for month, channel in (
        (date(2028, 1, 1), ChannelKind.FACEBOOK),
        (date(2028, 2, 1), ChannelKind.EMAIL),
    ):
        assert month_row(month, channel) == month_ref(month, channel)
    before = session.execute(select(ProgrammeDayPerformance)).scalars().all()
    snapshot = sorted((r.day, r.channel, r.views, r.clicks, r.emails_sent) for r in before)
    summarise(session=session, keys=keys)
    session.commit()
    session.expire_all()
    after = session.execute(select(ProgrammeDayPerformance)).scalars().all()
    assert sorted((r.day, r.channel, r.views, r.clicks, r.emails_sent) for r in after) == snapshot
