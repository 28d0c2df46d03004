"""Best-time schedules: each community's post in the block its figures favour, inside the
window and outside quiet hours, spread on a shared Page, deterministic for a seed, still
exploring, and never moving a post already claimed (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import apply_campaign, read_campaign
from campaigns.besttime import (
    BLOCKS,
    BLOCKS_PER_DAY,
    UNIFORM,
    BestTimeRule,
    BestTimeSnapshot,
    ChannelTimes,
    Period,
    SlotBook,
    block_of,
    candidates,
    choose_slot,
    draw_order,
    periods,
)
from marketing.besttimes import email_figures, schedule_snapshot
from marketing.cli.communities import SAMPLE
from marketing.models import (
    ChannelAccount,
    ChannelKind,
    Community,
    Delivery,
    DeliveryState,
    EmailEvent,
    EmailEventKind,
    Post,
    PostState,
    Subscriber,
)
from marketing.plan_reference import plan_from_database
from marketing.problems import InvalidInput
from marketing.reference import import_reference
from tests.support.besttimes import FRIDAY_EVENING, NOW, at_block, seeded_programme

BANGKOK = ZoneInfo("Asia/Bangkok")
PLANNED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SLUGS = ["nan-ban-doi-ngoen", "phrae-ban-thung-khram", "lampang-ban-din-daeng"]
SATURDAY_MORNING = 5 * BLOCKS_PER_DAY + 5  # Saturday 10:00-12:00

CAMPAIGN = """\
slug: best-time
name: ทดลองเวลาที่ดีที่สุด
window: {{start: 2027-03-01, end: 2027-03-21}}
communities: [nan-ban-doi-ngoen, phrae-ban-thung-khram, lampang-ban-din-daeng]
channels:
  facebook:
    account: glo-facebook
    message: "สวัสดี {{{{ community.name_th }}}} {{{{ thai_date(occurrence.at) }}}}"
  email:
    account: glo-email
    subject: "ข่าว{{{{ community.name_th }}}}"
    html: "<p>เรียน {{{{ subscriber.name }}}}</p>"
schedule:
  best_time: {{per: week, min_gap: {gap}}}
  quiet_hours: {{start: "{quiet_start}", end: "08:00"}}
"""


def _text(gap: str = "2h", quiet_start: str = "21:00") -> str:
    return CAMPAIGN.format(gap=gap, quiet_start=quiet_start)


def _sure(best: int, *, best_rate: float = 0.2, rest: float = 0.05) -> ChannelTimes:
    """Figures that leave no doubt: ``best`` far ahead of every other block."""
    return ChannelTimes(
        tuple((best_rate if b == best else rest, 0.0001) for b in range(BLOCKS)), source="own"
    )


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


def _ids(session: Session) -> dict[str, int]:
    return {c.slug: c.id for c in session.scalars(select(Community))}


def _plan(
    session: Session,
    tmp_path: Path,
    snapshot: BestTimeSnapshot | None,
    *,
    seed: int = 0,
    text: str | None = None,
) -> Any:
    definition = read_campaign(text or _text(), file="best-time.yaml", base_dir=tmp_path)
    return plan_from_database(
        session=session, definition=definition, now=PLANNED_AT, best_times=snapshot, seed=seed
    )


# -- the pure parts ---------------------------------------------------------------------------


def test_periods_are_local_weeks_clipped_to_the_window() -> None:
    start = datetime(2027, 3, 3, 0, 0, tzinfo=BANGKOK).astimezone(UTC)  # a Wednesday
    end = datetime(2027, 3, 16, 23, 59, tzinfo=BANGKOK).astimezone(UTC)
    weeks = periods(start, end, BANGKOK, "week")
    assert [p.key for p in weeks] == ["week-2027-03-01", "week-2027-03-08", "week-2027-03-15"]
    assert weeks[0].start == start and weeks[-1].end == end
    assert weeks[1].start == datetime(2027, 3, 8, tzinfo=BANGKOK).astimezone(UTC)
    assert [p.key for p in periods(start, end, BANGKOK, "day")][:2] == [
        "2027-03-03",
        "2027-03-04",
    ]


def test_candidates_skip_quiet_hours_and_the_past() -> None:
    start = datetime(2027, 3, 1, tzinfo=BANGKOK).astimezone(UTC)
    period = Period("week-2027-03-01", start, start + timedelta(days=7), 1)
    rule = BestTimeRule("week", timedelta(hours=2), time(21, 0), time(8, 0))
    not_before = start + timedelta(days=2, hours=12)  # Wednesday noon
    found = candidates(period, zone=BANGKOK, rule=rule, not_before=not_before)
    every = [t for times in found.values() for t in times]
    assert min(every) == not_before
    assert all(time(8, 0) <= t.astimezone(BANGKOK).time() < time(21, 0) for t in every)
    # 13 open hours a day, four 15-minute slots an hour, Wednesday noon to Sunday night.
    assert len(every) == 4 * (9 + 4 * 13)
    assert all(block_of(t, BANGKOK) == b for b, times in found.items() for t in times)


def test_draw_order_is_thompson_sampling_and_keeps_exploring() -> None:
    # Block 3 is believed best, but block 5 is far less certain: it is still tried sometimes.
    blocks = list(UNIFORM)
    blocks[3] = (0.10, 0.01)
    blocks[5] = (0.08, 0.04)
    rng = random.Random(7)
    firsts = Counter(draw_order(blocks, [3, 5], rng)[0] for _ in range(2000))
    assert firsts[3] > firsts[5] > 100
    assert draw_order(blocks, [3, 5], random.Random(1)) == draw_order(
        blocks, [3, 5], random.Random(1)
    )


def test_choose_slot_moves_past_taken_times() -> None:
    start = datetime(2027, 3, 1, tzinfo=BANGKOK).astimezone(UTC)
    period = Period("p", start, start + timedelta(days=7), 1)
    rule = BestTimeRule("week", timedelta(hours=2))
    allowed = candidates(period, zone=BANGKOK, rule=rule, not_before=start)
    book = SlotBook(timedelta(hours=2))
    taken = []
    for _ in range(2):
        at = choose_slot(
            _sure(FRIDAY_EVENING), allowed, rng=random.Random(0), free=lambda t: book.free(1, t)
        )
        assert at is not None
        book.take(1, at)
        taken.append(at.astimezone(BANGKOK))
    assert taken[0] == datetime(2027, 3, 5, 18, 0, tzinfo=BANGKOK)  # Friday 18:00
    assert abs(taken[1] - taken[0]) >= timedelta(hours=2)


# -- planning ---------------------------------------------------------------------------------


def test_posts_go_to_each_communitys_best_block_spread_on_the_shared_page(
    sample: Session, tmp_path: Path
) -> None:
    ids = _ids(sample)
    snapshot = BestTimeSnapshot(
        communities={
            **{(ids[s], "facebook"): _sure(FRIDAY_EVENING) for s in SLUGS},
            (ids[SLUGS[0]], "email"): _sure(SATURDAY_MORNING),
        }
    )
    plan = _plan(sample, tmp_path, snapshot)
    facebook = [p for p in plan.posts if p.channel == "facebook"]
    emails = [p for p in plan.posts if p.channel == "email"]
    assert len(facebook) == 9 and len(emails) == 9  # 3 communities x 3 weeks
    window = (
        datetime(2027, 3, 1, tzinfo=BANGKOK).astimezone(UTC),
        datetime(2027, 3, 22, tzinfo=BANGKOK).astimezone(UTC),
    )
    for post in plan.posts:
        local = post.scheduled_at.astimezone(BANGKOK)
        assert window[0] <= post.scheduled_at < window[1]
        assert time(8, 0) <= local.time() < time(21, 0), post
    # All three want Friday 18:00-20:00 on the one programme Page: one gets it each week,
    # and no two posts on the Page are closer than the gap.
    times = sorted(p.scheduled_at for p in facebook)
    assert all(b - a >= timedelta(hours=2) for a, b in zip(times, times[1:], strict=False))
    by_week = Counter(
        p.occurrence_key for p in facebook if block_of(p.scheduled_at, BANGKOK) == FRIDAY_EVENING
    )
    assert by_week == {"week-2027-03-01": 1, "week-2027-03-08": 1, "week-2027-03-15": 1}
    # E-mail has no gap: the community with Saturday-morning figures gets Saturday 10:00.
    nan = [p for p in emails if p.community_slug == SLUGS[0]]
    assert {p.scheduled_at.astimezone(BANGKOK).strftime("%a %H:%M") for p in nan} == {"Sat 10:00"}
    # The rendered text shows the post's own date.
    first = min(facebook, key=lambda p: p.scheduled_at)
    assert "2570" in first.content["message"]
    assert (
        "best time: 12 post(s) timed by their community's own figures, 0 by the programme's "
        "pattern, 6 drawn evenly (no figures yet)" in plan.notes
    )


def test_the_plan_is_the_same_for_a_seed_and_differs_for_another(
    sample: Session, tmp_path: Path
) -> None:
    def times(seed: int) -> list[tuple[str, str, datetime]]:
        plan = _plan(sample, tmp_path, None, seed=seed)
        return sorted((p.community_slug, p.channel, p.scheduled_at) for p in plan.posts)

    assert times(1) == times(1)
    assert times(1) != times(2)


def test_a_community_without_figures_gets_the_programme_pattern(
    sample: Session, tmp_path: Path
) -> None:
    ids = _ids(sample)
    snapshot = BestTimeSnapshot(
        communities={(ids[SLUGS[0]], "facebook"): _sure(FRIDAY_EVENING)},
        programme={"facebook": _sure(SATURDAY_MORNING)},
    )
    plan = _plan(sample, tmp_path, snapshot)
    blocks = {
        p.community_slug: block_of(p.scheduled_at, BANGKOK)
        for p in plan.posts
        if p.channel == "facebook" and p.occurrence_key == "week-2027-03-08"
    }
    assert blocks[SLUGS[0]] == FRIDAY_EVENING
    assert blocks[SLUGS[1]] == SATURDAY_MORNING  # the pattern's best block
    note = next(n for n in plan.notes if n.startswith("best time:"))
    assert "3 post(s) timed by their community's own figures, 6 by the programme's" in note


def test_replanning_never_moves_a_claimed_post_and_keeps_waiting_ones(
    sample: Session, tmp_path: Path
) -> None:
    ids = _ids(sample)
    path = tmp_path / "best-time.yaml"
    path.write_text(_text(), encoding="utf-8")
    first = BestTimeSnapshot(
        communities={(ids[s], "facebook"): _sure(FRIDAY_EVENING) for s in SLUGS}
    )
    apply_campaign(session=sample, path=path, actor="staff", now=PLANNED_AT, best_times=first)
    sample.commit()
    posts = {p.idempotency_key: p for p in sample.scalars(select(Post))}
    before = {k: p.scheduled_at for k, p in posts.items()}
    # The post holding Friday 18:00 in the first week is claimed by a worker.
    claimed = next(
        p
        for p in posts.values()
        if p.channel.value == "facebook"
        and p.occurrence_key == "week-2027-03-01"
        and p.scheduled_at.astimezone(BANGKOK).time() == time(18, 0)
    )
    claimed.state = PostState.PUBLISHING
    sample.commit()

    # New figures say Saturday morning, another seed: waiting posts still allowed stay put.
    later = BestTimeSnapshot(
        communities={(ids[s], "facebook"): _sure(SATURDAY_MORNING) for s in SLUGS}
    )
    summary = apply_campaign(
        session=sample, path=path, actor="staff", now=PLANNED_AT, best_times=later, seed=9
    )
    sample.commit()
    assert (summary.added, summary.updated, summary.cancelled) == (0, 0, 0)

    # Quiet from 17:00 now: Friday 18:00 is no longer allowed.  Waiting posts there move,
    # the claimed one does not -- and nothing else on the Page crowds it.
    path.write_text(_text(quiet_start="17:00"), encoding="utf-8")
    apply_campaign(
        session=sample, path=path, actor="staff", now=PLANNED_AT, best_times=later, seed=9
    )
    sample.commit()
    sample.expire_all()
    after = {p.idempotency_key: p for p in sample.scalars(select(Post))}
    assert after[claimed.idempotency_key].scheduled_at == before[claimed.idempotency_key]
    assert after[claimed.idempotency_key].state == PostState.PUBLISHING
    for key, post in after.items():
        if key == claimed.idempotency_key:
            continue
        local = post.scheduled_at.astimezone(BANGKOK).time()
        assert time(8, 0) <= local < time(17, 0), post.occurrence_key
        if post.channel.value == "facebook":
            assert abs(post.scheduled_at - before[claimed.idempotency_key]) >= timedelta(hours=2)
    assert any(after[k].scheduled_at != t for k, t in before.items())


def test_a_full_page_leaves_posts_out_with_a_note(sample: Session, tmp_path: Path) -> None:
    # Open 08:00-09:00 only, 2 h apart on one Page: one post per day fits, so a daily period
    # has room for one of the three communities.
    text = (
        _text(gap="2h", quiet_start="09:00")
        .replace("per: week", "per: day")
        .replace("2027-03-21", "2027-03-02")
    )
    plan = _plan(sample, tmp_path, None, text=text)
    facebook = [p for p in plan.posts if p.channel == "facebook"]
    assert len(facebook) == 2
    assert any("4 post(s) found no free time" in n for n in plan.notes)


def test_best_time_with_another_form_or_rotation_is_refused(tmp_path: Path) -> None:
    text = _text().replace("  best_time:", "  every: weekly on monday 10:00\n  best_time:")
    definition = read_campaign(text, file="c.yaml", base_dir=tmp_path)
    assert [p.field for p in definition.problems] == ["schedule.every"]
    rotated = _text() + "  rotation: {per_slot: 1}\n"
    definition = read_campaign(rotated, file="c.yaml", base_dir=tmp_path)
    assert "rotation does not apply" in definition.problems[0].message
    bad = _text(gap="soon")
    with pytest.raises(InvalidInput):
        from campaigns import load_campaign_text

        load_campaign_text(bad, file="c.yaml", base_dir=tmp_path)


def test_the_snapshot_is_learnt_from_published_posts(session: Session) -> None:
    _programme, ids = seeded_programme(session, random.Random(3))
    newcomer = Community(slug="newcomer", name_th="ใหม่", name_en="new", province="น่าน")
    session.add(newcomer)
    session.commit()
    snapshot = schedule_snapshot(session=session, now=NOW)
    busy = snapshot.times_for(ids["busy"], "facebook")
    assert busy.source == "own"
    assert max(range(BLOCKS), key=lambda b: busy.blocks[b][0]) == FRIDAY_EVENING
    fresh = snapshot.times_for(newcomer.id, "facebook")
    assert fresh.source == "programme"
    assert max(range(BLOCKS), key=lambda b: fresh.blocks[b][0]) == FRIDAY_EVENING
    assert snapshot.times_for(newcomer.id, "email").source == "none"


def test_email_send_times_are_learnt_from_clicks_within_the_age(session: Session) -> None:
    programme, _ids = seeded_programme(session, random.Random(3))
    mail = Community(slug="mail", name_th="จดหมาย", name_en="mail", province="น่าน")
    session.add(mail)
    session.flush()
    sender = ChannelAccount(
        slug="mail-sender", kind=ChannelKind.EMAIL, external_id="news@example.org", display_name="x"
    )
    session.add(sender)
    session.flush()
    people = [
        Subscriber(
            email=f"p{n}@example.org",
            community_id=mail.id,
            consent_source="test",
            consent_at=NOW - timedelta(days=400),
        )
        for n in range(40)
    ]
    session.add_all(people)
    session.flush()

    def letter(block: int, weeks_ago: int, clicks: int, *, late: bool = False) -> None:
        sent = at_block(block, weeks_ago)
        post = Post(
            campaign_id=programme.campaign.id,
            community_id=mail.id,
            channel_account_id=sender.id,
            channel=ChannelKind.EMAIL,
            idempotency_key=f"mail-{block}-{weeks_ago}",
            occurrence_key=f"m{block}-{weeks_ago}",
            scheduled_at=sent,
            next_try_at=sent,
            content={"subject": "ข่าว"},
            content_hash="0" * 64,
            state=PostState.PUBLISHED,
            published_at=sent,
        )
        session.add(post)
        session.flush()
        for person in people:
            session.add(
                Delivery(
                    post_id=post.id,
                    subscriber_id=person.id,
                    state=DeliveryState.SENT,
                    sent_at=sent,
                )
            )
        # A click after the age compared at does not count.
        when = sent + (timedelta(days=5) if late else timedelta(hours=3))
        for person in people[:clicks]:
            session.add(
                EmailEvent(
                    post_id=post.id,
                    subscriber_id=person.id,
                    kind=EmailEventKind.CLICK,
                    occurred_at=when,
                    day=when.date(),
                )
            )

    for week in range(1, 5):
        letter(SATURDAY_MORNING, week, 12)  # 30 % click
        letter(FRIDAY_EVENING, week, 2)  # 5 %
    letter(FRIDAY_EVENING, 5, 40, late=True)  # everyone clicked, but a week later
    session.commit()

    figures = {f.post_id: f for f in email_figures(session=session, now=NOW)}
    assert len(figures) == 9
    late = session.scalars(select(Post.id).where(Post.occurrence_key == f"m{FRIDAY_EVENING}-5"))
    assert figures[late.one()].interactions == 0
    snapshot = schedule_snapshot(session=session, now=NOW)
    times = snapshot.times_for(mail.id, "email")
    assert times.source == "own"
    assert max(range(BLOCKS), key=lambda b: times.blocks[b][0]) == SATURDAY_MORNING
