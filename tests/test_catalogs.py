"""The Thai catalogs hold each message once: merged branches that both added a word left
two entries, and gettext silently takes one of them (which one is up to the tool)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

CATALOGS = sorted(
    (Path(__file__).resolve().parents[1] / "marketing/web/translations").glob("*/LC_MESSAGES/*.po")
)
ENTRY = re.compile(r'^(?:msgctxt ((?:".*"\n)+))?msgid ((?:".*"\n)+)', re.M)


def keys(text: str) -> list[tuple[str, str]]:
    return [(m.group(1) or "", m.group(2)) for m in ENTRY.finditer(text) if m.group(2) != '""\n']


def test_the_catalogs_are_found() -> None:
    assert {p.name for p in CATALOGS} >= {"messages.po", "cli.po"}


@pytest.mark.parametrize("catalog", CATALOGS, ids=lambda p: p.name)
def test_each_message_is_translated_once(catalog: Path) -> None:
    text = catalog.read_text(encoding="utf-8")
    counted = Counter(keys(text))
    assert len(counted) > 100
    assert [key for key, n in counted.items() if n > 1] == []


def test_a_second_entry_is_caught() -> None:
    text = 'msgid "Preheader"\nmsgstr "a"\n\nmsgid "Preheader"\nmsgstr "b"\n'
    assert Counter(keys(text))[("", '"Preheader"\n')] == 2
