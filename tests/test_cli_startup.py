"""``marketing --help`` and the commands that need no channel start without the channel SDKs,
the web framework, the template engine or the campaign engine (#15): each is imported inside
the command that uses it.  Checked with Python's own import profile of a real process, so no
timing is involved."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
import pytest

from marketing.cli import main
from marketing.cli.base import LazyConsole

if TYPE_CHECKING:
    from rich.console import Console

MARKETING = shutil.which("marketing", path=str(Path(sys.executable).parent)) or "marketing"
HEAVY = (
    "facebook_business",
    "googleapiclient",
    "linebot",
    "fastapi",
    "jinja2",
    "uvicorn",
    "celery",
)
# The campaign engine (templates, every channel's limits) and the channel adapters; the
# small shared parts of ``channels`` (base, errors, media types) are allowed.
ENGINE = (
    "campaigns",
    "channels.facebook",
    "channels.youtube",
    "channels.email",
    "channels.line",
    "tasks",
)


def imported_modules(*args: str, cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules a ``marketing`` process imports (Python's -X importtime report)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    done = subprocess.run(
        [MARKETING, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    names = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.M))
    assert "marketing.cli" in names, "the import profile was not captured"
    return names, done


def too_heavy(names: set[str]) -> list[str]:
    """The modules of ``names`` that are, or belong to, one of HEAVY or ENGINE."""
    return sorted(
        name
        for name in names
        if any(name == top or name.startswith(top + ".") for top in HEAVY + ENGINE)
    )


def test_help_imports_no_sdk_web_framework_template_engine_or_campaign_engine(
    tmp_path: Path,
) -> None:
    names, done = imported_modules("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert too_heavy(names) == []


def test_help_imports_neither_the_database_layer_nor_the_settings(tmp_path: Path) -> None:
    """Subcommands load on demand (LazyGroup), so ``--help`` needs no SQLAlchemy or pydantic."""
    names, _done = imported_modules("--help", cwd=tmp_path)
    slow = ("sqlalchemy", "pydantic", "pydantic_settings", "marketing.db", "marketing.settings")
    assert sorted(n for n in names if n.split(".")[0] in slow or n in slow) == []


def test_help_imports_no_rich_console_and_no_orm_models(tmp_path: Path) -> None:
    """The CLI's consoles are made on first use (``LazyConsole``, #19): ``rich.console`` was
    about half of ``--help``'s imports.  Neither are the ORM models loaded."""
    names, done = imported_modules("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage:" in done.stdout
    heavy = {"rich.console", "rich.markup", "rich.text", "marketing.models"}
    assert sorted(names & heavy) == []


def test_a_command_that_prints_makes_its_console(tmp_path: Path) -> None:
    """The check above can fail: a command printing through the console imports it."""
    names, done = imported_modules("db", "current", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rich.console" in names


def test_the_lazy_console_is_made_on_first_use_and_monkeypatched_width_is_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lazy = LazyConsole(width=77)
    assert object.__getattribute__(lazy, "_console") is None
    made = lazy.get()
    assert made.width == 77 and lazy.width == 77 and lazy.get() is made
    with monkeypatch.context() as patch:
        patch.setattr(lazy, "width", 44)
        assert made.width == 44
    assert made.width == 77
    lazy.width = 61  # set on the console itself
    assert made.width == 61 and not hasattr(made, "_options")


def test_the_lazy_console_serves_rich_where_a_console_is_expected() -> None:
    """rich's Live and Progress enter the console (``with console:``), a special method
    Python looks up on the type: the proxy has it too."""
    from rich.progress import BarColumn, Progress

    out = io.StringIO()
    lazy = LazyConsole(width=50, file=out, force_terminal=False)
    with Progress(BarColumn(), console=cast("Console", lazy)) as progress:
        task = progress.add_task("x", total=2)
        progress.update(task, advance=2)
    with lazy:
        lazy.print("ชุมชน")
    assert lazy.get().file is out and "ชุมชน" in out.getvalue()


def test_help_still_lists_every_command(tmp_path: Path) -> None:
    _names, done = imported_modules("--help", cwd=tmp_path)
    listed = set(re.findall(r"^  (\S+)\s", done.stdout, re.M))
    every = set(main.list_commands(click.Context(main)))
    assert every == set(main.lazy) and every <= listed, sorted(every - listed)


def test_the_static_short_help_of_each_command_is_its_own() -> None:
    """``marketing --help`` shows these without importing the commands: they must not go stale."""
    ctx = click.Context(main)
    for name, (_where, short_help) in main.lazy.items():
        command = main.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(limit=1000) == short_help, name


@pytest.mark.parametrize(
    "args",
    [
        ("campaign", "--help"),
        ("campaign", "approve", "--help"),
        ("report", "--help"),
        ("users", "--help"),
        ("posts", "--help"),
        ("serve", "--help"),
        ("worker", "--help"),
        ("doctor", "--help"),
        ("db", "current"),
        ("backup", "--help"),
        ("restore", "--help"),
        ("subscribers", "--help"),
        ("posts", "takedown", "--help"),
    ],
    ids=" ".join,
)
def test_commands_that_need_no_channel_import_no_sdk_or_web_framework(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    names, done = imported_modules(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert too_heavy(names) == []


def test_the_profile_sees_a_heavy_import_when_a_command_needs_it(tmp_path: Path) -> None:
    """The checks above can fail: a command that checks a campaign file loads the engine."""
    _names, upgraded = imported_modules("db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr[-2000:]
    names, _done = imported_modules("campaign", "validate", "missing.yaml", cwd=tmp_path)
    assert "campaigns" in too_heavy(names)
