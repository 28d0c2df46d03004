"""The calendar, the dashboard, report periods and schedules on the awkward days, with the
web app's clock frozen there (``create_app(clock=...)``), so none of it depends on the day the
suite runs (issue #11).

The days: 1 December 2026 (the day CI went red); 10 January 2027 (a month whose 10th is a
Sunday); 31 December 2027 and 1 January 2028 (the Buddhist-era year turns 2570 -> 2571);
29 February 2028; the first (Monday) and last (Sunday) day of a week -- the app has one week
convention, Monday to Sunday (``date.weekday()``; Thai and English column names alike) -- and
the last Sunday of March 2027, when Europe/Berlin moves to summer time and Asia/Bangkok does not.

The frozen time is 00:30 in Bangkok, when the UTC date is still the day before: "today" must
be the local day.  Expected days, titles and periods are written out by hand, not computed by
the code under test.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import Engine, select, update

from campaigns.schedule import Schedule, expand, parse_every
from marketing.db import session_scope
from marketing.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    Post,
    Role,
    User,
)
from marketing.reports.period import Period, resolve_period
from marketing.thai import typed_day
from marketing.web import create_app
from tests.support.web import WebClient, add_user, clock_at, import_sample, same_week_pair

BANGKOK = ZoneInfo("Asia/Bangkok")
BERLIN = ZoneInfo("Europe/Berlin")
COMMUNITY = "nan-ban-doi-ngoen"


@dataclass(frozen=True)
class Day:
    """An awkward day and what the app must show on it (written out by hand)."""

    today: date
    week: tuple[date, date]  # Monday, Sunday
    month_th: str  # the month view's title for a Thai user (Buddhist era)
    month_en: str  # ... for an English user (Common era)
    weekday_th: str  # the dashboard's "today" heading
    period: tuple[date, date]  # the default report period: the 28 days up to today
    previous: tuple[date, date]  # the 28 days before it


DAYS = [
    Day(
        date(2026, 12, 1),
        (date(2026, 11, 30), date(2026, 12, 6)),
        "ธันวาคม 2569",
        "December 2026",
        "อ. 1 ธ.ค. 2569",
        (date(2026, 11, 4), date(2026, 12, 1)),
        (date(2026, 10, 7), date(2026, 11, 3)),
    ),
    Day(
        date(2027, 1, 10),
        (date(2027, 1, 4), date(2027, 1, 10)),
        "มกราคม 2570",
        "January 2027",
        "อา. 10 ม.ค. 2570",
        (date(2026, 12, 14), date(2027, 1, 10)),
        (date(2026, 11, 16), date(2026, 12, 13)),
    ),
    Day(
        date(2027, 12, 31),
        (date(2027, 12, 27), date(2028, 1, 2)),
        "ธันวาคม 2570",
        "December 2027",
        "ศ. 31 ธ.ค. 2570",
        (date(2027, 12, 4), date(2027, 12, 31)),
        (date(2027, 11, 6), date(2027, 12, 3)),
    ),
    Day(
        date(2028, 1, 1),
        (date(2027, 12, 27), date(2028, 1, 2)),
        "มกราคม 2571",
        "January 2028",
        "ส. 1 ม.ค. 2571",
        (date(2027, 12, 5), date(2028, 1, 1)),
        (date(2027, 11, 7), date(2027, 12, 4)),
    ),
    Day(
        date(2028, 2, 29),
        (date(2028, 2, 28), date(2028, 3, 5)),
        "กุมภาพันธ์ 2571",
        "February 2028",
        "อ. 29 ก.พ. 2571",
        (date(2028, 2, 2), date(2028, 2, 29)),
        (date(2028, 1, 5), date(2028, 2, 1)),
    ),
    Day(  # the first day of a week
        date(2027, 3, 22),
        (date(2027, 3, 22), date(2027, 3, 28)),
        "มีนาคม 2570",
        "March 2027",
        "จ. 22 มี.ค. 2570",
        (date(2027, 2, 23), date(2027, 3, 22)),
        (date(2027, 1, 26), date(2027, 2, 22)),
    ),
    Day(  # the last day of a week; Berlin's clocks go forward
        date(2027, 3, 28),
        (date(2027, 3, 22), date(2027, 3, 28)),
        "มีนาคม 2570",
        "March 2027",
        "อา. 28 มี.ค. 2570",
        (date(2027, 3, 1), date(2027, 3, 28)),
        (date(2027, 2, 1), date(2027, 2, 28)),
    ),
]
IDS = [d.today.isoformat() for d in DAYS]


def local(day: date, hour: int, minute: int = 0, zone: ZoneInfo = BANGKOK) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def frozen_at(day: date) -> datetime:
    """00:30 in Bangkok on ``day``: 17:30 UTC the day before."""
    moment = local(day, 0, 30)
    assert moment.astimezone(UTC).date() == day - timedelta(days=1)
    return moment


def add_posts(engine: Engine, times: list[datetime], *, slug: str = "awkward") -> None:
    """Facebook posts of one draft campaign to the sample community at ``times``."""
    with session_scope(engine) as session:
        campaign = Campaign(
            slug=slug,
            name="วันยาก",
            source_text="-",
            source_hash="-",
            status=CampaignStatus.DRAFT,
        )
        community = session.scalars(select(Community).where(Community.slug == COMMUNITY)).one()
        account = session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.community_id == community.id,
                ChannelAccount.kind == ChannelKind.FACEBOOK,
            )
        ).one()
        for n, at in enumerate(times):
            session.add(
                Post(
                    campaign=campaign,
                    community_id=community.id,
                    channel_account_id=account.id,
                    channel=ChannelKind.FACEBOOK,
                    idempotency_key=f"{slug}-{n}",
                    occurrence_key=str(n),
                    scheduled_at=at.astimezone(UTC),
                    next_try_at=at.astimezone(UTC),
                    content={"message": f"โพสต์ที่ {n}"},
                    content_hash="-",
                )
            )


def edge_times(day: Day) -> list[datetime]:
    """Posts at the edges of ``day``'s week and month, and just outside them."""
    monday, sunday = day.week
    first = day.today.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return [
        local(day.today, 0, 15),  # before "now", on the previous UTC day
        local(day.today, 23, 59),
        local(monday, 0, 0),
        local(sunday, 23, 59),
        local(monday - timedelta(days=1), 23, 59),  # the week before
        local(sunday + timedelta(days=1), 0, 0),  # the week after
        local(first, 0, 0),
        local(last, 23, 59),
        local(first - timedelta(days=1), 23, 59),  # the month before
        local(last + timedelta(days=1), 0, 0),  # the month after
    ]


CELL = re.compile(r'<td class="([^"]*)" id="d(\d{4}-\d{2}-\d{2})"[^>]*>(.*?)</td>', re.DOTALL)
HEADS = re.compile(r'<th scope="col">([^<]*)</th>')
WEEK_ROW = re.compile(
    r'<th scope="row"><a href="/calendar\?view=week&amp;day=(\d{4}-\d{2}-\d{2})">[^<]*</a></th>'
    r"\s*<td[^>]*>(\d+)</td>"
)


def cells(html: str) -> dict[date, tuple[str, int]]:
    """The calendar's day cells: day -> (class, number of posts shown)."""
    return {
        date.fromisoformat(day): (css, body.count('<li class="post'))
        for css, day, body in CELL.findall(html)
    }


def per_local_day(times: list[datetime]) -> Counter[date]:
    return Counter(t.astimezone(BANGKOK).date() for t in times)


def span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.fixture
def people(engine: Engine) -> Engine:
    """The sample data, a Thai editor (Buddhist era) and an English one (Common era)."""
    import_sample(engine)
    add_user(engine, "somsri", Role.EDITOR)
    add_user(engine, "reader", Role.EDITOR, language="en")
    with session_scope(engine) as session:
        session.execute(update(User).where(User.username == "reader").values(buddhist_era=False))
    return engine


@contextmanager
def signed_in(engine: Engine, now: datetime, username: str) -> Iterator[WebClient]:
    client = WebClient(create_app(engine=engine, clock=clock_at(now))).sign_in(username)
    try:
        yield client
    finally:
        client.close()


@pytest.mark.parametrize("day", DAYS, ids=IDS)
def test_calendar_and_dashboard_put_each_post_on_its_local_day_and_week(
    people: Engine, day: Day
) -> None:
    times = edge_times(day)
    add_posts(people, times)
    expected = per_local_day(times)
    monday, sunday = day.week
    with signed_in(people, frozen_at(day.today), "somsri") as client:
        # The week view of today (no ?day=): Monday to Sunday around the local today.
        page = client.get("/calendar?view=week")
        assert page.status_code == 200, page.text[:300]
        week = cells(page.text)
        assert list(week) == span(monday, sunday), (
            f"expected the week {monday}..{sunday} on {day.today}, saw {list(week)}"
        )
        seen = {d: n for d, (_css, n) in week.items()}
        assert seen == {d: expected[d] for d in week}, f"posts per day in the week: {seen}"
        assert week[day.today][0] == "today", f"today's cell is not marked: {week[day.today]}"
        assert HEADS.findall(page.text)[:7] == ["จ.", "อ.", "พ.", "พฤ.", "ศ.", "ส.", "อา."]

        # The month view of today: whole weeks from the Monday on or before the 1st to the
        # Sunday on or after the last day, every post on its local day.
        page = client.get("/calendar")
        assert f"· {day.month_th}</h1>" in page.text, (
            f"expected the title {day.month_th!r}, saw {re.findall(r'<h1>(.*?)</h1>', page.text)}"
        )
        month = cells(page.text)
        grid = list(month)
        assert grid[0].weekday() == 0 and grid[-1].weekday() == 6, f"grid {grid[0]}..{grid[-1]}"
        assert grid[0] <= day.today.replace(day=1) and grid[0] > day.today.replace(
            day=1
        ) - timedelta(days=7), f"the grid starts on {grid[0]}"
        seen = {d: n for d, (_css, n) in month.items() if n}
        assert seen == {d: n for d, n in expected.items() if grid[0] <= d <= grid[-1]}, (
            f"posts per day in the month grid: {seen}, expected {expected}"
        )
        assert month[day.today][0] == "today"

        # The dashboard: today's posts and this week's counts, by the local day.
        page = client.get("/")
        assert f"· {day.weekday_th}</h2>" in page.text, (
            f"expected today's heading {day.weekday_th!r}, "
            f"saw {re.findall(r'<h2>(.*?)</h2>', page.text)[:2]}"
        )
        rows = {date.fromisoformat(d): int(n) for d, n in WEEK_ROW.findall(page.text)}
        assert rows == {d: expected[d] for d in span(monday, sunday)}, (
            f"this week on the dashboard: {rows}"
        )

    # The same week in English and Common-era years: still Monday to Sunday.
    with signed_in(people, frozen_at(day.today), "reader") as client:
        page = client.get("/calendar")
        assert f"· {day.month_en}</h1>" in page.text
        assert HEADS.findall(page.text)[:7] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        week = cells(client.get("/calendar?view=week").text)
        assert list(week) == span(monday, sunday)


@pytest.mark.parametrize("day", DAYS, ids=IDS)
def test_the_default_report_period_is_the_28_local_days_up_to_today(
    people: Engine, day: Day
) -> None:
    with signed_in(people, frozen_at(day.today), "somsri") as client:
        page = client.get("/reports")
        shown = re.findall(
            r'id="o-(from|to)" name="\w+" type="text" [^>]*value="([\d/]+)"', page.text
        )
        assert dict(shown) == {  # typed and read as dd/mm/yyyy in the Buddhist era (#15)
            "from": typed_day(day.period[0], buddhist_era=True),
            "to": typed_day(day.period[1], buddhist_era=True),
        }, f"expected the default period {day.period}, saw {shown}"
        overview = client.get("/reports/overview")
        assert overview.status_code == 200
        text = overview.text
        for start, end in (day.period, day.previous):
            written = f"{_thai(start)} – {_thai(end)} (28 วัน)"
            assert written in text, f"expected {written!r} in the overview report"


def _thai(value: date) -> str:
    months = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.")
    months += ("ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.")
    return f"{value.day} {months[value.month - 1]} {value.year + 543}"


@pytest.mark.parametrize("day", DAYS, ids=IDS)
def test_periods_resolve_from_the_given_today(day: Day) -> None:
    period = resolve_period(start=None, end=None, zone=BANGKOK, today=day.today)
    assert (period.start, period.end) == day.period
    previous = period.previous()
    assert (previous.start, previous.end) == day.previous
    # One end given: the other follows from it, not from today.
    assert resolve_period(start=day.today, end=None, zone=BANGKOK, days=2) == Period(
        start=day.today, end=day.today + timedelta(days=1)
    )
    begin, after = period.utc_bounds(BANGKOK)
    assert begin == datetime.combine(day.period[0], time.min, tzinfo=BANGKOK)
    assert after.astimezone(BANGKOK).date() == day.period[1] + timedelta(days=1)


def test_the_default_report_period_follows_a_frozen_clock_in_the_commands() -> None:
    """The command line has no clock to inject: it reads the system's (frozen here)."""
    for day in DAYS:
        with time_machine.travel(frozen_at(day.today), tick=False):
            period = resolve_period(start=None, end=None, zone=BANGKOK)
        assert (period.start, period.end) == day.period, (
            f"frozen at {frozen_at(day.today)}: expected {day.period}, saw {period}"
        )


@pytest.mark.parametrize("day", DAYS, ids=IDS)
def test_the_browser_tests_days_share_a_week_and_a_month(day: Day) -> None:
    tuesday, wednesday = same_week_pair(day.today)
    assert (tuesday.weekday(), wednesday.weekday()) == (1, 2)
    assert tuesday.isocalendar()[:2] == wednesday.isocalendar()[:2]
    assert tuesday.month == wednesday.month
    assert day.today + timedelta(days=14) <= tuesday <= day.today + timedelta(days=27)


def test_the_browser_tests_days_share_a_week_and_a_month_on_every_day_of_three_years() -> None:
    today = date(2026, 1, 1)
    while today < date(2029, 1, 1):
        tuesday, wednesday = same_week_pair(today)
        assert tuesday.isocalendar()[:2] == wednesday.isocalendar()[:2], today
        assert tuesday.month == wednesday.month, today
        today += timedelta(days=1)


# -- schedules across the awkward days ----------------------------------------------------


def _window(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return local(first, 0, 0, zone), local(last, 23, 59, zone)


def test_daily_posts_in_berlin_keep_10_00_across_the_change_to_summer_time() -> None:
    start, end = _window(date(2027, 3, 26), date(2027, 3, 30), BERLIN)
    berlin = expand(Schedule(BERLIN, start, end, rules=parse_every("daily at 10:00")))
    assert [(o.key, o.at) for o in berlin.occurrences] == [
        ("2027-03-26", datetime(2027, 3, 26, 9, 0, tzinfo=UTC)),  # CET, UTC+1
        ("2027-03-27", datetime(2027, 3, 27, 9, 0, tzinfo=UTC)),
        ("2027-03-28", datetime(2027, 3, 28, 8, 0, tzinfo=UTC)),  # CEST, UTC+2 from 02:00
        ("2027-03-29", datetime(2027, 3, 29, 8, 0, tzinfo=UTC)),
        ("2027-03-30", datetime(2027, 3, 30, 8, 0, tzinfo=UTC)),
    ]
    start, end = _window(date(2027, 3, 26), date(2027, 3, 30), BANGKOK)
    bangkok = expand(Schedule(BANGKOK, start, end, rules=parse_every("daily at 10:00")))
    assert [o.at for o in bangkok.occurrences] == [
        datetime(2027, 3, d, 3, 0, tzinfo=UTC) for d in range(26, 31)
    ]


def test_a_time_that_does_not_exist_in_berlin_moves_past_the_gap() -> None:
    # 02:30 on 28 March 2027 never happens in Berlin (02:00 CET -> 03:00 CEST).
    start, end = _window(date(2027, 3, 27), date(2027, 3, 29), BERLIN)
    expansion = expand(Schedule(BERLIN, start, end, rules=parse_every("daily at 02:30")))
    got = [(o.key, o.at.astimezone(BERLIN).strftime("%H:%M")) for o in expansion.occurrences]
    assert got == [("2027-03-27", "02:30"), ("2027-03-28", "03:30"), ("2027-03-29", "02:30")]
    assert all(o.at.tzinfo is UTC for o in expansion.occurrences)


def test_posts_after_midnight_in_bangkok_are_keyed_by_the_local_day_across_the_new_year() -> None:
    start, end = _window(date(2027, 12, 30), date(2028, 1, 2), BANGKOK)
    expansion = expand(Schedule(BANGKOK, start, end, rules=parse_every("daily at 00:30")))
    assert [(o.key, o.at) for o in expansion.occurrences] == [
        ("2027-12-30", datetime(2027, 12, 29, 17, 30, tzinfo=UTC)),
        ("2027-12-31", datetime(2027, 12, 30, 17, 30, tzinfo=UTC)),
        ("2028-01-01", datetime(2027, 12, 31, 17, 30, tzinfo=UTC)),
        ("2028-01-02", datetime(2028, 1, 1, 17, 30, tzinfo=UTC)),
    ]


def test_monthly_on_the_29th_and_31st_meets_the_leap_day_and_skips_missing_days() -> None:
    start, end = _window(date(2028, 1, 1), date(2028, 4, 30), BANGKOK)
    expansion = expand(Schedule(BANGKOK, start, end, rules=parse_every("monthly on 29, 31 10:00")))
    assert [o.key for o in expansion.occurrences] == [
        "2028-01-29",
        "2028-01-31",
        "2028-02-29",
        "2028-03-29",
        "2028-03-31",
        "2028-04-29",
    ]


def test_weekly_on_monday_and_sunday_falls_on_the_first_and_last_day_of_each_week() -> None:
    start, end = _window(date(2027, 12, 27), date(2028, 1, 9), BANGKOK)
    expansion = expand(Schedule(BANGKOK, start, end, rules=parse_every("monday, sunday 10:00")))
    assert [o.key for o in expansion.occurrences] == [
        "2027-12-27",
        "2028-01-02",
        "2028-01-03",
        "2028-01-09",
    ]


BERLIN_CAMPAIGN = """\
slug: {slug}
name: สองเขตเวลา
timezone: {zone}
window:
  start: 2027-03-26
  end: 2027-03-30
communities: [nan-ban-doi-ngoen]
channels:
  facebook:
    account: community
    message: "สวัสดีจาก{{{{ community.name_th }}}} {{{{ thai_date(occurrence.at, 'full') }}}}"
schedule:
  every: daily at 10:00
"""


def test_a_campaign_in_berlin_beside_one_in_bangkok_on_the_calendar_across_summer_time(
    people: Engine,
) -> None:
    now = frozen_at(date(2027, 3, 20))  # planned a week before; the calendar is in Bangkok
    with signed_in(people, now, "somsri") as client:
        for slug, zone in (("berlin", "Europe/Berlin"), ("bangkok", "Asia/Bangkok")):
            text = BERLIN_CAMPAIGN.format(slug=slug, zone=zone)
            answer = client.post("/campaigns/apply", {"yaml": text})
            assert answer.status_code == 303, answer.text[:1000]
        with session_scope(people) as session:
            rows = session.execute(
                select(Campaign.slug, Post.scheduled_at, Post.content)
                .join(Campaign, Campaign.id == Post.campaign_id)
                .order_by(Campaign.slug, Post.scheduled_at)
            ).all()
        at = {
            slug: [t.astimezone(UTC).strftime("%m-%d %H:%M") for s, t, _c in rows if s == slug]
            for slug in ("berlin", "bangkok")
        }
        assert at == {
            "berlin": ["03-26 09:00", "03-27 09:00", "03-28 08:00", "03-29 08:00", "03-30 08:00"],
            "bangkok": ["03-26 03:00", "03-27 03:00", "03-28 03:00", "03-29 03:00", "03-30 03:00"],
        }, f"UTC times of the posts: {at}"
        # The template's date is the campaign's local day, in the Buddhist era.
        sunday = [c["message"] for s, t, c in rows if s == "berlin" and t.day == 28]
        assert sunday and sunday[0].endswith("วันอาทิตย์ที่ 28 มีนาคม พ.ศ. 2570"), sunday

        # The calendar shows Bangkok time: Berlin's 10:00 is 16:00, then 15:00 from Sunday;
        # the Sunday is the last day of its week, the Monday after it starts the next one.
        week = client.get("/calendar?view=week&day=2027-03-28").text
        for day, berlin in (
            ("2027-03-26", "16:00"),
            ("2027-03-27", "16:00"),
            ("2027-03-28", "15:00"),
        ):
            cell = re.search(rf'id="d{day}"[^>]*>(.*?)</td>', week, re.DOTALL)
            assert cell, f"no cell for {day} in the week of 2027-03-28"
            clocks = re.findall(r'<a href="/posts/\d+"[^>]*>(\d\d:\d\d) ', cell[1])
            assert clocks == ["10:00", berlin], f"{day}: expected 10:00 and {berlin}, saw {clocks}"
        assert 'id="d2027-03-29"' not in week
        following = client.get("/calendar?view=week&day=2027-03-29").text
        cell = re.search(r'id="d2027-03-29"[^>]*>(.*?)</td>', following, re.DOTALL)
        assert cell and re.findall(r">(\d\d:\d\d) ", cell[1]) == ["10:00", "15:00"]
