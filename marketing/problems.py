"""Problems in files people write, each pinned to its file, line, column and field.

Every loader of human-written input (community files, campaign files) collects *all* the
problems it finds and raises one :class:`InvalidInput` carrying them, so a person fixes a file
in one round instead of one error at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from pydantic import ValidationError

Path_ = tuple[str | int, ...]

# Characters no text a person writes holds: NUL and the other C0 and C1 control codes (tab,
# line feed and carriage return are text).  PostgreSQL refuses NUL in text outright.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_character(text: str) -> str | None:
    """The first control character in ``text`` as ``U+0000``, or None if it has none."""
    found = CONTROL_CHARACTERS.search(text)
    return None if found is None else f"U+{ord(found[0]):04X}"


def format_path(path: Path_) -> str:
    """``("communities", 3, "name_th")`` -> ``communities[3].name_th``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, and where."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str
    hint: str | None = dc_field(default=None, compare=False)
    # What the problem is, for a reader of another language than the message's English: a
    # code (``required``, ``unknown_field``, ``unreadable_value``, ``unknown_community``,
    # ``media_*``) and its values as (name, value) pairs; None where only the message says.
    code: str | None = dc_field(default=None, compare=False)
    values: tuple[tuple[str, str], ...] = dc_field(default=(), compare=False)

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.field or '(file)'}: {self.message}"
        return f"{text} -- {self.hint}" if self.hint else text


class InvalidInput(ValueError):
    """An input file has problems; nothing was changed."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.column or 0))
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''}:\n{lines}")


class Positions(Mapping[Path_, tuple[int, int]]):
    """Where each value of a parsed document starts: path -> (line, column), 1-based."""

    def __init__(self, data: dict[Path_, tuple[int, int]] | None = None):
        self._data = data or {}
        self._keys: dict[Path_, tuple[int, int]] = {}

    def __getitem__(self, key: Path_) -> tuple[int, int]:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def set(self, path: Path_, line: int, column: int) -> None:
        self._data[path] = (line, column)

    def set_key(self, path: Path_, line: int, column: int) -> None:
        """Record where the key of mapping entry ``path`` is written."""
        self._keys[path] = (line, column)

    def key(self, path: Path_) -> tuple[int | None, int | None]:
        """Where the key of ``path`` is written (a nested block's value starts on the next
        line), else :meth:`nearest`."""
        return self._keys.get(tuple(path)) or self.nearest(path)

    def nearest(self, path: Path_) -> tuple[int | None, int | None]:
        """The position of ``path`` or of its closest ancestor that has one."""
        probe = tuple(path)
        while True:
            if probe in self._data:
                return self._data[probe]
            if not probe:
                return (None, None)
            probe = probe[:-1]


def problem_at(
    file: str,
    positions: Positions,
    path: Path_,
    message: str,
    hint: str | None = None,
    *,
    code: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> Problem:
    """A problem at ``path`` of a document whose positions are known."""
    line, column = positions.nearest(path)
    return Problem(file, line, column, format_path(path), message, hint, code, _pairs(values))


def _pairs(values: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple((k, str(v)) for k, v in (values or {}).items())


def problems_from_validation(
    error: ValidationError, *, file: str, positions: Positions, prefix: Path_ = ()
) -> list[Problem]:
    """Translate a pydantic error into problems pinned to the file's lines."""
    found = []
    for item in error.errors(include_url=False):
        loc: Path_ = prefix + tuple(p for p in item["loc"] if isinstance(p, str | int))
        # pydantic puts the tag of a union member in the location; drop such parts when the
        # document has no such key so the field path matches what the person wrote.
        loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
        message = item["msg"]
        if item["type"] == "missing":
            message = "is required but missing"
            found.append(problem_at(file, positions, loc, message, code="required"))
            continue
        if item["type"] == "extra_forbidden":
            message = "is not a known field (check its spelling)"
            line, column = positions.key(loc)
            found.append(
                Problem(file, line, column, format_path(loc), message, code="unknown_field")
            )
            continue
        found.append(problem_at(file, positions, loc, message))
    return found


def collect(problems: Iterable[Problem]) -> None:
    """Raise :class:`InvalidInput` if there is any problem."""
    items = list(problems)
    if items:
        raise InvalidInput(items)
