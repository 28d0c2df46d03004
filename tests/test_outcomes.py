"""Monthly outcomes per community (sales, bookings, visitors) imported from a CSV: every line
checked first, every problem named by file, line and field, a bad file changes nothing; and
the yearly programme report that puts them beside engagement, in Thai with Buddhist-era
years, at desktop and phone width in Chromium (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from marketing.cli import main
from marketing.cli.communities import SAMPLE
from marketing.models import Community, CommunityOutcome, Role
from marketing.outcomes import import_outcomes, parse_month, year_outcomes
from marketing.problems import InvalidInput
from marketing.reference import import_reference
from marketing.web import create_app
from tests.support.web import NOW, WebClient, add_user, clock_at, served
from tests.test_web_browser import browser  # noqa: F401  (the module's Chromium, reused)
from tests.test_web_phone import Walker

WHEN = datetime(2027, 2, 3, 9, 0, tzinfo=UTC)
GOOD = """\
community,month,sales,bookings,visitors
nan-ban-doi-ngoen,2570-01,125000,42,380
nan-ban-doi-ngoen,2027-02,"98,500.50",,210
phrae-ban-thung-khram,2570-01,0,3,
"""
BAD = """\
community,month,sales,bookings,visitors
nan-ban-doi-ngoen,2570-01,125000,42,380
nan-ban-doi-ngen,2570-02,1000,1,1
phrae-ban-thung-khram,2570-13,1000,1,1
phrae-ban-thung-khram,2570-03,lots,-2,1.5
nan-ban-doi-ngoen,2027-01,5,5,5
"""


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


def _write(tmp_path: Path, text: str, name: str = "outcomes.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _import(session: Session, path: Path) -> Any:
    summary = import_outcomes(session=session, path=path, actor="malee", now=WHEN)
    session.commit()
    return summary


def test_months_in_either_era() -> None:
    assert parse_month("2570-01") == date(2027, 1, 1) == parse_month("2027-1")
    for bad in ("2570-13", "27-01", "2570/01", "1999-12"):
        with pytest.raises(ValueError):
            parse_month(bad)


def test_a_good_file_is_imported_and_a_second_import_replaces_months(
    sample: Session, tmp_path: Path
) -> None:
    summary = _import(sample, _write(tmp_path, GOOD))
    assert (summary.added, summary.updated, summary.unchanged) == (3, 0, 0)
    ids = {c.slug: c.id for c in sample.scalars(select(Community))}
    rows = {
        (o.community_id, o.month): (o.sales, o.bookings, o.visitors)
        for o in sample.scalars(select(CommunityOutcome))
    }
    nan, phrae = ids["nan-ban-doi-ngoen"], ids["phrae-ban-thung-khram"]
    assert rows[(nan, date(2027, 1, 1))] == (Decimal("125000.00"), 42, 380)
    assert rows[(nan, date(2027, 2, 1))] == (Decimal("98500.50"), None, 210)  # blank: unknown
    assert rows[(phrae, date(2027, 1, 1))] == (Decimal("0.00"), 3, None)  # zero is a figure

    again = _import(sample, _write(tmp_path, GOOD))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    changed = GOOD.replace("125000,42,380", "130000,42,380")
    third = _import(sample, _write(tmp_path, changed))
    assert (third.added, third.updated, third.unchanged) == (0, 1, 2)

    year = year_outcomes(session=sample, year=2027)
    assert year[nan].sales == Decimal("228500.50") and year[nan].bookings == 42
    assert year[nan].visitors == 590 and year[nan].months == 2
    assert year[phrae].visitors is None and year[phrae].months == 1


def test_a_bad_file_names_every_problem_and_changes_nothing(
    sample: Session, tmp_path: Path
) -> None:
    path = _write(tmp_path, BAD, "bad.csv")
    with pytest.raises(InvalidInput) as raised:
        _import(sample, path)
    found = {(p.line, p.field) for p in raised.value.problems}
    assert found == {
        (3, "community"),  # a misspelt slug
        (4, "month"),  # month 13
        (5, "sales"),
        (5, "bookings"),
        (5, "visitors"),
        (6, "month"),  # nan 2027-01 is line 2's 2570-01 again
    }
    assert all(p.file == str(path) for p in raised.value.problems)
    close = next(p for p in raised.value.problems if p.field == "community")
    assert close.hint == "did you mean nan-ban-doi-ngoen?"
    sample.rollback()
    assert sample.scalar(select(func.count()).select_from(CommunityOutcome)) == 0


def test_a_wrong_header_is_one_problem_at_line_one(sample: Session, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as raised:
        _import(sample, _write(tmp_path, "community,month,revenue\nnan-ban-doi-ngoen,2570-01,5\n"))
    [problem] = raised.value.problems
    assert (problem.line, problem.field, problem.code) == (1, "(header)", "outcome_header")


def test_the_command_imports_in_thai_and_refuses_a_bad_file_in_thai(
    engine: Engine, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["communities", "import", "--sample"]).exit_code == 0
    done = runner.invoke(main, ["communities", "outcomes", str(_write(tmp_path, GOOD))])
    assert done.exit_code == 0, done.output
    assert "เพิ่ม 3 เดือน แทนที่ 0 เดือน" in done.output
    bad = runner.invoke(main, ["communities", "outcomes", str(_write(tmp_path, BAD, "bad.csv"))])
    assert bad.exit_code != 0
    text = " ".join(bad.output.split())
    assert "bad.csv" in text and "เขียนเดือนเป็น ปปปป-ดด" in text
    assert "ต้องเป็นจำนวนเต็มตั้งแต่ 0 ขึ้นไป" in text


def test_the_yearly_report_puts_outcomes_beside_engagement(
    sample: Session, engine: Engine, tmp_path: Path
) -> None:
    _import(sample, _write(tmp_path, GOOD))
    add_user(engine, "malee", Role.VIEWER)
    client = WebClient(create_app(engine=engine, clock=clock_at(NOW))).sign_in("malee")
    page = client.get("/reports/year/2570")
    assert page.status_code == 200
    text = page.text
    assert "ผลของโครงการประจำปี 2570" in text
    assert "223,500.50" in text  # nan's two months: 125,000 + 98,500.50
    assert "ทั้งโครงการ" in text
    assert client.get("/reports/year/2027").text == text  # either era
    assert client.get("/reports/year/1999").status_code == 400  # no such year
    reports = client.get("/reports").text
    assert 'href="/reports/year/' in reports


def test_the_yearly_report_fits_desktop_and_phone(
    browser: Any,  # noqa: F811
    sample: Session,
    engine: Engine,
    tmp_path: Path,
) -> None:
    _import(sample, _write(tmp_path, GOOD))
    add_user(engine, "admin", Role.ADMIN)
    with served(engine, clock=clock_at(NOW)) as server:
        walker = Walker(browser, server.url, photos=True)
        walker.sign_in()
        walker.check("report-year-outcomes", "/reports/year/2570")
        assert walker.problems == []
        for page, _size in walker.tabs:
            assert page.locator("table.year-report tbody tr").count() == 11  # 10 + programme
            assert "223,500.50" in page.locator("table.year-report").inner_text()


def test_editors_import_on_the_yearly_report_and_a_bad_file_changes_nothing(
    sample: Session, engine: Engine
) -> None:
    add_user(engine, "malee", Role.EDITOR)
    editor = WebClient(create_app(engine=engine, clock=clock_at(NOW))).sign_in("malee")
    editor.refresh_csrf("/reports/year/2570")
    bad = editor.post(
        "/reports/year/2570/outcomes",
        files={"file": ("bad.csv", BAD.encode(), "text/csv")},
    )
    assert bad.status_code == 422
    assert "ไม่ได้นำเข้าผลลัพธ์" in bad.text and "bad.csv" in bad.text
    assert "เขียนเดือนเป็น ปปปป-ดด" in bad.text
    sample.rollback()
    assert sample.scalar(select(func.count()).select_from(CommunityOutcome)) == 0
    good = editor.post(
        "/reports/year/2570/outcomes",
        files={"file": ("good.csv", GOOD.encode(), "text/csv")},
    )
    assert good.status_code == 303 and good.headers["location"] == "/reports/year/2570"
    page = editor.get("/reports/year/2570").text
    assert "เพิ่ม 3 เดือน แทนที่ 0 เดือน" in page and "223,500.50" in page
    add_user(engine, "somchai", Role.VIEWER)
    viewer = WebClient(create_app(engine=engine, clock=clock_at(NOW))).sign_in("somchai")
    assert 'id="outcomes"' not in viewer.get("/reports/year/2570").text
    refused = viewer.post(
        "/reports/year/2570/outcomes", files={"file": ("good.csv", GOOD.encode(), "text/csv")}
    )
    assert refused.status_code == 403
