"""Safe YAML that remembers where every value came from.

``load_yaml`` returns plain Python data plus :class:`~marketing.problems.Positions`, so a later
validation error can name the file, line and column of the offending value.  It differs from
``yaml.safe_load`` in three ways that matter to people writing files by hand:

* a key written twice in one mapping is an error (PyYAML silently keeps the last one);
* ``10:00`` stays the string ``"10:00"`` (YAML 1.1 would read the number 600);
* any failure becomes :class:`~marketing.problems.InvalidInput`, never a bare YAML exception.

It is also bounded, so a small file cannot take minutes and gigabytes (a "billion laughs": a
few aliases each repeating the one before, 440 bytes that expand to a billion values): the
text may have at most :data:`MAX_YAML_CHARS` characters, and aliases (``*name``) may repeat at
most :data:`MAX_ALIAS_VALUES` values in all -- enough to reuse a block of settings, refused
long before an expansion costs anything.
"""

from __future__ import annotations

from typing import Any

import yaml

from marketing.problems import InvalidInput, Path_, Positions, Problem, format_path

_INT_TAG = "tag:yaml.org,2002:int"
_MAX_DEPTH = 64
MAX_YAML_CHARS = 50_000_000  # a reference file of 100,000 subscribers is about 15 MB
MAX_ALIAS_VALUES = 10_000


class _AliasBomb(Exception):
    """Aliases expanded to more than MAX_ALIAS_VALUES values."""

    def __init__(self, path: Path_):
        self.path = path  # where the outermost alias being expanded is used


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.positions = Positions()
        self.problems: list[Problem] = []
        self._scalars = yaml.SafeLoader("")
        self._built: set[int] = set()  # ids of the collections built once already
        self._repeats = 0  # values built again because an alias names them
        self._alias_at: Path_ | None = None

    def build(self, node: yaml.Node, path: Path_, depth: int = 0) -> Any:
        self.positions.set(path, node.start_mark.line + 1, node.start_mark.column + 1)
        # An alias is the very node object it names: a collection met a second time is an
        # alias, and everything under it is counted against MAX_ALIAS_VALUES.
        if self._alias_at is not None:
            self._repeats += 1
            if self._repeats > MAX_ALIAS_VALUES:
                raise _AliasBomb(self._alias_at)
        elif isinstance(node, yaml.CollectionNode):
            if id(node) in self._built:
                self._alias_at = path
                try:
                    return self.build(node, path, depth)
                finally:
                    self._alias_at = None
            self._built.add(id(node))
        if depth > _MAX_DEPTH:
            self._problem(node, path, f"nested deeper than {_MAX_DEPTH} levels")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, path, "a key must be plain text")
                continue
            key = self._scalar(key_node, path)
            if key == "<<":
                self._problem(key_node, path, "merge keys (<<) are not supported; write it out")
                continue
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                self._problem(
                    key_node,
                    (*path, key),
                    "is written twice in the same block",
                    "keep one of them",
                )
                continue
            mark = key_node.start_mark
            self.positions.set_key((*path, key), mark.line + 1, mark.column + 1)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        if node.tag == _INT_TAG and ":" in str(node.value):
            return str(node.value)  # 10:00 is a clock time, not base-60
        try:
            return self._scalars.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            self._problem(
                node,
                path,
                f"cannot read value {node.value!r}: {exc}",
                code="unreadable_value",
                value=str(node.value),
            )
            return None
        except AttributeError:
            # PyYAML resolves e.g. "00:00:00-04:19:18" as a timestamp its constructor cannot read.
            self._problem(node, path, f"cannot read {node.value!r} as a date and time")
            return None

    def _problem(
        self,
        node: yaml.Node,
        path: Path_,
        message: str,
        hint: str | None = None,
        *,
        code: str | None = None,
        **values: str,
    ) -> None:
        mark = node.start_mark
        where = (self.file, mark.line + 1, mark.column + 1, format_path(path))
        self.problems.append(Problem(*where, message, hint, code, tuple(values.items())))


def _syntax_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    mark, context = exc.problem_mark, exc.context_mark
    what = exc.problem or "unreadable"
    if exc.context and context is not None:
        what += f" ({exc.context} that starts on line {context.line + 1})"
        # Something left open (a bracket, a quote) is reported by PyYAML at the end of the
        # file; the place to fix is where it was opened.
        if mark is None or mark.index >= len(mark.buffer or "") - 1:
            mark = context
    mark = mark or context
    return Problem(
        file,
        mark.line + 1 if mark else None,
        mark.column + 1 if mark else None,
        "",
        f"YAML syntax error: {what}",
        "check indentation (spaces, not tabs), close brackets and quotes, and quote text "
        "containing ': ' or ' #'",
    )


def load_yaml(text: str, file: str) -> tuple[Any, Positions]:
    """Parse ``text`` (named ``file`` in messages); raise InvalidInput on any problem."""
    if len(text) > MAX_YAML_CHARS:
        raise InvalidInput(
            [
                Problem(
                    file,
                    None,
                    None,
                    "",
                    f"ไฟล์ยาวเกินไป ({len(text):,} ตัวอักษร; ไม่เกิน {MAX_YAML_CHARS:,})",
                    "แบ่งไฟล์เป็นหลายไฟล์แล้วนำเข้าทีละไฟล์",
                )
            ]
        )
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput([_syntax_problem(exc, file)]) from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise InvalidInput([Problem(file, None, None, "", f"not readable as YAML: {exc}")]) from exc
    if node is None:
        return None, Positions()
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except RecursionError as exc:
        raise InvalidInput([Problem(file, None, None, "", "nested too deeply")]) from exc
    except _AliasBomb as exc:
        # An alias's node carries the position of its anchor; the key it is used under is
        # where the person should look.
        keyed = exc.path
        while keyed and not isinstance(keyed[-1], str):
            keyed = keyed[:-1]
        line, column = builder.positions.key(keyed)
        raise InvalidInput(
            [
                Problem(
                    file,
                    line,
                    column,
                    format_path(exc.path),
                    f"alias (*ชื่อ) ขยายเป็นข้อมูลมากเกินไป (เกิน {MAX_ALIAS_VALUES:,} ค่า) "
                    "อาจเป็นไฟล์ที่ตั้งใจทำให้ระบบช้า",
                    "เขียนค่าที่ต้องการออกมาตรง ๆ แทนการใช้ alias ซ้อนกันหลายชั้น",
                )
            ]
        ) from None
    if builder.problems:
        raise InvalidInput(builder.problems)
    return data, builder.positions
