"""``marketing report ...`` as a person runs it: options, files, formats and clear errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketing.cli import main
from marketing.models import Campaign, Community, Post
from marketing.settings import get_settings
from tests.test_reports import ACTIVE, CAMPAIGN, END, INACTIVE, START, seed, sql_sums
from tests.test_web_language_walk import thai_left, visible_text

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


def test_terminal_table_is_thai_in_the_buddhist_era_by_default(session: Session) -> None:
    seed(session)
    result = run("report", "community", ACTIVE, *PERIOD)
    assert result.exit_code == 0, result.output
    assert "ชุมชนผ้าทอบ้านดอยเงิน" in result.output
    assert "1 ต.ค. 2569 ถึง 28 ต.ค. 2569 (28 วัน)" in result.output
    total = sql_sums(session, slug=ACTIVE, start=START, end=END, channel=None)
    assert f"{total['interactions']:,}" in result.output
    assert "โพสต์ที่ดีที่สุด" in result.output and "Best posts" not in result.output

    overview = run("report", "overview", *PERIOD, "--sort", "name")
    assert overview.exit_code == 0 and "ชุมชนเรียงตามชื่อชุมชน" in overview.output
    campaign = run("report", "campaign", CAMPAIGN)
    assert "ต้องให้คนดูแล" in campaign.output and "Needs a person" not in campaign.output


def test_terminal_table_in_english_and_the_common_era_by_choice(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(session)
    result = run("--lang", "en", "--era", "ce", "report", "community", ACTIVE, *PERIOD)
    assert result.exit_code == 0, result.output
    assert "1 Oct 2026 to 28 Oct 2026 (28 days)" in result.output
    assert "Best posts" in result.output

    monkeypatch.setenv("MARKETING_LANGUAGE", "en")  # the era follows the language
    get_settings.cache_clear()
    overview = run("report", "overview", *PERIOD, "--sort", "name")
    assert overview.exit_code == 0 and "Communities by name" in overview.output
    assert "1 Oct 2026" in overview.output
    buddhist = run("--era", "be", "report", "campaign", CAMPAIGN)
    assert "Needs a person" in buddhist.output and "Permissions" in buddhist.output
    assert "2569" in buddhist.output and "2026" not in buddhist.output


def test_dates_typed_in_the_buddhist_era_as_thai_staff_write_them(session: Session) -> None:
    seed(session)
    typed = run(
        "report", "overview", "--from", "01/10/2569", "--to", "28/10/2569", "--format", "json"
    )
    iso = run("report", "overview", *PERIOD, "--format", "json")
    assert typed.exit_code == 0, typed.output
    assert json.loads(typed.output)["period"] == json.loads(iso.output)["period"]
    wrong = run("report", "overview", "--from", "31/04/2570")
    assert wrong.exit_code == 2 and "not a date on the calendar" in wrong.output


def test_html_from_the_command_line_is_in_the_buddhist_era(
    session: Session, tmp_path: Path
) -> None:
    seed(session)
    target = tmp_path / "nan.html"
    result = run("report", "community", ACTIVE, *PERIOD, "--format", "html", "-o", str(target))
    assert result.exit_code == 0, result.output
    html = target.read_text(encoding="utf-8")
    assert "2569" in html and "ต.ค. 2026" not in html


def test_html_in_english_with_language_en(session: Session, tmp_path: Path) -> None:
    seed(session)
    data = sorted(
        {
            *session.scalars(select(Community.name_th)),
            *session.scalars(select(Community.province)),
            *session.scalars(select(Campaign.name)),
            # A post's error and hint are shown as recorded (data, like the web's raw text).
            *(
                s
                for row in session.execute(select(Post.last_error, Post.action_hint))
                for s in row
                if s
            ),
            *(
                line  # a post is labelled by its first line
                for content in session.scalars(select(Post.content))
                for v in content.values()
                if isinstance(v, str)
                for line in [v, *v.splitlines()]
            ),
        },
        key=len,
        reverse=True,
    )
    for command in (["community", ACTIVE, *PERIOD], ["campaign", CAMPAIGN]):
        target = tmp_path / f"{command[0]}.html"
        args = ["--language", "en", "report", *command, "--format", "html", "-o", str(target)]
        result = run(*args)
        assert result.exit_code == 0, result.output
        html = target.read_text(encoding="utf-8")
        assert '<html lang="en">' in html and "Best posts" in html
        thai = [t for chunk in visible_text(html) for t in thai_left(chunk, data)]
        assert thai == [], thai[:8]
    community = (tmp_path / "community.html").read_text(encoding="utf-8")
    assert "1 Oct 2026 – 28 Oct 2026 (28 days)" in community  # the era follows the language
    assert "Results by channel" in community and "vs the previous period" in community


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
