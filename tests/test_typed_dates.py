"""One calendar rule for dates people type (#15): a web date field shows and reads
``dd/mm/yyyy`` in the reader's era -- ``25/12/2569`` by default, ``25/12/2026`` for a user who
chose the Common era -- never the browser's own Common-era picker; a date that is not one is
refused with a message in the reader's language that shows how to write it.  The web tests run
on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from marketing.db import session_scope
from marketing.models import Role, Subscriber
from marketing.thai import parse_typed_day, typed_day
from marketing.web import create_app
from tests.support.web import NOW, WebClient, add_user, clock_at, import_sample, imported

COMMUNITY = "nan-ban-doi-ngoen"


@pytest.mark.parametrize(
    ("text", "buddhist_era", "expected"),
    [
        ("25/12/2569", True, date(2026, 12, 25)),
        ("1/1/2570", True, date(2027, 1, 1)),  # the Buddhist-era new year
        ("29/02/2571", True, date(2028, 2, 29)),  # a leap day
        ("๒๕/๑๒/๒๕๖๙", True, date(2026, 12, 25)),  # Thai digits
        ("25-12-2569", True, date(2026, 12, 25)),
        ("25/12/2026", False, date(2026, 12, 25)),
        ("2026-12-25", True, date(2026, 12, 25)),  # ISO, from the app's own links
    ],
)
def test_a_typed_day_is_read_in_the_readers_era(
    text: str, buddhist_era: bool, expected: date
) -> None:
    assert parse_typed_day(text, buddhist_era=buddhist_era) == expected


@pytest.mark.parametrize(
    ("text", "buddhist_era"),
    [
        ("31/04/2569", True),  # April has 30 days
        ("29/02/2569", True),  # 2026 is no leap year
        ("12/01/2026", True),  # a Common-era year where the Buddhist era is read: 1483
        ("25/12/2569", False),  # a Buddhist-era year where the Common era is read: 2569
        ("25 ธ.ค. 2569", True),
        ("", True),
    ],
)
def test_a_day_that_is_not_one_is_refused(text: str, buddhist_era: bool) -> None:
    with pytest.raises(ValueError):
        parse_typed_day(text, buddhist_era=buddhist_era)


def test_a_day_is_written_as_it_is_typed() -> None:
    assert typed_day(date(2026, 12, 25), buddhist_era=True) == "25/12/2569"
    assert typed_day(date(2027, 1, 5), buddhist_era=False) == "05/01/2027"


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    import_sample(engine)
    add_user(engine, "malee", Role.EDITOR)
    add_user(engine, "john", Role.EDITOR, language="en")
    return create_app(engine=engine, clock=clock_at(NOW))  # 28 Nov 2026, 12:00 in Bangkok


@pytest.fixture
def malee(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("malee")
    yield client
    client.close()


def test_thai_fields_show_and_read_the_buddhist_era(malee: WebClient) -> None:
    page = malee.get("/reports").text
    assert 'type="date"' not in page  # no browser picker showing Common-era years
    assert 'value="01/11/2569"' in page and 'value="28/11/2569"' in page  # the last 28 days
    assert 'placeholder="วว/ดด/ปปปป"' in page
    report = malee.get("/reports/overview?from=01/10/2569&to=28/10/2569")
    assert report.status_code == 200 and "1 ต.ค. 2569 – 28 ต.ค. 2569 (28 วัน)" in report.text

    calendar = malee.get("/calendar?day=25/12/2569").text
    assert "ธันวาคม 2569" in calendar and 'value="25/12/2569"' in calendar
    assert 'type="date"' not in calendar


def test_a_date_that_is_not_one_is_refused_in_thai(malee: WebClient) -> None:
    refused = malee.get("/reports/overview?from=31/04/2569&to=28/10/2569")
    assert refused.status_code == 400
    assert "“31/04/2569” อ่านเป็นวันที่ไม่ได้" in refused.text
    assert "วัน/เดือน/ปี (พ.ศ.) เช่น 25/12/2569" in refused.text
    # The case: a Common-era year typed under the Buddhist era is named, not read as
    # the year 1483; the calendar stays on today and says why.
    calendar = malee.get("/calendar?day=12/01/2026").text
    assert "“12/01/2026” อ่านเป็นวันที่ไม่ได้" in calendar and "พฤศจิกายน 2569" in calendar


def test_a_user_who_chose_the_common_era_types_it(app: FastAPI) -> None:
    john = WebClient(app).sign_in("john")
    assert john.post("/account", {"language": "en", "display_name": "John"}).status_code == 303
    page = john.get("/reports").text
    assert 'value="01/11/2026"' in page and 'placeholder="dd/mm/yyyy"' in page
    report = john.get("/reports/overview?from=01/10/2026&to=28/10/2026")
    assert report.status_code == 200
    refused = john.get("/reports/overview?from=01/10/2569")
    assert refused.status_code == 400
    assert "write day/month/year (Common era), e.g. 25/12/2026" in refused.text
    john.close()


def test_the_consent_date_of_an_import_is_typed_in_the_buddhist_era(
    malee: WebClient, engine: Engine
) -> None:
    form = malee.get(f"/communities/{COMMUNITY}").text
    assert 'id="consent_date" name="consent_date" type="text"' in form
    rows = b"email,name\nnew.one@example.org,\xe0\xb8\x81\n"
    refused = malee.post(
        f"/communities/{COMMUNITY}/subscribers",
        {"consent_source": "แบบฟอร์มกระดาษ", "consent_date": "31/11/2569"},
        files={"file": ("list.csv", rows, "text/csv")},
    )
    assert refused.status_code == 422 and "“31/11/2569” อ่านเป็นวันที่ไม่ได้" in refused.text
    answer = malee.post(
        f"/communities/{COMMUNITY}/subscribers",
        {"consent_source": "แบบฟอร์มกระดาษ", "consent_date": "01/11/2569"},
        files={"file": ("list.csv", rows, "text/csv")},
    )
    imported(malee, answer)
    with session_scope(engine) as session:
        new = session.scalars(
            select(Subscriber).where(Subscriber.email == "new.one@example.org")
        ).one()
        assert new.consent_at == datetime(2026, 10, 31, 17, 0, tzinfo=UTC)  # midnight in Bangkok
