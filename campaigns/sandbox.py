"""The template sandbox with resource limits: what one template may compute and print.

Jinja2's sandbox stops templates reaching Python internals, but not from asking for a
number with a billion digits or a string of a gigabyte: ``9**(9**8)``, ``'a' * 300000000``,
``'{:>300000000}'.format(x)``, ``'%300000000d'|format(1)``, ``x|center(300000000)``.  Each is
one C-level operation that neither a timeout nor a size check afterwards can interrupt, so
:class:`LimitedSandbox` refuses them *before* they run:

* ``**`` and ``*`` on whole numbers: the result may have at most :data:`MAX_INT_BITS` bits;
* ``*`` (repetition) and ``+`` (joining) of strings and lists, and ``~``: at most
  :data:`MAX_TEXT` characters or items;
* widths and precisions in ``str.format``/``format_map``, ``%`` and the ``format`` filter, and
  the widths of ``center``, ``ljust``, ``rjust``, ``zfill``, ``expandtabs``, ``indent``,
  ``wordwrap`` and ``truncate``: at most :data:`MAX_WIDTH`;
* ``replace`` and ``join``: a result of at most :data:`MAX_TEXT` characters;
* the rendered text of one template: at most :data:`MAX_OUTPUT` characters (checked as it is
  produced, see :func:`render_bounded`).

A refusal is a :class:`TemplateLimitError` (a :class:`~jinja2.exceptions.SecurityError`) with a
Thai message and what to do; the caller pins it to the template's file, line and field.  What
these rules cannot see (loops nested deep enough to run for hours) is bounded by time and
memory around the whole check: ``marketing.check_worker``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sized
from functools import update_wrapper
from string import Formatter
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import filters as jinja_filters
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import pass_environment, pass_eval_context
from markupsafe import EscapeFormatter, Markup

MAX_INT_BITS = 4_096  # about 1,233 decimal digits: more than any count or sum a post prints
MAX_TEXT = 1_000_000  # characters (or items) in one string or list a template builds
MAX_WIDTH = 1_000  # a field width, precision or padding
MAX_OUTPUT = 1_000_000  # characters one template renders to


class TemplateLimitError(SecurityError):
    """A template asked for more than the sandbox allows; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint
        # Set when the place is known without a traceback (the output limit).
        self.filename: str | None = None
        self.lineno: int | None = None


def _too_big_number() -> TemplateLimitError:
    return TemplateLimitError(
        f"ผลการคำนวณเป็นตัวเลขที่ใหญ่เกินไป (เกิน {MAX_INT_BITS:,} บิต หรือราว 1,200 หลัก)",
        "ใช้ตัวเลขที่เล็กลง: เทมเพลตมีไว้จัดข้อความ ไม่ใช่คำนวณเลขขนาดใหญ่",
    )


def _too_long(size: int) -> TemplateLimitError:
    return TemplateLimitError(
        f"ข้อความหรือรายการที่สร้างยาวเกินไป ({size:,} ตัว; ไม่เกิน {MAX_TEXT:,} ตัว)",
        "ลดจำนวนที่คูณหรือต่อกัน แล้วตรวจแคมเปญอีกครั้ง",
    )


def _too_wide(width: int) -> TemplateLimitError:
    return TemplateLimitError(
        f"ความกว้างหรือจำนวนทศนิยมมากเกินไป ({width:,}; ไม่เกิน {MAX_WIDTH:,})",
        f"ใช้ความกว้างไม่เกิน {MAX_WIDTH:,} ตัวอักษร",
    )


def output_too_long() -> TemplateLimitError:
    return TemplateLimitError(
        f"เทมเพลตสร้างข้อความยาวเกินไป (เกิน {MAX_OUTPUT:,} ตัวอักษร)",
        "ตรวจคำสั่งวนซ้ำ (for) ที่ซ้อนกันหรือวนหลายรอบเกินไป แล้วตรวจแคมเปญอีกครั้ง",
    )


def _length(value: Any) -> int:
    return len(value) if isinstance(value, Sized) else 0


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise _too_wide(width)
    if isinstance(width, str) and len(width) > MAX_WIDTH:
        raise _too_wide(len(width))


def _check_size(size: int) -> None:
    if size > MAX_TEXT:
        raise _too_long(size)


# A width or precision in a format() spec: "[[fill]align][sign][z][#][0][width][,][.precision]".
_SPEC_NUMBERS = re.compile(r"\d+")
# A printf conversion: %[(name)][flags][width|*][.precision|*]type
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


def check_format_spec(spec: str) -> None:
    """Refuse a ``format()`` spec whose width or precision exceeds :data:`MAX_WIDTH`."""
    for number in _SPEC_NUMBERS.findall(spec):
        _check_width(int(number))


def check_printf(template: str) -> None:
    """Refuse a ``%``-format whose width or precision exceeds :data:`MAX_WIDTH` or is ``*``."""
    for match in _PRINTF.finditer(template):
        for part in match.groups():
            if part == "*":
                raise TemplateLimitError(
                    "ความกว้างแบบ * ใน % ใช้ในเทมเพลตไม่ได้",
                    "เขียนความกว้างเป็นตัวเลขในรูปแบบเอง เช่น %5d",
                )
            if part is not None:
                _check_width(int(part))


class _LimitedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        check_format_spec(format_spec)
        return super().format_field(value, format_spec)


class _LimitedEscapeFormatter(_LimitedFormatter, EscapeFormatter):
    pass


def _binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left <operator> right`` if its result would exceed the limits."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        if right * (abs(left).bit_length() - 1) > MAX_INT_BITS:
            raise _too_big_number()
    elif operator == "*":
        if ints:
            if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
                raise _too_big_number()
        elif isinstance(right, int) and isinstance(left, str | list | tuple):
            _check_size(len(left) * right)
        elif isinstance(left, int) and isinstance(right, str | list | tuple):
            _check_size(len(right) * left)
    elif operator == "+" and not ints:
        _check_size(_length(left) + _length(right))
    elif operator == "%" and isinstance(left, str):
        check_printf(left)


# str methods whose first argument is a width, and those whose result size we can foresee.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def _str_call(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if name in _WIDTH_METHODS and args:
        _check_width(args[0])
    elif name == "expandtabs":
        width = args[0] if args else kwargs.get("tabsize", 8)
        _check_width(width)
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            count = text.count(old) if old else len(text) + 1
            _check_size(len(text) + count * max(0, len(new) - len(old)))
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, list | tuple):
            size = sum(_length(item) for item in items)
            _check_size(size + len(text) * max(0, len(items) - 1))


def _limited_filters() -> dict[str, Callable[..., Any]]:
    """Jinja2's filters that take a width or build text, refusing what is too big first."""

    def center(value: Any, width: int = 80) -> str:
        _check_width(width)
        return jinja_filters.do_center(value, width)

    def indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
        _check_width(width)
        return jinja_filters.do_indent(s, width, first, blank)

    @pass_environment
    def wordwrap(environment: Any, s: str, width: int = 79, *args: Any, **kwargs: Any) -> str:
        _check_width(width)
        return jinja_filters.do_wordwrap(environment, s, width, *args, **kwargs)

    @pass_environment
    def truncate(environment: Any, s: str, length: int = 255, *args: Any, **kwargs: Any) -> str:
        _check_width(length)
        return jinja_filters.do_truncate(environment, s, length, *args, **kwargs)

    def format_(value: Any, *args: Any, **kwargs: Any) -> str:
        check_printf(str(value))
        return jinja_filters.do_format(value, *args, **kwargs)

    @pass_eval_context
    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: int | None = None) -> str:
        _str_call(str(s), "replace", (str(old), str(new)), {})
        return jinja_filters.do_replace(eval_ctx, s, old, new, count)

    return {
        "center": center,
        "indent": indent,
        "wordwrap": wordwrap,
        "truncate": truncate,
        "format": format_,
        "replace": replace,
    }


class _LimitedCodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a join that refuses a result longer than :data:`MAX_TEXT`."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_text(")
        super().visit_Concat(node, frame)
        self.write(")")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, refusing computations that are too big (see the module)."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})
    code_generator_class = _LimitedCodeGenerator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters.update(_limited_filters())

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    @staticmethod
    def checked_text(text: str) -> str:
        _check_size(len(text))
        return text

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, BuiltinMethodType) and isinstance(obj.__self__, str):
            _str_call(obj.__self__, obj.__name__, args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map``, sandboxed as Jinja2 does, and refusing widths
        and precisions above :data:`MAX_WIDTH`."""
        if not isinstance(value, MethodType | BuiltinMethodType) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        text: Any = value.__self__
        if not isinstance(text, str):
            return None
        text_type: type[str] = type(text)
        is_format_map = value.__name__ == "format_map"
        formatter: Formatter
        if isinstance(text, Markup):
            formatter = _LimitedEscapeFormatter(self, escape=text.escape)
        else:
            formatter = _LimitedFormatter(self)

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return text_type(formatter.vformat(text, args, kwargs))

        return update_wrapper(wrapper, value)


def render_bounded(template: Any, context: dict[str, Any]) -> str:
    """``template.render(context)``, stopped with :func:`output_too_long` (pinned to the
    template line that was printing) once the text passes :data:`MAX_OUTPUT` characters."""
    environment = template.environment
    parts: list[str] = []
    size = 0
    try:
        stream: Iterator[str] = template.root_render_func(template.new_context(context))
        for part in stream:
            size += len(part)
            if size > MAX_OUTPUT:
                frame = getattr(stream, "gi_frame", None)
                line = template.get_corresponding_lineno(frame.f_lineno) if frame else None
                error = output_too_long()
                error.lineno = line
                error.filename = template.filename or template.name
                raise error
            parts.append(part)
    except TemplateLimitError as exc:
        if exc.lineno is not None:
            raise
        environment.handle_exception()
    except Exception:
        environment.handle_exception()
    return "".join(parts)
