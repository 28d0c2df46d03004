"""The documentation stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from click import Context, Group

from marketing.cli import main
from marketing.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table() -> None:
    documented = set(re.findall(r"^\| `(MARKETING_[A-Z_]+)`", README, flags=re.M))
    expected = {f"MARKETING_{name.upper()}" for name in Settings.model_fields}
    assert expected - documented == set(), "settings missing from README.md"
    assert documented - expected - {"MARKETING_SECRET_"} == set(), "README documents stale settings"


def test_every_command_is_in_the_readme() -> None:
    def walk(group: Group, prefix: str) -> list[str]:
        names = []
        ctx = Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, Group):
                names += walk(command, f"{prefix} {name}")
            else:
                names.append(f"{prefix} {name}")
        return names

    missing = [c for c in walk(main, "marketing") if f"`{c}" not in README]
    assert missing == []
