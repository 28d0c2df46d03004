"""The position-keeping YAML loader."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketing.problems import InvalidInput
from marketing.yamlsource import load_yaml


def test_positions_and_clock_times() -> None:
    data, pos = load_yaml("a:\n  b: 10:00\n  c: [1, 2]\n", "f.yaml")
    assert data == {"a": {"b": "10:00", "c": [1, 2]}}
    assert pos[("a", "b")] == (2, 6)
    assert pos[("a", "c", 1)] == (3, 10)
    assert pos.nearest(("a", "c", 5, "x")) == (3, 6)


def test_duplicate_key_is_an_error() -> None:
    with pytest.raises(InvalidInput) as info:
        load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    (p,) = info.value.problems
    assert (p.line, p.field) == (3, "a")
    assert "twice" in p.message


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_data_or_invalid_input(text: str) -> None:
    try:
        load_yaml(text, "fuzz.yaml")
    except InvalidInput as exc:
        assert all(p.file == "fuzz.yaml" for p in exc.problems)
