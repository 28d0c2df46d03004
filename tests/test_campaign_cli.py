"""``marketing campaign ...``: validating as a person would (real processes in a fresh folder),
and the whole life of a campaign through the commands (in this process, on each backend)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner, Result

import campaigns
from marketing.cli import main
from marketing.cli.base import console, err_console

MARKETING = shutil.which("marketing", path=str(Path(sys.executable).parent)) or "marketing"
EXAMPLES = Path(campaigns.__file__).parent / "examples"
FIXTURES = Path(__file__).parent / "campaign_fixtures"

CAMPAIGN = """\
slug: cli-test
name: ทดสอบคำสั่ง
window: {start: 2030-01-01, end: 2030-01-31}
communities: [nan-ban-doi-ngoen, trat-ban-ao-sai]
channels:
  facebook:
    message: "สวัสดีจาก{{ community.name_th }} {{ thai_date(occurrence.at, 'full') }}"
schedule:
  every: weekly on monday 10:00
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [MARKETING, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_validate_the_examples_and_a_file_with_mistakes(tmp_path: Path) -> None:
    folder = tmp_path
    assert run("db", "upgrade", cwd=folder).returncode == 0
    assert run("communities", "import", "--sample", cwd=folder).returncode == 0
    examples = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    good = run("campaign", "validate", *examples, cwd=folder)
    assert good.returncode == 0, good.stderr
    assert good.stdout.count("✓") == len(examples)
    bad_file = FIXTURES / "ten-mistakes.yaml"
    bad = run("campaign", "validate", examples[0], str(bad_file), cwd=folder)
    assert bad.returncode == 2
    assert "10 problems" in bad.stderr
    for line, field in (
        (3, "descripton"),
        (16, "channels.facebook.message"),
        (29, "schedule.at[0]"),
    ):
        assert f"{bad_file}:{line}:" in bad.stderr and field in bad.stderr
    assert "1 of 2 file(s) have problems" in bad.stderr


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The commands in this process, on each database backend, with wide output, on
    28 November 2026 (CAMPAIGN's January 2030 stays ahead whatever day the suite runs)."""
    for shown in (console, err_console):
        monkeypatch.setattr(shown, "width", 200)
    runner = CliRunner()
    with time_machine.travel(datetime(2026, 11, 28, 5, 0, tzinfo=UTC), tick=True):
        assert runner.invoke(main, ["communities", "import", "--sample"]).exit_code == 0
        yield runner


def test_plan_apply_approve_and_the_statuses(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "cli-test.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")

    def invoke(*args: str) -> Result:
        return cli.invoke(main, ["campaign", *args])

    planned = invoke("plan", str(path), "--preview")
    assert planned.exit_code == 0, planned.output
    assert "2030-01-07 10:00" in planned.stdout and "trat-ban-ao-sai" in planned.stdout
    assert "8 posts; applying would add 8" in planned.stdout
    assert "สวัสดีจากชุมชนผ้าทอบ้านดอยเงิน วันจันทร์ที่ 7 มกราคม พ.ศ. 2573" in planned.stdout

    applied = invoke("apply", str(path), "--by", "สมศรี")
    assert applied.exit_code == 0, applied.output
    assert "Created campaign cli-test (draft): 8 posts added" in applied.stdout
    assert "marketing campaign approve cli-test" in applied.stdout
    assert "Nothing changed" in invoke("apply", str(path)).stdout
    assert "same" in invoke("plan", str(path)).stdout

    approved = cli.invoke(main, ["campaign", "approve", "cli-test", "--by", "หัวหน้า"], input="y\n")
    assert approved.exit_code == 0 and "Approved cli-test (by หัวหน้า" in approved.stdout
    assert "Paused cli-test" in invoke("pause", "cli-test").stdout
    assert "Resumed cli-test" in invoke("resume", "cli-test").stdout
    path.write_text(CAMPAIGN.replace("10:00", "11:00"), encoding="utf-8")
    edited = invoke("apply", str(path))
    assert "8 updated" in edited.stdout and "draft again" in edited.stdout

    listed = invoke("list")
    assert "cli-test" in listed.stdout and "ทดสอบคำสั่ง" in listed.stdout
    assert "draft" in listed.stdout and "scheduled 8" in listed.stdout
    refused = invoke("pause", "cli-test")
    assert refused.exit_code == 2 and "Refused" in refused.stderr

    cancelled = invoke("cancel", "cli-test")
    assert cancelled.exit_code == 0 and "8 posts will not be published" in cancelled.stdout
    status = invoke("status", "cli-test")
    assert "status: cancelled" in status.stdout and "facebook" in status.stdout
    assert "cancelled" in status.stdout
    missing = invoke("status", "nope")
    assert missing.exit_code == 2 and "no campaign 'nope'" in missing.stderr
