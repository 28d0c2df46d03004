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
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import campaigns
from marketing.cli import main
from marketing.cli.base import console, err_console
from marketing.models import AuditLog

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
    assert good.stdout.count("✓") == len(examples) and "ชุมชน" in good.stdout
    bad_file = FIXTURES / "ten-mistakes.yaml"
    bad = run("--lang", "en", "campaign", "validate", examples[0], str(bad_file), cwd=folder)
    assert bad.returncode == 2
    assert "10 problem(s)" in bad.stderr and "communities" in bad.stdout
    for line, field in (
        (3, "descripton"),
        (16, "channels.facebook.message"),
        (29, "schedule.at[0]"),
    ):
        assert f"{bad_file}:{line}:" in bad.stderr and field in bad.stderr
    assert "1 of 2 file(s) have problems" in bad.stderr
    thai = run("campaign", "validate", str(bad_file), cwd=folder)
    assert "ปัญหา 10 ข้อ" in thai.stderr and "มีปัญหา 1 จาก 1 ไฟล์" in thai.stderr
    assert "descripton: ไม่ใช่ช่องที่รู้จัก (ตรวจการสะกด)" in thai.stderr


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
    assert "7 ม.ค. 2573 10:00" in planned.stdout and "trat-ban-ao-sai" in planned.stdout
    assert "8 โพสต์ ถ้านำไปใช้จะเพิ่ม 8" in planned.stdout
    assert "สวัสดีจากชุมชนผ้าทอบ้านดอยเงิน วันจันทร์ที่ 7 มกราคม พ.ศ. 2573" in planned.stdout

    applied = cli.invoke(main, ["--lang", "en", "campaign", "apply", str(path), "--by", "สมศรี"])
    assert applied.exit_code == 0, applied.output
    assert "Created campaign cli-test (draft (awaiting approval)): 8 posts added" in applied.stdout
    assert "marketing campaign approve cli-test" in applied.stdout
    assert "ไม่มีอะไรเปลี่ยน: cli-test ตรงกับที่" in invoke("apply", str(path)).stdout
    assert "เหมือนเดิม" in invoke("plan", str(path)).stdout
    assert "same" in cli.invoke(main, ["--lang", "en", "campaign", "plan", str(path)]).stdout

    approved = cli.invoke(
        main, ["--lang", "en", "campaign", "approve", "cli-test", "--by", "หัวหน้า"], input="y\n"
    )
    assert approved.exit_code == 0 and "Approved cli-test (by หัวหน้า" in approved.stdout
    assert "Approve exactly this version?" in approved.output
    assert "หยุดชั่วคราวแล้ว cli-test" in invoke("pause", "cli-test").stdout
    assert "ทำต่อแล้ว cli-test" in invoke("resume", "cli-test").stdout
    path.write_text(CAMPAIGN.replace("10:00", "11:00"), encoding="utf-8")
    edited = cli.invoke(main, ["--lang", "en", "campaign", "apply", str(path)])
    assert "8 updated" in edited.stdout and "draft again" in edited.stdout

    listed = invoke("list")
    assert "cli-test" in listed.stdout and "ทดสอบคำสั่ง" in listed.stdout
    assert "ร่าง (รออนุมัติ)" in listed.stdout and "รอเวลาเผยแพร่ 8" in listed.stdout
    refused = invoke("pause", "cli-test")
    assert refused.exit_code == 2 and "ทำไม่ได้:" in refused.stderr

    cancelled = invoke("cancel", "cli-test")
    assert cancelled.exit_code == 0 and "cli-test: 8 โพสต์จะไม่ถูกเผยแพร่" in cancelled.stdout
    status = cli.invoke(main, ["--lang", "en", "campaign", "status", "cli-test"])
    assert "status: cancelled" in status.stdout and "Facebook" in status.stdout
    assert "approval hash:" in status.stdout
    thai = invoke("status", "cli-test")
    assert "สถานะ: ยกเลิกแล้ว" in thai.stdout and "ช่องทาง" in thai.stdout
    assert "รหัสยืนยันการอนุมัติ:" in thai.stdout and "status:" not in thai.stdout
    missing = invoke("status", "nope")
    assert missing.exit_code == 2 and "no campaign 'nope'" in missing.stderr


def _hash(cli: CliRunner, slug: str) -> str:
    status = cli.invoke(main, ["--lang", "en", "campaign", "status", slug])
    assert status.exit_code == 0, status.output
    return status.stdout.rsplit("approval hash: ", 1)[1].split()[0]


def _approve(cli: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return cli.invoke(
        main,
        [
            "--lang",
            "en",
            "campaign",
            "approve",
            "cli-test",
            "--expect-hash",
            _hash(cli, "cli-test"),
            *args,
        ],
        env=env,
    )


def _audit(engine: Engine, action: str) -> list[AuditLog]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(AuditLog)
                .where(AuditLog.object_id == "cli-test", AuditLog.action == action)
                .order_by(AuditLog.id)
            )
        )


def test_four_eyes_whoever_created_or_changed_a_campaign_may_not_approve_it_on_the_cli(
    cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "cli-test.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    assert cli.invoke(main, ["campaign", "apply", str(path), "--by", "malee"]).exit_code == 0
    assert [e.actor for e in _audit(engine, "campaign.apply")] == ["malee"]

    own = _approve(cli, "--by", "malee")
    assert own.exit_code == 2, own.output
    assert (
        "malee applied a change to it that no one else has approved, so malee may not "
        "approve 'cli-test'" in own.stderr.replace("\n", " ")
    )
    assert "--single-person" in own.stderr
    asked = cli.invoke(
        main, ["--lang", "en", "campaign", "approve", "cli-test", "--by", "malee"], input="y\n"
    )
    assert asked.exit_code == 2 and "Approve exactly this version?" not in asked.output
    shown = cli.invoke(main, ["--lang", "en", "campaign", "status", "cli-test"]).stdout
    assert "status: draft (awaiting approval)" in shown

    other = _approve(cli, "--by", "somchai")
    assert other.exit_code == 0 and "Approved cli-test (by somchai" in other.stdout
    approvals = _audit(engine, "campaign.approve")
    assert [(e.actor, e.detail.get("single_person")) for e in approvals] == [("somchai", None)]

    # somchai changes it: now somchai may not approve it, and malee (its creator) may.
    path.write_text(CAMPAIGN.replace("10:00", "11:00"), encoding="utf-8")
    assert cli.invoke(main, ["campaign", "apply", str(path), "--by", "somchai"]).exit_code == 0
    again = _approve(cli, "--by", "somchai")
    assert again.exit_code == 2 and "somchai applied a change to it" in again.stderr
    creator = _approve(cli, "--by", "malee")
    assert creator.exit_code == 0 and "Approved cli-test (by malee" in creator.stdout


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_single_person_mode_lets_a_team_of_one_approve_and_the_audit_log_records_it(
    how: str, cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "cli-test.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    assert cli.invoke(main, ["campaign", "apply", str(path), "--by", "malee"]).exit_code == 0
    if how == "flag":
        done = _approve(cli, "--by", "malee", "--single-person")
    else:
        done = _approve(cli, "--by", "malee", env={"MARKETING_SINGLE_PERSON_APPROVAL": "true"})
    assert done.exit_code == 0, done.output
    assert "Approved cli-test (by malee" in done.stdout
    assert "Single-person approval: malee approves a change malee applied" in done.stdout
    [entry] = _audit(engine, "campaign.approve")
    assert entry.actor == "malee"
    assert entry.detail["single_person"] is True
    assert entry.detail["four_eyes_waived"] == "applied-change"
    assert entry.detail["via"] == "command line"
