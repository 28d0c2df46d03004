"""Schedules: the simple ``every`` form, RRULEs, one-off times, quiet hours, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.schedule import (
    MAX_OCCURRENCES,
    QuietHours,
    Schedule,
    ScheduleError,
    check_rrule,
    expand,
    parse_duration,
    parse_every,
)

BANGKOK = ZoneInfo("Asia/Bangkok")
LONDON = ZoneInfo("Europe/London")


def _window(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return (
        datetime.combine(start, time.min, tzinfo=zone).astimezone(UTC),
        datetime.combine(end, time.max, tzinfo=zone).astimezone(UTC),
    )


def test_every_forms_become_rrules() -> None:
    assert parse_every("weekly on monday 10:00") == (
        "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;BYHOUR=10;BYMINUTE=0;BYSECOND=0",
    )
    assert parse_every("Monday, Thursday 18:30") == (
        "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,TH;BYHOUR=18;BYMINUTE=30;BYSECOND=0",
    )
    # Two times of day are two rules, not the cross product of hours and minutes.
    assert parse_every("daily at 09:00, 18:30") == (
        "FREQ=DAILY;INTERVAL=1;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
        "FREQ=DAILY;INTERVAL=1;BYHOUR=18;BYMINUTE=30;BYSECOND=0",
    )
    assert parse_every("every 2 weeks on friday 18:00")[0].startswith("FREQ=WEEKLY;INTERVAL=2;")
    assert "BYMONTHDAY=1,15" in parse_every("monthly on 1, 15 at 10:00")[0]
    assert parse_every("ทุกวันจันทร์ 10:00") == parse_every("weekly on monday 10:00")
    assert parse_every("ทุกวัน 07:30")[0].startswith("FREQ=DAILY;")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("weekly on funday 10:00", "'funday' is not a day of the week"),
        ("daily 25:00", "'25:00' is not a time of day"),
        ("hourly 10:00", "unknown unit 'hourly'"),
        ("monday", "cannot read every"),
        ("monthly on day 40 10:00", "not a day of the month"),
    ],
)
def test_every_mistakes_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        parse_every(text)


def test_rrule_checks() -> None:
    assert check_rrule("RRULE:FREQ=WEEKLY;BYDAY=SA;COUNT=4") == ("FREQ=WEEKLY;BYDAY=SA", 4)
    with pytest.raises(ScheduleError, match="remove UNTIL"):
        check_rrule("FREQ=DAILY;UNTIL=20270101T000000Z")
    with pytest.raises(ScheduleError, match="too frequent"):
        check_rrule("FREQ=MINUTELY")
    with pytest.raises(ScheduleError, match="not a valid RRULE"):
        check_rrule("FREQ=WEEKLY;BYDAY=XX")
    with pytest.raises(ScheduleError, match="not a valid RRULE"):
        check_rrule("every monday")


def test_weekly_expansion_in_bangkok_is_utc_and_keyed_by_local_date() -> None:
    start, end = _window(date(2027, 1, 1), date(2027, 1, 31), BANGKOK)
    expansion = expand(Schedule(BANGKOK, start, end, rules=parse_every("monday 10:00")))
    got = [(o.key, o.at) for o in expansion.occurrences]
    assert got == [
        (f"2027-01-{d:02d}", datetime(2027, 1, d, 3, 0, tzinfo=UTC)) for d in (4, 11, 18, 25)
    ]
    assert [o.index for o in expansion.occurrences] == [1, 2, 3, 4]


def test_second_occurrence_on_a_day_gets_a_numbered_key() -> None:
    start, end = _window(date(2027, 1, 1), date(2027, 1, 1), BANGKOK)
    expansion = expand(Schedule(BANGKOK, start, end, rules=parse_every("daily 09:00, 18:30")))
    assert [o.key for o in expansion.occurrences] == ["2027-01-01", "2027-01-01#2"]


def test_wall_clock_time_is_kept_across_daylight_saving() -> None:
    # Europe/London moves to summer time on 28 March 2027: 10:00 local is 10:00 UTC before
    # and 09:00 UTC after.
    start, end = _window(date(2027, 3, 20), date(2027, 4, 5), LONDON)
    expansion = expand(Schedule(LONDON, start, end, rules=parse_every("sunday 10:00")))
    assert [o.at for o in expansion.occurrences] == [
        datetime(2027, 3, 21, 10, tzinfo=UTC),
        datetime(2027, 3, 28, 9, tzinfo=UTC),
        datetime(2027, 4, 4, 9, tzinfo=UTC),
    ]


def test_rrule_count_is_counted_from_the_window_start() -> None:
    start, end = _window(date(2027, 5, 1), date(2027, 5, 31), BANGKOK)
    rule, count = check_rrule("FREQ=WEEKLY;BYDAY=SA;BYHOUR=9;BYMINUTE=30;COUNT=2")
    expansion = expand(Schedule(BANGKOK, start, end, rules=(rule,), count=count))
    assert [o.key for o in expansion.occurrences] == ["2027-05-01", "2027-05-08"]


def test_one_off_times_keep_their_keys_and_outside_ones_are_reported() -> None:
    start, end = _window(date(2027, 4, 1), date(2027, 4, 20), BANGKOK)
    times = (
        ("festival", datetime(2027, 4, 13, 9, tzinfo=BANGKOK)),
        (None, datetime(2027, 4, 5, 10, tzinfo=BANGKOK)),
        (None, datetime(2027, 5, 1, 10, tzinfo=BANGKOK)),
    )
    expansion = expand(Schedule(BANGKOK, start, end, times=times))
    assert [o.key for o in expansion.occurrences] == ["2027-04-05", "festival"]
    assert expansion.outside_window == [2]


def test_naive_times_are_refused() -> None:
    start, end = _window(date(2027, 4, 1), date(2027, 4, 20), BANGKOK)
    with pytest.raises(ScheduleError, match="no time zone"):
        Schedule(BANGKOK, start, end, times=((None, datetime(2027, 4, 5, 10)),))


def test_quiet_hours_postpone_or_skip() -> None:
    start, end = _window(date(2027, 1, 4), date(2027, 1, 5), BANGKOK)
    rules = parse_every("daily 22:30")
    quiet = QuietHours(time(21), time(8))
    postponed = expand(Schedule(BANGKOK, start, end, rules=rules, quiet=quiet))
    # 22:30 on the 4th waits until 08:00 on the 5th; 22:30 on the 5th would wait past the end.
    assert [
        (o.key, o.at.astimezone(BANGKOK).replace(tzinfo=None)) for o in postponed.occurrences
    ] == [("2027-01-04", datetime(2027, 1, 5, 8, 0))]
    assert postponed.quiet_skipped == 1
    skipped = expand(
        Schedule(BANGKOK, start, end, rules=rules, quiet=QuietHours(time(21), time(8), False))
    )
    assert skipped.occurrences == [] and skipped.quiet_skipped == 2
    assert QuietHours(time(12), time(13)).contains(time(12, 30))
    assert not QuietHours(time(12), time(13)).contains(time(13))
    with pytest.raises(ScheduleError):
        QuietHours(time(9), time(9))


def test_a_runaway_rule_is_an_error_not_a_hang() -> None:
    start, end = _window(date(2027, 1, 1), date(2029, 1, 1), BANGKOK)
    rule, _ = check_rrule("FREQ=HOURLY")
    with pytest.raises(ScheduleError, match="more than"):
        expand(Schedule(BANGKOK, start, end, rules=(rule,)))
    assert MAX_OCCURRENCES == 10_000


def test_durations() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("3h") == timedelta(hours=3)
    with pytest.raises(ScheduleError):
        parse_duration("soon")


# --- properties ----------------------------------------------------------------------------

ZONES = ["Asia/Bangkok", "Europe/London", "America/New_York", "Australia/Lord_Howe", "UTC"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
clocks = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@st.composite
def every_forms(draw: st.DrawFn) -> tuple[str, ...]:
    clock_texts = draw(st.lists(clocks, min_size=1, max_size=3)).copy()
    times = ", ".join(c.strftime("%H:%M") for c in clock_texts)
    unit = draw(st.sampled_from(["daily", "weekly", "monthly"]))
    interval = draw(st.integers(1, 3))
    on = ""
    if unit == "weekly":
        on = " on " + ", ".join(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3)))
    elif unit == "monthly":
        on = " on " + ", ".join(
            str(d) for d in draw(st.lists(st.integers(1, 31), min_size=1, max_size=3))
        )
    return parse_every(f"every {interval} {unit}{on} at {times}")


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    first = draw(st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)))
    last = first + timedelta(days=draw(st.integers(0, 120)))
    start = datetime.combine(first, draw(clocks), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last, time.max, tzinfo=zone).astimezone(UTC)
    quiet = None
    if draw(st.booleans()):
        a, b = draw(clocks), draw(clocks)
        if a != b:
            quiet = QuietHours(a, b, postpone=draw(st.booleans()))
    if draw(st.booleans()):
        offsets = st.sampled_from([ZoneInfo(z) for z in ZONES])
        moments = st.builds(
            lambda d, c, z: datetime.combine(d, c, tzinfo=z),
            st.dates(min_value=first - timedelta(days=2), max_value=last + timedelta(days=2)),
            clocks,
            offsets,
        )
        times = tuple((None, m) for m in draw(st.lists(moments, min_size=1, max_size=5)))
        return Schedule(zone, start, end, times=times, quiet=quiet)
    return Schedule(zone, start, end, rules=draw(every_forms()), quiet=quiet)


@settings(max_examples=150, deadline=None)
@given(schedules())
def test_expansion_never_yields_a_naive_or_out_of_window_time(schedule: Schedule) -> None:
    expansion = expand(schedule)
    keys = [o.key for o in expansion.occurrences]
    assert len(keys) == len(set(keys))
    for occurrence in expansion.occurrences:
        for moment in (occurrence.at, occurrence.nominal):
            assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
            assert schedule.start <= moment <= schedule.end
        if schedule.quiet is not None:
            assert not schedule.quiet.contains(occurrence.at.astimezone(schedule.zone).time())
    assert [o.nominal for o in expansion.occurrences] == sorted(
        o.nominal for o in expansion.occurrences
    )
