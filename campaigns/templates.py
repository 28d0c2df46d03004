"""Campaign templates: Jinja2 in a sandbox, strict about undefined names, exact about lines.

Every text field of a channel block is a template, written inline in the campaign file or in a
file next to it (``{file: templates/letter.html.j2}``).  Templates render in an
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with limits on what a template may
compute (:mod:`campaigns.sandbox`) and :class:`~jinja2.StrictUndefined`, so a misspelt name
is an error, never an empty string; the email HTML body renders with autoescape on.  Each
template is compiled once and rendered once per (community, channel, occurrence) in a loop.

Context (see ``docs/campaigns.md``): ``community``, ``campaign``, ``occurrence``, ``channel``,
``account``, ``highlight`` (highlights autopilot only), and in email ``subscriber.name``,
``subscriber.email`` and ``unsubscribe_url``, which render to merge slots the email adapter
fills per recipient -- so they can only be printed as they are: a filter, test or condition on
them could not work when posts are planned, and :meth:`TemplateBook.add` reports it.

Every problem becomes a :class:`~marketing.problems.Problem` at the line *in the file*: for an
inline template, the campaign file's line (a ``|`` block's first line is the line after the
``|``); for a template file, the template file's own line.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    pass_context,
)
from jinja2.runtime import Context

from campaigns.formatting import number, thai_date, tracked_url
from campaigns.sandbox import LimitedSandbox, TemplateLimitError, render_bounded
from channels.email import merge_slot
from channels.media import TEMPLATE_SUFFIXES
from marketing.bounded import TimeUp
from marketing.media import find_in_library
from marketing.problems import Path_, Problem, format_path

# --- what templates see ----------------------------------------------------------------------


@dataclass(frozen=True)
class CommunityView:
    slug: str
    name_th: str
    name_en: str
    province: str
    description: str
    tags: tuple[str, ...]
    website: str | None
    timezone: str


@dataclass(frozen=True)
class HighlightView:
    key: str
    title: str
    body: str
    media: tuple[str, ...]
    tags: tuple[str, ...]
    link: str | None


@dataclass(frozen=True)
class CampaignView:
    slug: str
    name: str
    description: str
    timezone: str


@dataclass(frozen=True)
class OccurrenceView:
    key: str
    at: datetime  # aware, in the campaign's zone
    date: date
    index: int


@dataclass(frozen=True)
class AccountView:
    slug: str
    display_name: str


@dataclass(frozen=True)
class SubscriberSlots:
    """``subscriber`` in email templates: each field is a merge slot filled per recipient."""

    name: str
    email: str


SUBSCRIBER = SubscriberSlots(name=merge_slot("name"), email=merge_slot("email"))
UNSUBSCRIBE_URL = merge_slot("unsubscribe_url")
_PER_RECIPIENT = {"subscriber", "unsubscribe_url"}

_VIEWS: dict[str, type[Any]] = {
    "community": CommunityView,
    "highlight": HighlightView,
    "campaign": CampaignView,
    "occurrence": OccurrenceView,
    "account": AccountView,
    "subscriber": SubscriberSlots,
}
_VARIABLE_OF_CLASS = {cls.__name__: name for name, cls in _VIEWS.items()}


def _fields_of(cls: type[Any]) -> str:
    return ", ".join(f.name for f in fields(cls))


CONTEXT_HINT = (
    "templates see community ("
    + _fields_of(CommunityView)
    + "), campaign ("
    + _fields_of(CampaignView)
    + "), occurrence ("
    + _fields_of(OccurrenceView)
    + "), channel, account (slug, display_name), highlight ("
    + _fields_of(HighlightView)
    + ") when the campaign says highlights: next, and in email subscriber.name, "
    "subscriber.email and unsubscribe_url; helpers: tracked(url), destination(kind) (the "
    "community's shop, booking or product page, through a counted link), thai_date(date), "
    "number(n)"
)

# --- helpers -----------------------------------------------------------------------------------


@pass_context
def _tracked(ctx: Context, url: Any) -> str:
    return tracked_url(
        str(url),
        channel=ctx["channel"],
        campaign=ctx["campaign"].slug,
        community=ctx["community"].slug,
    )


#: Helpers whose output depends on the community in the context.
COMMUNITY_HELPERS = frozenset({"tracked", "destination"})

#: The context key the planner fills with the community's destination links (kind -> link).
DESTINATIONS = "destination_links"


@pass_context
def _destination(ctx: Context, kind: Any) -> str:
    """The counted short link to the community's ``kind`` page (shop, booking, product)."""
    found = ctx.get(DESTINATIONS) or {}
    link = found.get(str(kind))
    if link is None:
        have = ", ".join(sorted(found)) or "none"
        raise ValueError(
            f"community {ctx['community'].slug} has no {kind!r} page "
            f"(it has: {have}); add it on the community's page"
        )
    return str(link)


@pass_context
def _thai_date(
    ctx: Context,
    value: Any,
    style: str = "long",
    be: bool = True,
    time: bool = False,
    thai_digits: bool = False,
) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    zone = ZoneInfo(ctx["campaign"].timezone)
    return thai_date(value, style, be=be, time=time, zone=zone, thai_digits=thai_digits)


def _number(value: Any, decimals: int = 0, thai_digits: bool = False) -> str:
    return number(value, decimals, thai_digits=thai_digits)


# --- loading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateSource:
    """A template as written: inline (``text``) or in a file (``path``, relative)."""

    field: Path_  # where the campaign file mentions it, e.g. ("channels", "email", "html")
    campaign_file: str
    line: int | None  # campaign file line of the field's value
    column: int | None
    text: str | None = None  # inline template
    path: str | None = None  # template file, relative to the campaign file
    block: bool = False  # inline, written as a YAML | or > block (starts on the next line)
    html: bool = False  # render with autoescape


@dataclass
class CompiledTemplate:
    """A compiled template and what it reads."""

    source: TemplateSource
    template: Template
    # Names the template reads; None when it includes other templates (unknown).
    reads: frozenset[str] | None


class RenderFailure(Exception):
    """A template failed to render; ``problem`` says where and why."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


class _InlineLoader(BaseLoader):
    def __init__(self) -> None:
        self.sources: dict[str, str] = {}

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in self.sources:
            raise TemplateNotFound(template)
        return self.sources[template], template, lambda: True


class _FileLoader(FileSystemLoader):
    """Templates next to the campaign file; remembers which files it read."""

    def __init__(self, base_dir: Path):
        super().__init__(str(base_dir), encoding="utf-8")
        self.read: set[str] = set()

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        self.read.add(filename)
        return source, filename, uptodate


class _LibraryLoader(BaseLoader):
    """E-mail templates uploaded to the media library, found by their file name
    (:func:`marketing.media.find_in_library`) when none is next to the campaign file: a
    campaign uploaded through the web names ``templates/songkran-email.html.j2`` and gets the
    template uploaded as ``songkran-email.html.j2``.  Only template files are read."""

    def __init__(self, media_root: Path | None):
        self.media_root = media_root
        self.read: set[str] = set()

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if self.media_root is None:
            raise TemplateNotFound(template)
        found = find_in_library(self.media_root, template)
        if found is None or not any(found.name.lower().endswith(s) for s in TEMPLATE_SUFFIXES):
            raise TemplateNotFound(template)
        source = found.read_text(encoding="utf-8-sig")
        self.read.add(str(found))
        return source, str(found), lambda: True


_INLINE_PREFIX = "<inline "
_VIEW_FIELDS = {cls: frozenset(f.name for f in fields(cls)) for cls in _VIEWS.values()}


class _Sandbox(LimitedSandbox):
    """The sandbox (with its limits, see :mod:`campaigns.sandbox`), reading the fields of the
    context's own view objects (plain data, see above) without the per-access safety checks
    -- they dominate rendering time otherwise.  Everything else, including any attribute *of*
    those fields, is checked as usual."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        known = _VIEW_FIELDS.get(type(obj))
        if known is not None and attribute in known:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)


class TemplateBook:
    """The templates of one campaign: compiled once, rendered many times, problems pinned."""

    def __init__(self, base_dir: Path, *, media_root: Path | None = None):
        self.base_dir = base_dir
        self._inline = _InlineLoader()
        self._files = _FileLoader(base_dir)
        self._library = _LibraryLoader(media_root)
        loader = ChoiceLoader([self._inline, self._files, self._library])
        self._text = self._environment(loader, autoescape=False)
        self._html = self._environment(loader, autoescape=True)
        self._inline_sources: dict[str, TemplateSource] = {}
        self.problems: list[Problem] = []

    @staticmethod
    def _environment(loader: BaseLoader, *, autoescape: bool) -> LimitedSandbox:
        env = _Sandbox(
            loader=loader, undefined=StrictUndefined, autoescape=autoescape, auto_reload=False
        )
        env.globals.update(
            tracked=_tracked, destination=_destination, thai_date=_thai_date, number=_number
        )
        env.filters.update(tracked=_tracked, thai_date=_thai_date, number=_number)
        return env

    @property
    def files_read(self) -> set[str]:
        """Absolute paths of the template files read so far (for the campaign's hash)."""
        return set(self._files.read) | self._library.read

    def add(
        self, source: TemplateSource, *, per_recipient: bool | None = None
    ) -> CompiledTemplate | None:
        """Compile ``source``; on a problem record it and return None.

        ``per_recipient``: True for an email body or subject, where subscriber fields may be
        printed (only printed); False for other email fields, where they may not be used at
        all; None for other channels (there the names are simply undefined)."""
        env = self._html if source.html else self._text
        if source.text is not None:
            name = f"{_INLINE_PREFIX}{source.campaign_file}:{format_path(source.field)}>"
            self._inline.sources[name] = source.text
            self._inline_sources[name] = source
        else:
            assert source.path is not None
            name = source.path
        try:
            text, _filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
            tree = env.parse(text, name=name, filename=_filename)
            template = env.get_template(name)
        except TemplateNotFound:
            self._problem(
                source,
                f"template file {source.path!r} not found next to the campaign file",
                f"looked for {self.base_dir / str(source.path)}",
            )
            return None
        except UnicodeDecodeError:
            self._problem(source, f"template file {source.path!r} is not UTF-8 text")
            return None
        except TemplateSyntaxError as exc:
            self.problems.append(self._located(source, exc.filename, exc.lineno, exc.message))
            return None
        except RecursionError:
            self._problem(source, "the template is nested too deeply")
            return None
        if per_recipient is not None:
            for line, message in _per_recipient_misuse(tree, printing=per_recipient):
                self.problems.append(self._located(source, name, line, message))
        # Jinja keeps globals as a ChainMap over the environment's, which every render copies
        # key by key; nothing changes them after this, so a plain dict renders faster.
        template.globals = dict(template.globals)
        includes = any(True for _ in tree.find_all((nodes.Include, nodes.Import, nodes.Extends)))
        includes = includes or any(True for _ in tree.find_all(nodes.FromImport))
        reads = None
        if not includes:
            # The helpers that read the community from the context count as reading it
            # (meta leaves out globals and filters, so they are looked for by name).
            helpers = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
            helpers |= {f.name for f in tree.find_all(nodes.Filter)}
            reads = frozenset(meta.find_undeclared_variables(tree)) | (helpers & COMMUNITY_HELPERS)
        return CompiledTemplate(source=source, template=template, reads=reads)

    def render(self, compiled: CompiledTemplate, context: Mapping[str, Any]) -> str:
        """The rendered text, stripped; raise RenderFailure with the template's line."""
        try:
            return render_bounded(compiled.template, dict(context)).strip()
        except TimeUp as exc:  # a check's time bound (marketing.bounded): say where it was
            if exc.problem is None:
                exc.problem = self._located(
                    compiled.source,
                    exc.template,
                    exc.line,
                    "เทมเพลตใช้เวลาคำนวณนานเกินไป จึงหยุดตรวจ",
                    "ตรวจคำสั่งวนซ้ำ (for) ที่ซ้อนกันหลายชั้นหรือวนหลายรอบเกินไป",
                )
            raise
        except Exception as exc:  # user template code: any failure is the template's problem
            raise RenderFailure(self._render_problem(compiled.source, exc)) from exc

    # -- locating problems --------------------------------------------------------------------

    def _problem(self, source: TemplateSource, message: str, hint: str | None = None) -> None:
        self.problems.append(
            Problem(
                source.campaign_file,
                source.line,
                source.column,
                format_path(source.field),
                message,
                hint,
            )
        )

    def _located(
        self,
        source: TemplateSource,
        filename: str | None,
        lineno: int | None,
        message: str | None,
        hint: str | None = None,
    ) -> Problem:
        """A problem at template line ``lineno`` of ``filename`` (an inline name or a file)."""
        field = format_path(source.field)
        message = message or "template error"
        inline = self._inline_sources.get(filename or "")
        if filename is None and source.text is not None:
            inline = source
        if inline is not None:
            line, column = inline.line, inline.column
            if line is not None and lineno is not None:
                line += lineno if inline.block else lineno - 1
                if inline.block:
                    column = None
            return Problem(inline.campaign_file, line, column, field, message, hint)
        if filename and lineno is not None:
            return Problem(filename, lineno, None, field, message, hint)
        return Problem(source.campaign_file, source.line, source.column, field, message, hint)

    def _render_problem(self, source: TemplateSource, exc: BaseException) -> Problem:
        filename, lineno = None, None
        known = set(self._inline_sources) | self._files.read
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename in known:
                filename, lineno = frame.filename, frame.lineno
        hint = None
        if isinstance(exc, TemplateLimitError):
            filename, lineno = exc.filename or filename, exc.lineno or lineno
            message, hint = exc.message or "", exc.hint
        elif isinstance(exc, UndefinedError):
            message = _friendly_undefined(str(exc))
            hint = None if "has no field" in message else CONTEXT_HINT
            name = re.match(r"'(\w+)' is undefined", str(exc))
            if name and name[1] == "highlight":
                hint = "highlight exists only when the campaign says highlights: next"
            elif name and name[1] in _PER_RECIPIENT:
                hint = f"{name[1]} exists only in email templates"
        elif isinstance(exc, TemplateError):
            message = exc.message or type(exc).__name__
        elif isinstance(exc, MemoryError):
            message = "เทมเพลตใช้หน่วยความจำมากเกินไป จึงหยุดตรวจ"
            hint = "ลดขนาดข้อความหรือรายการที่เทมเพลตสร้าง แล้วตรวจแคมเปญอีกครั้ง"
        else:
            message = f"{type(exc).__name__}: {exc}"
        return self._located(source, filename, lineno, message, hint)


def _friendly_undefined(message: str) -> str:
    match = re.fullmatch(r"'(?:[\w.]+\.)?(\w+) object' has no attribute '([^']*)'", message)
    if match and match[1] in _VARIABLE_OF_CLASS:
        variable = _VARIABLE_OF_CLASS[match[1]]
        known = _fields_of(_VIEWS[variable])
        return f"{variable} has no field {match[2]!r} (it has: {known})"
    return message


def _per_recipient_misuse(tree: nodes.Template, *, printing: bool) -> Iterator[tuple[int, str]]:
    """Uses of subscriber fields or unsubscribe_url other than printing them as they are (or
    any use at all, when ``printing`` is False)."""

    def printable(node: nodes.Node) -> bool:
        if isinstance(node, nodes.Name):
            return node.name == "unsubscribe_url"
        return (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "subscriber"
            and node.attr in ("name", "email")
        )

    def walk(node: nodes.Node, allowed: bool) -> Iterator[tuple[int, str]]:
        if allowed and printable(node):
            return
        if not printing and isinstance(node, nodes.Name) and node.name in _PER_RECIPIENT:
            yield node.lineno, f"{node.name} can be used only in the subject, preheader and body"
            return
        if isinstance(node, nodes.Name) and node.name in _PER_RECIPIENT:
            yield (
                node.lineno,
                f"{node.name} is filled in per recipient when the email is sent, so it can "
                "only be printed as it is ({{ subscriber.name }}, {{ subscriber.email }}, "
                "{{ unsubscribe_url }}): a filter, test, condition or calculation on it "
                "cannot work when posts are planned",
            )
            return
        if isinstance(node, nodes.Getattr) and printable(node) is False:
            base = node.node
            if (
                isinstance(base, nodes.Name)
                and base.name == "subscriber"
                and node.attr not in ("name", "email")
            ):
                yield node.lineno, f"subscriber has no field {node.attr!r} (it has: name, email)"
                return
        is_output = printing and isinstance(node, nodes.Output)
        for child in node.iter_child_nodes():
            yield from walk(child, is_output)

    yield from walk(tree, False)
