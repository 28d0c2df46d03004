"""Editing a campaign file by its fields, keeping everything else as it was written.

The composer (``marketing/web/composer.py``) shows a campaign file as a form and writes the
form back into the *same* text: comments, key order, quoting and block styles of everything
the person did not change stay byte for byte as they were, so people who prefer the file can
keep it (download, edit, upload).  This is ruamel.yaml's round-trip mode; :mod:`campaigns.loader`
still reads the result (with PyYAML, YAML 1.1) and reports problems as before.

Values written here are chosen so that YAML 1.1 reads them back as the same text: a string
PyYAML would read as something else (``on``, ``22:00``, ``2027-04-01``) is written quoted, a
string of several lines as a literal block (``|``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from marketing.problems import Path_


class NotEditable(ValueError):
    """The text cannot be edited by fields (not YAML, or not a mapping at the top)."""


def _yaml(mapping: int = 2, sequence: int = 4, offset: int = 2) -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096  # never fold a long line the person wrote on one line
    rt.indent(mapping=mapping, sequence=sequence, offset=offset)
    return rt


_STYLES = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (3, 3, 0))
"""(mapping, sequence, offset) indentations tried, most common first."""


def _same_text(rt: YAML, data: Any, text: str) -> bool:
    buffer = io.StringIO()
    try:
        rt.dump(data, buffer)
    except YAMLError:
        return False
    return buffer.getvalue() == text


class CampaignDocument:
    """A campaign file's text, read for editing; :meth:`text` writes it back."""

    def __init__(self, text: str) -> None:
        self.original = text
        data: Any = None
        # The indentation people use varies: the first style that writes the file back
        # exactly as it is will write the edits in the same style.
        for style in _STYLES:
            self._rt = _yaml(*style)
            try:
                data = self._rt.load(text)
            except (YAMLError, ValueError) as exc:
                raise NotEditable(str(exc)) from None
            if _same_text(self._rt, data, text):
                break
        else:
            self._rt = _yaml(*_STYLES[0])
            data = self._rt.load(text)
        if data is None:
            data = CommentedMap()
        if not isinstance(data, CommentedMap):
            raise NotEditable("the file is not a mapping of fields")
        self.data: CommentedMap = data
        self.changed: list[Path_] = []

    # -- reading ------------------------------------------------------------------------

    def get(self, path: Path_, default: Any = None) -> Any:
        """The value at ``path`` (keys and list indexes), or ``default``."""
        node: Any = self.data
        for part in path:
            found = (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            )
            if not found:
                return default
            node = node[part]
        return node

    def has(self, path: Path_) -> bool:
        marker = object()
        return self.get(path, marker) is not marker

    # -- writing ------------------------------------------------------------------------

    def set(self, path: Path_, value: Any) -> None:
        """Write ``value`` at ``path``, making the mappings on the way; a string keeps the
        style (quotes, block) of the one it replaces."""
        parent = self._parent(path, create=True)
        key = path[-1]
        old = parent.get(key) if isinstance(parent, dict) else None
        new = _styled(value, old)
        if isinstance(parent, CommentedMap):
            if key in parent and _equal(parent[key], new):
                return
            if key not in parent:
                parent.insert(_insert_at(parent, key), key, new)
            else:
                parent[key] = new
        else:
            assert isinstance(key, int)
            parent[key] = new
        self.changed.append(path)

    def delete(self, path: Path_) -> None:
        """Remove the key at ``path`` (nothing if it is not there); an emptied mapping above
        it is removed too."""
        parent = self._parent(path, create=False)
        if not isinstance(parent, dict) or path[-1] not in parent:
            return
        del parent[path[-1]]
        self.changed.append(path)
        if not parent and len(path) > 1:
            self.delete(path[:-1])

    def _parent(self, path: Path_, *, create: bool) -> Any:
        node: Any = self.data
        for part in path[:-1]:
            if isinstance(node, dict):
                if part not in node or not isinstance(node[part], dict | list):
                    if not create:
                        return None
                    node[part] = CommentedMap()
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return None
        return node

    def text(self) -> str:
        """The file with the changes; the original text, exactly, if nothing changed."""
        if not self.changed:
            return self.original
        buffer = io.StringIO()
        self._rt.dump(self.data, buffer)
        return buffer.getvalue()


# Where a new top-level key goes: in the order the format's documentation writes them.
_ORDER = (
    "slug",
    "name",
    "description",
    "timezone",
    "window",
    "communities",
    "highlights",
    "channels",
    "schedule",
)


def _insert_at(parent: CommentedMap, key: Any) -> int:
    if key not in _ORDER:
        return len(parent)
    rank = _ORDER.index(key)
    for position, existing in enumerate(parent):
        if existing in _ORDER and _ORDER.index(existing) > rank:
            return position
    return len(parent)


def _equal(old: Any, new: Any) -> bool:
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(_equal(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(_equal(old[k], new[k]) for k in old)
    return type(old) is type(new) and old == new or (str(old) == str(new) and _plain(old, new))


def _plain(old: Any, new: Any) -> bool:
    return isinstance(old, str) and isinstance(new, str)


def _reads_back(value: str) -> bool:
    """Whether PyYAML (YAML 1.1, as :mod:`campaigns.loader` reads) reads ``value`` written
    plain as the same string."""
    try:
        return bool(pyyaml.safe_load(value) == value)
    except pyyaml.YAMLError:
        return False


def _styled(value: Any, old: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, CommentedMap):
        mapping = CommentedMap()
        before: dict[Any, Any] = old if isinstance(old, dict) else {}
        for key, item in value.items():
            mapping[key] = _styled(item, before.get(key))
        return mapping
    if isinstance(value, list):
        seq = CommentedSeq()
        olds = old if isinstance(old, list) else []
        for i, item in enumerate(value):
            seq.append(_styled(item, olds[i] if i < len(olds) else None))
        return seq
    if not isinstance(value, str):
        return value
    if "\n" in value.strip("\n"):
        text = value if value.endswith("\n") else value + "\n"
        return (
            FoldedScalarString(text)
            if isinstance(old, FoldedScalarString)
            else (LiteralScalarString(text))
        )
    value = value.strip("\n")
    if isinstance(old, SingleQuotedScalarString):
        return SingleQuotedScalarString(value)
    if (
        isinstance(old, DoubleQuotedScalarString)
        or not _reads_back(value)
        or value != value.strip()
    ):
        return DoubleQuotedScalarString(value)
    return value


def as_date(text: str) -> date | str:
    """``2027-04-01`` as a date (written unquoted), anything else as the text itself."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return text.strip()


def walk(data: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every scalar of ``data`` with its path."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from walk(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from walk(value, (*path, i))
    else:
        yield path, data
