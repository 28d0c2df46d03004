"""The ``marketing`` console script, run as a person would: a real process, a fresh folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from marketing.cli.communities import SAMPLE

MARKETING = shutil.which("marketing", path=str(Path(sys.executable).parent)) or "marketing"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    return subprocess.run(
        [MARKETING, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_help_lists_commands(tmp_path: Path) -> None:
    out = run("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("db", "communities"):
        assert command in out.stdout


def test_fresh_folder_upgrade_and_import_twice(tmp_path: Path) -> None:
    first = run("db", "upgrade", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "data" / "marketing.sqlite3").is_file()
    imported = run("communities", "import", str(SAMPLE), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert "communities" in imported.stdout and "10" in imported.stdout
    again = run("communities", "import", "--sample", cwd=tmp_path)
    assert again.returncode == 0
    assert "Nothing changed" in again.stdout
    listed = run("communities", "list", cwd=tmp_path)
    assert "บุรีรัมย์" in listed.stdout


def test_malformed_file_exits_non_zero_naming_line_and_field(tmp_path: Path) -> None:
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("communities:\n  - slug: a\n    name_th: ก\n    name_en: A\n", encoding="utf-8")
    out = run("--lang", "en", "communities", "import", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    assert f"{bad}:2:" in out.stderr
    assert "communities[0].province" in out.stderr
    assert "1 problem(s) found; nothing was changed." in out.stderr
    assert "is required but missing" in out.stderr
    # Thai by default: the summary and the problem itself (through the web app's words).
    thai = run("communities", "import", str(bad), cwd=tmp_path)
    assert thai.returncode == 2 and "communities[0].province" in thai.stderr
    assert "พบปัญหา 1 ข้อ ไม่ได้เปลี่ยนแปลงอะไร" in thai.stderr
    assert "ต้องมีแต่ยังไม่ได้ใส่" in thai.stderr and "nothing was changed" not in thai.stderr


def test_users_add_before_db_upgrade_says_to_upgrade_and_creates_no_database(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    added = subprocess.run(
        [MARKETING, "users", "add", "malee", "--password-stdin"],
        cwd=tmp_path,
        env=env,
        input="a-long-password-1\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 2, added.stderr
    assert "there is no database yet" in added.stderr
    assert "marketing db upgrade" in added.stderr
    assert not (tmp_path / "data" / "marketing.sqlite3").exists()


def test_commands_on_an_empty_database_file_say_to_upgrade(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "marketing.sqlite3").write_bytes(b"")
    for args in (("users", "list"), ("communities", "import", "--sample"), ("campaign", "list")):
        out = run(*args, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert "has no tables yet" in out.stderr and "marketing db upgrade" in out.stderr
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    assert run("users", "list", cwd=tmp_path).returncode == 0


def test_the_demo_hint_names_the_virtual_environments_marketing_unless_it_is_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketing.cli.demo import marketing_command

    script = Path(sys.executable).parent / "marketing"
    monkeypatch.chdir(script.parent.parent.parent)  # the folder holding .venv
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert marketing_command() == str(script.relative_to(script.parent.parent.parent))
    monkeypatch.chdir(tmp_path)
    assert marketing_command() == str(script)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")  # activated
    assert marketing_command() == "marketing"
