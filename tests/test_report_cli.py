"""``marketing report ...`` as a person runs it: options, files, formats and clear errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from marketing.cli import main
from tests.test_reports import ACTIVE, CAMPAIGN, END, INACTIVE, START, seed, sql_sums

PERIOD = ["--from", START.isoformat(), "--to", END.isoformat()]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_csv_file_opens_in_spreadsheets_and_equals_sql(session: Session, tmp_path: Path) -> None:
    seed(session)
    target = tmp_path / "out" / "nan.csv"
    result = run("report", "community", ACTIVE, *PERIOD, "--format", "csv", "-o", str(target))
    assert result.exit_code == 0, result.output
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs for Thai
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    total = next(r for r in rows if r["channel"] == "all")
    expected = sql_sums(session, slug=ACTIVE, start=START, end=END, channel=None)
    assert {name: int(total[name]) for name in expected} == expected
    assert total["community_name_th"] == "ชุมชนผ้าทอบ้านดอยเงิน"


def test_overview_json_on_stdout_with_a_buddhist_era_period(session: Session) -> None:
    seed(session)
    result = run(
        "report", "overview", "--from", "2569-10-01", "--to", "2569-10-28", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["period"] == {"start": "2026-10-01", "end": "2026-10-28", "days": 28}
    by_slug = {row["community"]["slug"]: row for row in data["rows"]}
    for slug in (ACTIVE, INACTIVE):
        expected = sql_sums(session, slug=slug, start=START, end=END, channel=None)
        assert {k: by_slug[slug]["channels"][-1]["current"][k] for k in expected} == expected


def test_days_option_counts_back_from_to(session: Session) -> None:
    seed(session)
    result = run("report", "overview", "--to", END.isoformat(), "--days", "7", "--format", "json")
    assert json.loads(result.output)["period"] == {
        "start": "2026-10-22",
        "end": "2026-10-28",
        "days": 7,
    }


def test_terminal_table_shows_thai_names_and_buddhist_era(session: Session) -> None:
    seed(session)
    result = run("report", "community", ACTIVE, *PERIOD, "--buddhist-era")
    assert result.exit_code == 0, result.output
    assert "ชุมชนผ้าทอบ้านดอยเงิน" in result.output
    assert "01/10/2569 to 28/10/2569" in result.output
    total = sql_sums(session, slug=ACTIVE, start=START, end=END, channel=None)
    assert f"{total['interactions']:,}" in result.output
    assert "Best posts" in result.output

    overview = run("report", "overview", *PERIOD, "--sort", "name")
    assert overview.exit_code == 0 and "Communities by name" in overview.output
    campaign = run("report", "campaign", CAMPAIGN)
    assert "Needs a person" in campaign.output and "Permissions" in campaign.output


def test_html_goes_to_the_data_folder_by_default(session: Session, tmp_path: Path) -> None:
    seed(session)
    result = run("report", "campaign", CAMPAIGN, "--format", "html")
    assert result.exit_code == 0, result.output
    written = tmp_path / "data" / "reports" / f"campaign-{CAMPAIGN}.html"
    assert written.is_file()
    assert str(written) in result.output.replace("\n", "")
    assert "เที่ยวชุมชน ยลวิถีไทย" in written.read_text(encoding="utf-8")


def test_mistakes_get_clear_errors(session: Session) -> None:
    seed(session)
    unknown = run("report", "community", "no-such-place", *PERIOD)
    assert unknown.exit_code == 2
    assert "no community with slug 'no-such-place'" in unknown.output
    assert "marketing communities list" in unknown.output

    backwards = run("report", "overview", "--from", "2026-10-28", "--to", "2026-10-01")
    assert backwards.exit_code == 2
    assert "give --from on or before --to" in backwards.output

    not_a_day = run("report", "overview", "--from", "2026-02-30")
    assert not_a_day.exit_code == 2 and "not a date on the calendar" in not_a_day.output

    bad_sort = run("report", "overview", "--sort", "popularity")
    assert bad_sort.exit_code == 2 and "rate" in bad_sort.output
