"""Reports against the database: every figure in CSV and JSON equals a SQL sum the test
computes on its own, on SQLite and PostgreSQL, including a community with no activity and a
period with no data."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from marketing.cli.communities import SAMPLE
from marketing.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
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
from marketing.performance import summarise_all
from marketing.reference import import_reference
from marketing.reports import (
    ReportSubjectNotFound,
    campaign_report,
    community_report,
    programme_overview,
)
from marketing.reports.exports import to_csv, to_json

BANGKOK = ZoneInfo("Asia/Bangkok")
START, END = date(2026, 10, 1), date(2026, 10, 28)
PREVIOUS = (date(2026, 9, 3), date(2026, 9, 30))
INACTIVE = "trat-ban-ao-sai"  # has no performance records and no posts
ACTIVE = "nan-ban-doi-ngoen"
CAMPAIGN = "tiew-chumchon-2569"
METRICS = ("posts", "views", "reactions", "comments", "shares", "clicks", "opens")
METRICS += ("unsubscribes", "emails_sent")


@dataclass
class Seeded:
    post_ids: dict[str, int]


def bangkok(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BANGKOK).astimezone(UTC)


def seed(session: Session) -> Seeded:
    """Ten sample communities; nine with daily records around both periods; one campaign."""
    import_reference(session=session, path=SAMPLE)
    session.commit()
    communities = {c.slug: c for c in session.scalars(select(Community))}
    rng = random.Random(6)
    rows: list[dict[str, Any]] = []
    day = date(2026, 8, 20)
    while day <= date(2026, 11, 5):
        for slug, community in communities.items():
            if slug == INACTIVE:
                continue
            for channel in ChannelKind:
                if rng.random() < 0.2:
                    continue  # days without a record must count as zeros
                row: dict[str, Any] = dict.fromkeys(METRICS, 0)
                row.update(community_id=community.id, channel=channel, day=day)
                row["posts"] = rng.randint(0, 2)
                if channel is ChannelKind.EMAIL:
                    row["emails_sent"] = rng.randint(0, 40)
                    row["opens"] = rng.randint(0, row["emails_sent"])
                    row["clicks"] = rng.randint(0, row["opens"])
                    row["unsubscribes"] = rng.randint(0, 1)
                    reach, interactions = row["emails_sent"], row["clicks"]
                else:
                    row["views"] = rng.randint(0, 900)
                    for name in ("reactions", "comments", "shares", "clicks"):
                        row[name] = rng.randint(0, 30)
                    reach = row["views"]
                    interactions = sum(
                        row[n] for n in ("reactions", "comments", "shares", "clicks")
                    )
                # The stored per-day rate: a report must not average these.
                row["engagement_rate"] = interactions / reach if reach else 0.0
                rows.append(row)
        day += timedelta(days=1)
    session.execute(insert(CommunityPerformance), rows)
    summarise_all(session=session)  # what rollup does after writing records

    campaign = Campaign(
        slug=CAMPAIGN,
        name="เที่ยวชุมชน ยลวิถีไทย",
        source_text="name: เที่ยวชุมชน",
        source_hash="0" * 64,
        status=CampaignStatus.APPROVED,
    )
    session.add(campaign)
    session.flush()
    accounts = {a.slug: a for a in session.scalars(select(ChannelAccount))}
    post_ids: dict[str, int] = {}

    def post(
        name: str,
        community: str,
        channel: ChannelKind,
        state: PostState,
        at: datetime,
        content: dict[str, Any],
        **extra: Any,
    ) -> Post:
        account = "glo-email" if channel is ChannelKind.EMAIL else f"{community}-{channel}"
        row = Post(
            campaign_id=campaign.id,
            community_id=communities[community].id,
            channel_account_id=accounts[account].id,
            channel=channel,
            idempotency_key=f"key-{name}",
            occurrence_key=name,
            scheduled_at=at,
            next_try_at=at,
            content=content,
            content_hash="0" * 64,
            state=state,
            **extra,
        )
        if state is PostState.PUBLISHED:
            row.published_at = at
            row.external_id = f"ext-{name}"
            row.permalink = f"https://example.org/{community}/{name}"
        session.add(row)
        session.flush()
        post_ids[name] = row.id
        return row

    october_5 = date(2026, 10, 5)
    fb = post(
        "fb",
        ACTIVE,
        ChannelKind.FACEBOOK,
        PostState.PUBLISHED,
        bangkok(october_5, 10),
        {"message": "ผ้าซิ่นลายน้ำไหลรุ่นใหม่\nมาเที่ยวกันนะ"},
    )
    yt = post(
        "yt",
        ACTIVE,
        ChannelKind.YOUTUBE,
        PostState.PUBLISHED,
        bangkok(october_5 + timedelta(days=1), 9),
        {"title": "เรียนทอผ้ากับแม่อุ๊ย"},
    )
    mail = post(
        "mail",
        ACTIVE,
        ChannelKind.EMAIL,
        PostState.PUBLISHED,
        bangkok(october_5 + timedelta(days=2), 8),
        {"subject": "จดหมายข่าวชุมชนบ้านดอยเงิน"},
    )
    # Local-day edges: 00:30 on 1 October in Bangkok is 30 September in UTC (inside the
    # period); 00:30 on 29 October is 28 October in UTC (outside).
    early = post(
        "early",
        ACTIVE,
        ChannelKind.FACEBOOK,
        PostState.PUBLISHED,
        bangkok(START, 0, 30),
        {"message": "เช้าวันแรก"},
    )
    late = post(
        "late",
        ACTIVE,
        ChannelKind.FACEBOOK,
        PostState.PUBLISHED,
        bangkok(END + timedelta(days=1), 0, 30),
        {"message": "หลังช่วงรายงาน"},
    )
    post(
        "failed",
        "phrae-ban-thung-khram",
        ChannelKind.FACEBOOK,
        PostState.FAILED,
        bangkok(october_5, 11),
        {"message": "ม่อฮ่อม"},
        last_error="(#200) Permissions error",
        action_hint="ให้ผู้ดูแลเพจอนุญาตสิทธิ์ pages_manage_posts อีกครั้ง",
    )
    post(
        "unconfirmed",
        "phrae-ban-thung-khram",
        ChannelKind.YOUTUBE,
        PostState.UNCONFIRMED,
        bangkok(october_5, 12),
        {"title": "หม้อห้อม"},
        action_hint="ตรวจในช่อง YouTube ว่ามีวิดีโอนี้แล้วหรือไม่",
    )
    post(
        "reconnect",
        "sukhothai-ban-rim-yom",
        ChannelKind.FACEBOOK,
        PostState.NEEDS_RECONNECT,
        bangkok(october_5, 13),
        {"message": "ริมยม"},
        action_hint="เชื่อมต่อเพจใหม่",
    )
    post(
        "waiting",
        "sukhothai-ban-rim-yom",
        ChannelKind.YOUTUBE,
        PostState.SCHEDULED,
        bangkok(END + timedelta(days=10), 9),
        {"title": "รอเผยแพร่"},
    )

    # Cumulative snapshots: the newest is the post's total (not their sum, not the first).
    def snapshots(target: Post, *values: tuple[int, int, int, int, int]) -> None:
        assert target.published_at is not None
        for n, (views, reactions, comments, shares, clicks) in enumerate(values):
            at = target.published_at + timedelta(hours=6 * (n + 1))
            session.add(
                MetricSnapshot(
                    post_id=target.id,
                    collected_at=at,
                    day=at.astimezone(BANGKOK).date(),
                    views=views,
                    reactions=reactions,
                    comments=comments,
                    shares=shares,
                    clicks=clicks,
                )
            )

    snapshots(fb, (100, 10, 1, 0, 2), (400, 30, 4, 2, 8), (500, 40, 5, 3, 10))
    snapshots(yt, (900, 20, 5, 0, 0), (1200, 30, 8, 0, 0))
    snapshots(early, (50, 1, 0, 0, 0))
    snapshots(late, (9000, 900, 90, 90, 90))

    subscribers = list(
        session.scalars(
            select(Subscriber)
            .where(Subscriber.community_id == communities[ACTIVE].id)
            .order_by(Subscriber.id)
        )
    )
    assert len(subscribers) >= 3
    for subscriber, state in zip(
        subscribers, (DeliveryState.SENT, DeliveryState.SENT, DeliveryState.SENT), strict=False
    ):
        session.add(Delivery(post_id=mail.id, subscriber_id=subscriber.id, state=state))
    one, two, three = subscribers[:3]
    at = mail.published_at or datetime.now(UTC)
    for subscriber, kind in (
        (one, EmailEventKind.OPEN),
        (one, EmailEventKind.OPEN),  # opened twice: one unique open
        (two, EmailEventKind.OPEN),
        (one, EmailEventKind.CLICK),
        (one, EmailEventKind.CLICK),
        (three, EmailEventKind.UNSUBSCRIBE),
    ):
        session.add(
            EmailEvent(
                post_id=mail.id,
                subscriber_id=subscriber.id,
                kind=kind,
                occurred_at=at,
                day=at.astimezone(BANGKOK).date(),
            )
        )
    session.commit()
    return Seeded(post_ids=post_ids)


# -- independent SQL ------------------------------------------------------------------------

SUMS = ", ".join(f"COALESCE(SUM(p.{name}), 0)" for name in METRICS)
INTERACTIONS = (
    "COALESCE(SUM(CASE WHEN p.channel = 'email' THEN p.clicks "
    "ELSE p.reactions + p.comments + p.shares + p.clicks END), 0)"
)
REACH = "COALESCE(SUM(CASE WHEN p.channel = 'email' THEN p.emails_sent ELSE p.views END), 0)"


def sql_sums(
    session: Session, *, slug: str, start: date, end: date, channel: str | None
) -> dict[str, int]:
    """Sums of one community's records straight from the table."""
    where = "c.slug = :slug AND p.day >= :start AND p.day <= :end"
    if channel is not None:
        where += " AND p.channel = :channel"
    row = session.execute(
        text(
            f"SELECT {SUMS}, {INTERACTIONS}, {REACH} FROM community_performance p "
            f"JOIN community c ON c.id = p.community_id WHERE {where}"
        ),
        {"slug": slug, "start": start, "end": end, "channel": channel},
    ).one()
    return dict(zip((*METRICS, "interactions", "reach"), map(int, row), strict=True))


def read_csv(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


def assert_row_matches(row: dict[str, str], expected: dict[str, int], prefix: str = "") -> None:
    for name, value in expected.items():
        assert int(row[f"{prefix}{name}"]) == value, (prefix + name, row[f"{prefix}{name}"], value)
    rate = expected["interactions"] / expected["reach"] if expected["reach"] else 0.0
    assert float(row[f"{prefix}engagement_rate"]) == pytest.approx(rate, rel=1e-12)


# -- community ------------------------------------------------------------------------------


def test_community_csv_equals_sql_sums_now_and_before(session: Session) -> None:
    seed(session)
    report = community_report(session=session, community_slug=ACTIVE, start=START, end=END)
    rows = read_csv(to_csv(report))
    assert [r["channel"] for r in rows] == [*(c.value for c in ChannelKind), "all"]
    for row in rows:
        channel = None if row["channel"] == "all" else row["channel"]
        now = sql_sums(session, slug=ACTIVE, start=START, end=END, channel=channel)
        before = sql_sums(session, slug=ACTIVE, start=PREVIOUS[0], end=PREVIOUS[1], channel=channel)
        assert now["views"] + now["emails_sent"] > 0  # the test data is not trivially zero
        assert_row_matches(row, now)
        assert_row_matches(row, before, prefix="previous_")
        expected_change = (now["interactions"] - before["interactions"]) / before["interactions"]
        assert float(row["change_interactions_fraction"]) == pytest.approx(expected_change)
        assert row["community_name_th"] == "ชุมชนผ้าทอบ้านดอยเงิน"
        assert (row["period_start"], row["period_end"]) == ("2026-10-01", "2026-10-28")


def test_community_rate_is_from_sums_not_an_average_of_daily_rates(session: Session) -> None:
    seed(session)
    report = community_report(session=session, community_slug=ACTIVE, start=START, end=END)
    facebook = report.channels[0].current
    daily = session.execute(
        text(
            "SELECT AVG(p.engagement_rate) FROM community_performance p JOIN community c "
            "ON c.id = p.community_id WHERE c.slug = :s AND p.channel = 'facebook' "
            "AND p.day BETWEEN :a AND :b"
        ),
        {"s": ACTIVE, "a": START, "b": END},
    ).scalar_one()
    assert facebook.engagement_rate == pytest.approx(facebook.interactions / facebook.views)
    assert abs(facebook.engagement_rate - float(daily)) > 1e-6


def test_community_json_has_rank_trend_and_best_posts(session: Session) -> None:
    seeded = seed(session)
    report = community_report(session=session, community_slug=ACTIVE, start=START, end=END)
    data = json.loads(to_json(report))
    assert data["kind"] == "community"
    assert data["community"]["name_th"] == "ชุมชนผ้าทอบ้านดอยเงิน"
    assert data["previous_period"] == {"start": "2026-09-03", "end": "2026-09-30", "days": 28}
    total = data["channels"][-1]
    assert total["channel"] == "all"
    expected = sql_sums(session, slug=ACTIVE, start=START, end=END, channel=None)
    for name, value in expected.items():
        assert total["current"][name] == value

    # Rank by rate among all ten, computed here from per-community SQL sums.
    rates = {}
    for slug in session.scalars(select(Community.slug)):
        sums = sql_sums(session, slug=slug, start=START, end=END, channel=None)
        rates[slug] = sums["interactions"] / sums["reach"] if sums["reach"] else 0.0
    assert data["rank"]["of"] == 10
    assert data["rank"]["by_rate"] == 1 + sum(r > rates[ACTIVE] for r in rates.values())

    # Trend: every day x channel, and its sum is the period's sum.
    assert len(data["trend"]) == 28 * len(ChannelKind)
    assert sum(p["views"] for p in data["trend"]) == expected["views"]
    assert sum(p["interactions"] for p in data["trend"]) == expected["interactions"]

    # Best posts: published in the period's local days, newest snapshot, email from events.
    best = {p["post_id"]: p for p in data["best_posts"]}
    ids = seeded.post_ids
    assert set(best) == {ids["fb"], ids["yt"], ids["mail"], ids["early"]}
    assert [p["post_id"] for p in data["best_posts"]][:2] == [ids["fb"], ids["yt"]]
    fb = best[ids["fb"]]
    assert (fb["views"], fb["reactions"], fb["comments"], fb["shares"], fb["clicks"]) == (
        500,
        40,
        5,
        3,
        10,
    )
    assert fb["interactions"] == 58 and fb["label"] == "ผ้าซิ่นลายน้ำไหลรุ่นใหม่"
    assert fb["permalink"] == f"https://example.org/{ACTIVE}/fb"
    mail = best[ids["mail"]]
    # Opens and clicks count subscribers (one opened twice and clicked twice), as the rollup
    # does.
    assert (mail["emails_sent"], mail["opens"], mail["clicks"], mail["unsubscribes"]) == (
        3,
        2,
        1,
        1,
    )
    assert mail["engagement_rate"] == pytest.approx(1 / 3)


def test_inactive_community_reports_zeros(session: Session) -> None:
    seed(session)
    report = community_report(session=session, community_slug=INACTIVE, start=START, end=END)
    rows = read_csv(to_csv(report))
    assert len(rows) == len(ChannelKind) + 1  # each channel and "all"
    for row in rows:
        for name in (*METRICS, "interactions", "reach", "engagement_rate"):
            assert float(row[name]) == 0 and float(row[f"previous_{name}"]) == 0
        assert row["change_interactions_fraction"] == ""  # nothing to compare with, not an error
    data = json.loads(to_json(report))
    assert data["best_posts"] == []
    assert data["rank"]["by_rate"] == 10 and data["rank"]["of"] == 10
    assert all(p["views"] == 0 for p in data["trend"]) and len(data["trend"]) == 28 * len(
        ChannelKind
    )


def test_unknown_community_says_what_to_do(session: Session) -> None:
    seed(session)
    with pytest.raises(ReportSubjectNotFound, match="marketing communities list"):
        community_report(session=session, community_slug="no-such", start=START, end=END)


# -- overview -------------------------------------------------------------------------------


def test_overview_csv_equals_sql_sums_for_every_community_and_channel(session: Session) -> None:
    seed(session)
    report = programme_overview(session=session, start=START, end=END)
    rows = read_csv(to_csv(report))
    assert len(rows) == 10 * (len(ChannelKind) + 1)
    slugs = set(session.scalars(select(Community.slug)))
    assert {r["community_slug"] for r in rows} == slugs
    for row in rows:
        channel = None if row["channel"] == "all" else row["channel"]
        slug = row["community_slug"]
        assert_row_matches(row, sql_sums(session, slug=slug, start=START, end=END, channel=channel))
        assert_row_matches(
            row,
            sql_sums(session, slug=slug, start=PREVIOUS[0], end=PREVIOUS[1], channel=channel),
            prefix="previous_",
        )
    inactive = [r for r in rows if r["community_slug"] == INACTIVE]
    assert {r["trend"] for r in inactive} == {"inactive"}

    # Sorted by rate, highest first: the order of the "all" rows.
    totals = [r for r in rows if r["channel"] == "all"]
    rates = [float(r["engagement_rate"]) for r in totals]
    assert rates == sorted(rates, reverse=True)
    assert totals[-1]["community_slug"] == INACTIVE

    # The programme total is the table's total.
    data = json.loads(to_json(report))
    everything = session.execute(
        text("SELECT SUM(views) FROM community_performance WHERE day BETWEEN :a AND :b"),
        {"a": START, "b": END},
    ).scalar_one()
    assert data["programme"][-1]["current"]["views"] == int(everything)


def test_overview_ranks_agree_with_each_community_report(session: Session) -> None:
    seed(session)
    # Give the inactive community a copy of another's records: the two must tie.
    session.execute(
        text(
            f"INSERT INTO community_performance (community_id, channel, day, "
            f"{', '.join(METRICS)}, engagement_rate, updated_at) "
            f"SELECT (SELECT id FROM community WHERE slug = :copy), channel, day, "
            f"{', '.join(METRICS)}, engagement_rate, updated_at FROM community_performance "
            f"WHERE community_id = (SELECT id FROM community WHERE slug = :source)"
        ),
        {"copy": INACTIVE, "source": ACTIVE},
    )
    session.commit()
    overview = programme_overview(session=session, start=START, end=END)
    by_slug = {row.community.slug: row.rank for row in overview.rows}
    assert by_slug[INACTIVE] == by_slug[ACTIVE]
    assert sorted(r.by_rate for r in by_slug.values()).count(by_slug[ACTIVE].by_rate) == 2
    for slug, rank in by_slug.items():
        one = community_report(session=session, community_slug=slug, start=START, end=END)
        assert one.rank == rank, slug


@pytest.mark.parametrize("key", ["interactions", "growth", "name"])
def test_overview_sorts(session: Session, key: str) -> None:
    seed(session)
    report = programme_overview(session=session, start=START, end=END, sort=key)
    totals = [row.total for row in report.rows]
    if key == "interactions":
        values = [t.current.interactions for t in totals]
        assert values == sorted(values, reverse=True)
    elif key == "growth":
        values = [t.change.interactions for t in totals]
        assert values[-1] is None  # the inactive community has no growth to show: last
        present = [v for v in values if v is not None]
        assert present == sorted(present, reverse=True) and len(present) == 9
    else:
        names = [row.community.name_th for row in report.rows]
        assert names == sorted(names)


def test_empty_period_gives_zeros_everywhere(session: Session) -> None:
    seed(session)
    report = programme_overview(session=session, start=date(2020, 1, 1), end=date(2020, 1, 31))
    rows = read_csv(to_csv(report))
    assert len(rows) == 10 * (len(ChannelKind) + 1)
    for row in rows:
        for name in (*METRICS, "interactions", "reach", "engagement_rate"):
            assert float(row[name]) == 0
    data = json.loads(to_json(report))
    assert len(data["trend"]) == 31 * len(ChannelKind)
    assert {row["rank"]["by_rate"] for row in data["rows"]} == {1}  # all tied
    one = community_report(
        session=session, community_slug=ACTIVE, start=date(2020, 1, 1), end=date(2020, 1, 1)
    )
    assert one.total.current.reach == 0 and one.best_posts == []


# -- campaign -------------------------------------------------------------------------------


def test_campaign_json_counts_states_and_lists_what_needs_a_person(session: Session) -> None:
    seeded = seed(session)
    report = campaign_report(session=session, campaign_slug=CAMPAIGN)
    data = json.loads(to_json(report))
    counted = {
        (row.channel, row.state): row.posts
        for row in session.execute(
            text("SELECT channel, state, COUNT(*) AS posts FROM post GROUP BY channel, state")
        )
    }
    assert {(s["channel"], s["state"]): s["posts"] for s in data["states"]} == counted
    needs = {p["post_id"]: p for p in data["needs_person"]}
    ids = seeded.post_ids
    assert set(needs) == {ids["failed"], ids["unconfirmed"], ids["reconnect"]}
    assert needs[ids["failed"]]["last_error"] == "(#200) Permissions error"
    assert needs[ids["failed"]]["action_hint"].startswith("ให้ผู้ดูแลเพจ")

    achieved = {line["channel"]: line["metrics"] for line in data["achieved"]}
    # facebook: fb (newest 500 views) + early (50) + late (9000): the campaign has no period.
    assert achieved["facebook"]["views"] == 500 + 50 + 9000
    assert achieved["facebook"]["posts"] == 3
    assert achieved["youtube"]["views"] == 1200
    assert achieved["email"]["emails_sent"] == 3 and achieved["email"]["opens"] == 2
    assert achieved["email"]["clicks"] == 1 and achieved["email"]["unsubscribes"] == 1
    assert achieved["all"]["reach"] == 500 + 50 + 9000 + 1200 + 3
    lines = {(c["community"]["slug"], c["channel"]): c for c in data["communities"]}
    assert lines[("phrae-ban-thung-khram", "facebook")]["needs_person"] == 1
    assert lines[("sukhothai-ban-rim-yom", "youtube")]["waiting"] == 1
    assert lines[(ACTIVE, "facebook")]["published"] == 3
    assert data["best_posts"][0]["post_id"] == ids["late"]


def test_campaign_csv_has_every_post(session: Session) -> None:
    seed(session)
    rows = read_csv(to_csv(campaign_report(session=session, campaign_slug=CAMPAIGN)))
    total = session.execute(text("SELECT COUNT(*) FROM post")).scalar_one()
    assert len(rows) == total == 9
    by_label = {r["label"]: r for r in rows}
    assert by_label["เรียนทอผ้ากับแม่อุ๊ย"]["views"] == "1200"
    assert by_label["ม่อฮ่อม"]["state"] == "failed"
    assert by_label["รอเผยแพร่"]["published_at"] == ""


def test_unknown_campaign_says_what_to_do(session: Session) -> None:
    with pytest.raises(ReportSubjectNotFound, match="no campaign"):
        campaign_report(session=session, campaign_slug="nope")


def test_metrics_built_without_validation_are_the_validated_ones() -> None:
    """The reports build their sums with ``trusted`` (no validation, it is hot): the same
    values, fields set, dump and derived figures as a validated ``Metrics``, per channel
    kind and added up."""
    from marketing.reports.rows import Metrics, trusted

    sums = {"posts": 2, "views": 400, "reactions": 9, "comments": 4, "shares": 3, "clicks": 5}
    sums |= {"opens": 0, "unsubscribes": 0, "emails_sent": 0}
    social = Metrics.of_channel("facebook", sums)
    assert social == Metrics(**sums, interactions=9 + 4 + 3 + 5, reach=400)
    mail_sums = dict(sums, views=0, emails_sent=250, opens=40, unsubscribes=1)
    mail = Metrics.of_channel("email", {**mail_sums, "shares": None})
    assert mail == Metrics(**dict(mail_sums, shares=0), interactions=5, reach=250)
    both = Metrics.total([social, mail])
    validated = Metrics(
        **{name: getattr(social, name) + getattr(mail, name) for name in Metrics.model_fields}
    )
    assert both == validated and both.model_dump() == validated.model_dump()
    assert both.model_fields_set == validated.model_fields_set
    assert both.engagement_rate == (21 + 5) / 650 and both.rate_meaningful
    assert Metrics.total([]) == Metrics()
    assert (
        trusted(Metrics, dict(validated.model_dump(exclude={"engagement_rate", "rate_meaningful"})))
        == validated
    )
