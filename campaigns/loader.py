"""Reading a campaign file: every problem at once, each at its file, line, column and field.

:func:`read_campaign` never stops at the first mistake.  It validates the file one section at
a time and keeps going with a stand-in where a section is broken (the default zone for a bad
``timezone``, every community for a broken ``communities``, a single stand-in occurrence for a
broken schedule), so that one wrong value does not hide the template errors further down.
What needs the database (communities, accounts, rendering for every community) is checked by
:mod:`campaigns.planning`, which adds its problems to the same list.

:func:`load_campaign` and :func:`load_campaign_text` are the strict entry points: they return
a :class:`CampaignDefinition` or raise :class:`~marketing.problems.InvalidInput`, and nothing
else, whatever the text.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, TypeAdapter, ValidationError

from campaigns.besttime import BestTimeRule, periods
from campaigns.schedule import (
    Expansion,
    Occurrence,
    QuietHours,
    Schedule,
    ScheduleError,
    check_rrule,
    expand,
    parse_duration,
    parse_every,
)
from campaigns.schema import (
    REQUIRED,
    TOP_LEVEL,
    AtIn,
    ChannelInput,
    CommunityTagsIn,
    Moment,
    RotationIn,
    ScheduleIn,
    Slug,
    TemplateRef,
    Text,
    WindowIn,
    Zone,
    channel_models,
)
from campaigns.templates import CompiledTemplate, TemplateBook, TemplateSource
from channels import registry
from marketing.conventions import DEFAULT_TIMEZONE
from marketing.media import MediaRefused, resolve_media
from marketing.problems import (
    InvalidInput,
    Path_,
    Positions,
    Problem,
    format_path,
    problems_from_validation,
)
from marketing.settings import get_settings
from marketing.yamlsource import load_yaml

EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
MAX_WINDOW = timedelta(days=5 * 366)

_SLUG = TypeAdapter(Slug)
_TEXT = TypeAdapter(Text)
_ZONE = TypeAdapter(Zone)
_MOMENT: TypeAdapter[date | datetime] = TypeAdapter(Moment)
_STR = TypeAdapter(str)


def media_keys(kind: str) -> tuple[str, ...]:
    """Content keys of channel ``kind`` whose rendered value is a media file path, relative
    to the media root (MARKETING_MEDIA_DIR; see marketing.media); () for an unknown kind."""
    try:
        return registry.spec_for(kind).media_keys
    except KeyError:
        return ()


@dataclass
class Selection:
    """Which communities a campaign covers: all, a list of slugs, or any of some tags."""

    kind: Literal["all", "slugs", "tags"] = "all"
    slugs: list[tuple[str, Path_]] = field(default_factory=list)  # slug, where it is written
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VariantTest:
    """How an e-mail variant test runs (see :mod:`marketing.variant_tests`)."""

    share: int  # percent of the audience (or of the posts) the variants go to, in equal parts
    wait: timedelta  # after the last variant was sent, before the rest is decided
    min_sample: int  # e-mails sent (or views) per variant before a winner may be named
    unit: str = "audience"  # what is split: each post's "audience", or the campaign's "posts"


@dataclass
class ChannelBlock:
    """One channel of a campaign, its templates compiled."""

    kind: str
    account: str  # "community" (each community's own account) or an account slug
    templates: dict[str, CompiledTemplate]  # content key -> template
    # content key -> its list of templates, one for each item (YouTube's tags)
    template_lists: dict[str, list[CompiledTemplate]]
    fixed: dict[str, Any]  # content values that are not templates
    fields: dict[str, Path_]  # content key -> where it is written in the campaign file
    publish_at_occurrence: bool = False
    upload_ahead: timedelta = timedelta(0)
    audience_tags: list[str] | None = None
    # E-mail variant tests: the other variants' templates (b, c, ...; the channel's own
    # subject and preheader are a) and how the test runs.
    variants: list[dict[str, CompiledTemplate]] = field(default_factory=list)
    variant_test: VariantTest | None = None

    @property
    def path(self) -> Path_:
        return ("channels", self.kind)

    @property
    def reads(self) -> frozenset[str] | None:
        """Every name the channel's templates read; None if unknown (they include others)."""
        names: set[str] = set()
        listed = [t for templates in self.template_lists.values() for t in templates]
        variants = [t for variant in self.variants for t in variant.values()]
        for compiled in [*self.templates.values(), *listed, *variants]:
            if compiled.reads is None:
                return None
            names |= compiled.reads
        return frozenset(names)


@dataclass
class CampaignDefinition:
    """A campaign file, read and checked as far as it can be without the database."""

    file: str
    base_dir: Path  # template files named by the campaign are read here
    text: str
    positions: Positions
    book: TemplateBook
    media_root: Path = field(default_factory=lambda: get_settings().media_root)
    slug: str = "campaign"
    name: str = ""
    description: str = ""
    timezone: str = DEFAULT_TIMEZONE
    window_start: datetime = field(default_factory=lambda: datetime.now(UTC))
    window_end: datetime = field(default_factory=lambda: datetime.now(UTC))
    selection: Selection = field(default_factory=Selection)
    highlights: bool = False
    channels: list[ChannelBlock] = field(default_factory=list)
    occurrences: list[Occurrence] = field(default_factory=list)
    # False: the schedule is broken and ``occurrences`` holds one stand-in, so that templates
    # can still be checked.
    schedule_ok: bool = True
    rotation: RotationIn | None = None
    quiet_skipped: int = 0
    best_time: BestTimeRule | None = None  # the schedule asks for each community's best time
    problems: list[Problem] = field(default_factory=list)
    # Fields whose problems were already reported here (so planning does not repeat them).
    reported: set[Path_] = field(default_factory=set)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source_hash(self) -> str:
        """sha256 of the campaign text and every template file it read, in hex."""
        digest = hashlib.sha256(self.text.encode("utf-8"))
        for name in sorted(self.book.files_read):
            digest.update(b"\0" + name.encode("utf-8") + b"\0")
            try:
                digest.update(Path(name).read_bytes())
            except OSError:
                digest.update(b"(unreadable)")
        return digest.hexdigest()

    def problem(
        self,
        path: Path_,
        message: str,
        hint: str | None = None,
        *,
        at_key: bool = False,
        code: str | None = None,
        values: Mapping[str, str] | None = None,
    ) -> None:
        """Record a problem at ``path`` of the campaign file (``at_key``: where its key is
        written, for a problem with the key itself; ``code`` and ``values``: see
        :class:`marketing.problems.Problem`)."""
        line, column = where(self.positions, path, at_key=at_key)
        pairs = tuple((values or {}).items())
        self.problems.append(
            Problem(self.file, line, column, format_path(path), message, hint, code, pairs)
        )
        self.reported.add(path)


def where(
    positions: Positions, path: Path_, *, at_key: bool = False
) -> tuple[int | None, int | None]:
    """The line and column to report a problem of ``path`` at: its value, or its key when
    ``at_key`` or when the value is a nested block starting on a later line."""
    line, column = positions.nearest(path)
    key_line, key_column = positions.key(path)
    if at_key or (line is not None and key_line is not None and key_line < line):
        return key_line, key_column
    return line, column


def read_campaign(
    text: str, *, file: str, base_dir: Path, media_root: Path | None = None
) -> CampaignDefinition:
    """Read campaign ``text`` (named ``file`` in messages; template files are looked up in
    ``base_dir``, media files in ``media_root``, by default the settings' media root); every
    problem found is in the result's ``problems``."""
    root = media_root if media_root is not None else get_settings().media_root
    book = TemplateBook(base_dir, media_root=root)
    try:
        data, positions = load_yaml(text, file)
    except InvalidInput as exc:
        return CampaignDefinition(
            file, base_dir, text, Positions(), book, root, problems=exc.problems
        )
    d = CampaignDefinition(file, base_dir, text, positions, book, root)
    if not isinstance(data, dict):
        d.problems.append(
            Problem(
                file,
                1,
                1,
                "",
                "a campaign file is a mapping with slug, name, window, communities, channels "
                "and schedule",
                "start from an example in campaigns/examples/",
            )
        )
        return d
    for key in data:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(key, TOP_LEVEL, n=1)
            d.problem(
                (key,),
                "is not a known field (check its spelling)",
                f"did you mean {close[0]}?" if close else f"known: {', '.join(TOP_LEVEL)}",
                at_key=True,
                code="unknown_field",
                values={"close": close[0] if close else ""},
            )
    for key in REQUIRED:
        if key not in data:
            d.problem((key,), "is required but missing", code="required")
    _read_head(d, data)
    window_ok = _read_window(d, data["window"]) if "window" in data else False
    if "communities" in data:
        _read_selection(d, data["communities"])
    if "highlights" in data:
        if data["highlights"] == "next":
            d.highlights = True
        elif data["highlights"] is not None:
            d.problem(
                ("highlights",),
                f"{data['highlights']!r} is not understood",
                "write highlights: next to post each community's next unposted highlight, "
                "or leave it out",
            )
    if "channels" in data:
        _read_channels(d, data["channels"])
    _read_schedule(d, data, window_ok=window_ok)
    d.problems.extend(book.problems)
    return d


def load_campaign_text(
    text: str, *, file: str, base_dir: Path, media_root: Path | None = None
) -> CampaignDefinition:
    """A campaign from ``text``, or InvalidInput with every problem found without a database."""
    definition = read_campaign(text, file=file, base_dir=base_dir, media_root=media_root)
    if definition.problems:
        raise InvalidInput(definition.problems)
    return definition


def read_campaign_file(path: Path) -> tuple[str, str]:
    """The text of campaign file ``path`` and its name for messages; InvalidInput if unreadable."""
    file = str(path)
    try:
        return path.read_text(encoding="utf-8-sig"), file
    except FileNotFoundError as exc:
        raise InvalidInput([Problem(file, None, None, "", "file not found")]) from exc
    except IsADirectoryError as exc:
        raise InvalidInput([Problem(file, None, None, "", "is a folder, not a file")]) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [Problem(file, None, None, "", "not UTF-8 text", "save the file as UTF-8")]
        ) from exc
    except OSError as exc:
        raise InvalidInput([Problem(file, None, None, "", f"cannot read: {exc}")]) from exc


def load_campaign(path: Path) -> CampaignDefinition:
    """The campaign in file ``path``, or InvalidInput with every problem found."""
    text, file = read_campaign_file(path)
    return load_campaign_text(text, file=file, base_dir=path.resolve().parent)


# --- sections --------------------------------------------------------------------------------


def _check(
    d: CampaignDefinition, adapter: TypeAdapter[Any] | type[BaseModel], value: Any, path: Path_
) -> Any:
    """``value`` validated, or None after recording its problems."""
    try:
        if isinstance(adapter, TypeAdapter):
            return adapter.validate_python(value)
        return adapter.model_validate(value)
    except ValidationError as exc:
        found = problems_from_validation(exc, file=d.file, positions=d.positions, prefix=path)
        d.problems.extend(found)
        d.reported.add(path)
        errors = exc.errors(include_url=False)
        if isinstance(adapter, TypeAdapter) or not isinstance(value, dict):
            return None
        # Only unknown keys: report them, and go on with the rest so that the block's
        # templates are still checked.
        if all(e["type"] == "extra_forbidden" and len(e["loc"]) == 1 for e in errors):
            known = {k: v for k, v in value.items() if k in adapter.model_fields}
            try:
                return adapter.model_validate(known)
            except ValidationError:
                return None
        return None


def _read_head(d: CampaignDefinition, data: dict[str, Any]) -> None:
    if "slug" in data and (slug := _check(d, _SLUG, data["slug"], ("slug",))) is not None:
        d.slug = slug
    if "name" in data and (name := _check(d, _TEXT, data["name"], ("name",))) is not None:
        d.name = name
    if "description" in data and data["description"] is not None:
        description = _check(d, _STR, data["description"], ("description",))
        d.description = (description or "").strip()
    if "timezone" in data and (zone := _check(d, _ZONE, data["timezone"], ("timezone",))):
        d.timezone = zone


def _bound(moment: date | datetime, zone: ZoneInfo, *, end: bool) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC)
    local = datetime.combine(moment, time.max if end else time.min, tzinfo=zone)
    return local.astimezone(UTC)


def _read_window(d: CampaignDefinition, value: Any) -> bool:
    window = _check(d, WindowIn, value, ("window",))
    if window is None:
        return False
    for name in ("start", "end"):
        moment = getattr(window, name)
        if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            d.problem(
                ("window", name), f"year {moment.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR}"
            )
            return False
    start, end = _bound(window.start, d.zone, end=False), _bound(window.end, d.zone, end=True)
    if end < start:
        d.problem(
            ("window", "end"),
            f"the window ends ({window.end.isoformat()}) before it starts "
            f"({window.start.isoformat()})",
            "swap start and end, or fix the dates",
        )
        return False
    if end - start > MAX_WINDOW:
        d.problem(("window", "end"), "a campaign window is at most five years; split it")
        return False
    d.window_start, d.window_end = start, end
    return True


def _read_selection(d: CampaignDefinition, value: Any) -> None:
    path: Path_ = ("communities",)
    if value == "all":
        return
    if isinstance(value, list):
        selection = Selection(kind="slugs")
        seen: set[str] = set()
        for i, item in enumerate(value):
            slug = _check(d, _SLUG, item, (*path, i))
            if slug is None:
                continue
            if slug in seen:
                d.problem((*path, i), f"{slug!r} is listed twice", "keep one of them")
                continue
            seen.add(slug)
            selection.slugs.append((slug, (*path, i)))
        if not value:
            d.problem(path, "lists no community", "list community slugs, or write all")
        d.selection = selection
        return
    if isinstance(value, dict):
        tags = _check(d, CommunityTagsIn, value, path)
        if tags is not None:
            d.selection = Selection(kind="tags", tags=list(tags.tags))
        return
    d.problem(
        path,
        "write all, a list of community slugs, or {tags: [...]} (communities with any of them)",
    )


def _template_source(
    d: CampaignDefinition, ref: TemplateRef, path: Path_, *, html: bool = False
) -> TemplateSource:
    if ref.file is not None:
        line, column = d.positions.nearest((*path, "file"))
        return TemplateSource(path, d.file, line, column, path=ref.file, html=html)
    line, column = d.positions.nearest(path)
    block = False
    if line is not None and column is not None:
        lines = d.text.splitlines()
        if line <= len(lines):
            block = lines[line - 1][column - 1 : column] in ("|", ">")
    return TemplateSource(path, d.file, line, column, text=ref.text, block=block, html=html)


def _check_media(d: CampaignDefinition, ref: TemplateRef, path: Path_) -> None:
    """A media path written without template syntax is checked now, at its own line: inside
    the media root, and a file there (its type is the channel's check, when planning)."""
    if ref.text is None or "{" in ref.text:
        return
    try:
        resolve_media(ref.text, root=d.media_root)
    except MediaRefused as exc:
        d.problem(path, exc.message, exc.hint, code=exc.code, values=exc.values)


def _read_channels(d: CampaignDefinition, value: Any) -> None:
    models = channel_models()
    if not isinstance(value, dict) or not value:
        d.problem(
            ("channels",),
            f"write one block per channel: {_listed(list(models), 'and/or')}",
        )
        return
    for kind, block in value.items():
        path: Path_ = ("channels", kind)
        model = models.get(kind)
        if model is None:
            close = difflib.get_close_matches(str(kind), models, n=1)
            d.problem(
                path,
                f"{kind!r} is not a channel",
                f"did you mean {close[0]}?" if close else f"channels: {', '.join(models)}",
                at_key=True,
            )
            continue
        parsed = _check(d, model, block, path)
        if parsed is None:
            continue
        d.channels.append(_compile_channel(d, kind, parsed))


def _listed(names: list[str], last: str) -> str:
    """``a, b and/or c``."""
    return names[0] if len(names) < 2 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def _compile_channel(d: CampaignDefinition, kind: str, parsed: ChannelInput) -> ChannelBlock:
    base: Path_ = ("channels", kind)
    channel = ChannelBlock(
        kind=kind,
        account=parsed.account,
        templates={},
        template_lists={},
        fixed=parsed.fixed(),
        fields={key: (*base, name) for key, name in parsed.written_at().items()},
        publish_at_occurrence=parsed.publish_at_occurrence(),
        upload_ahead=parsed.goes_out_before(),
        audience_tags=parsed.audience_tags(),
    )
    for name in parsed.template_lists:
        listed = channel.template_lists.setdefault(name, [])
        for i, item in enumerate(getattr(parsed, name)):
            compiled = d.book.add(_template_source(d, item, (*base, name, i)))
            if compiled is not None:
                listed.append(compiled)
    _compile_variants(d, channel, parsed)
    media = media_keys(kind)
    for key in parsed.templates:
        ref = getattr(parsed, key)
        if ref is None:
            continue
        path = (*base, key)
        channel.fields[key] = path
        if key in media:
            _check_media(d, ref, path)
        per_recipient = None if parsed.per_recipient is None else key in parsed.per_recipient
        source = _template_source(d, ref, path, html=key in parsed.html_templates)
        compiled = d.book.add(source, per_recipient=per_recipient)
        if compiled is not None:
            channel.templates[key] = compiled
        else:
            d.reported.add(path)
    return channel


def _compile_variants(d: CampaignDefinition, channel: ChannelBlock, parsed: ChannelInput) -> None:
    """The block's ``variants`` (each a dict of content key -> template) and its ``test``."""
    base: Path_ = ("channels", channel.kind)
    variants = parsed.variant_templates()
    written = parsed.variant_test()
    if written is not None and not variants:
        d.problem(
            (*base, "test"),
            "a test needs variants to compare",
            "add variants: [{subject: ...}] or remove test",
        )
        return
    for i, variant in enumerate(variants):
        compiled: dict[str, CompiledTemplate] = {}
        for key, ref in variant.items():
            path: Path_ = (*base, "variants", i, key)
            if key in media_keys(channel.kind):
                _check_media(d, ref, path)
            per_recipient = None if parsed.per_recipient is None else key in parsed.per_recipient
            source = _template_source(d, ref, path, html=key in parsed.html_templates)
            made = d.book.add(source, per_recipient=per_recipient)
            if made is None:
                d.reported.add(path)
            else:
                compiled[key] = made
        channel.variants.append(compiled)
    if variants:
        test = written or parsed.default_variant_test()
        channel.variant_test = VariantTest(
            share=test.share,
            wait=parse_duration(test.wait),
            min_sample=test.min_sample,
            unit=parsed.variant_unit,
        )


def _read_schedule(d: CampaignDefinition, data: dict[str, Any], *, window_ok: bool) -> None:
    path: Path_ = ("schedule",)
    value = data.get("schedule")
    parsed = None
    if isinstance(value, dict):
        parsed = _check(d, ScheduleIn, value, path)
    elif "schedule" in data:
        d.problem(path, "give the schedule as a block with at, every or rrule")
    if parsed is not None and parsed.best_time is not None:
        _best_time(d, parsed, window_ok=window_ok)
        return
    schedule = _schedule(d, parsed) if parsed is not None else None
    d.rotation = parsed.rotation if parsed is not None else None
    if schedule is None or not window_ok:
        _stand_in(d)
        return
    try:
        expansion: Expansion = expand(schedule)
    except ScheduleError as exc:
        d.problem(path, str(exc))
        _stand_in(d)
        return
    for index in expansion.outside_window:
        d.problem(
            (*path, "at", index),
            "is outside the campaign window "
            f"({_local(d.window_start, d.zone)} to {_local(d.window_end, d.zone)})",
            "move the time into the window or widen the window",
        )
    d.quiet_skipped = expansion.quiet_skipped
    d.occurrences = expansion.occurrences
    if not expansion.occurrences and not expansion.outside_window:
        why = f" ({expansion.quiet_skipped} fell in quiet hours)" if expansion.quiet_skipped else ""
        d.problem(
            path,
            f"has no occurrence inside the window{why}",
            "check the window dates, the days and times, and the quiet hours",
        )
    if not d.occurrences:
        _stand_in(d)


def _best_time(d: CampaignDefinition, parsed: ScheduleIn, *, window_ok: bool) -> None:
    """A best-time schedule: one occurrence per period of the window (see
    :mod:`campaigns.besttime`); each community's time in it is chosen when planning."""
    path: Path_ = ("schedule",)
    assert parsed.best_time is not None
    others = [name for name in ("at", "every", "rrule") if getattr(parsed, name) is not None]
    if others:
        d.problem(
            (*path, others[0]),
            f"use one of at, every, rrule or best_time, not both best_time and {others[0]}",
        )
    if parsed.rotation is not None:
        d.problem(
            (*path, "rotation"),
            "best_time gives every community one post per period; rotation does not apply",
            "remove rotation, or use every with rotation",
        )
    quiet = parsed.quiet_hours
    if quiet is not None and quiet.start == quiet.end:
        d.problem((*path, "quiet_hours"), "quiet hours start and end at the same time")
        quiet = None
    d.best_time = BestTimeRule(
        per=parsed.best_time.per,
        min_gap=parse_duration(parsed.best_time.min_gap),
        quiet_start=quiet.start if quiet is not None else None,
        quiet_end=quiet.end if quiet is not None else None,
    )
    if others or parsed.rotation is not None or not window_ok:
        _stand_in(d)
        return
    d.occurrences = [
        Occurrence(key=p.key, at=p.start, nominal=p.start, index=p.index, until=p.end)
        for p in periods(d.window_start, d.window_end, d.zone, d.best_time.per)
    ]


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _stand_in(d: CampaignDefinition) -> None:
    d.schedule_ok = False
    d.occurrences = [Occurrence(key="check", at=d.window_start, nominal=d.window_start, index=1)]


def _schedule(d: CampaignDefinition, parsed: ScheduleIn) -> Schedule | None:
    path: Path_ = ("schedule",)
    given = [name for name in ("at", "every", "rrule") if getattr(parsed, name) is not None]
    if not given:
        d.problem(path, "needs one of at, every, rrule or best_time")
        return None
    if len(given) > 1:
        d.problem(
            (*path, given[1]),
            f"use one of at, every or rrule, not both {given[0]} and {given[1]}",
        )
        return None
    ok = True
    quiet = None
    if parsed.quiet_hours is not None:
        q = parsed.quiet_hours
        try:
            quiet = QuietHours(q.start, q.end, postpone=q.then == "postpone")
        except ScheduleError as exc:
            d.problem((*path, "quiet_hours"), str(exc))
            ok = False
    times: list[tuple[str | None, datetime]] = []
    rules: tuple[str, ...] = ()
    count = None
    if parsed.at is not None:
        keys: dict[str, int] = {}
        if not parsed.at:
            d.problem((*path, "at"), "lists no time")
            ok = False
        for i, item in enumerate(parsed.at):
            item_path = (*path, "at", i)
            key = None
            if isinstance(item, dict):
                at_in = _check(d, AtIn, item, item_path)
                if at_in is None:
                    ok = False
                    continue
                key, moment = at_in.key, at_in.time
                if key in keys:
                    d.problem((*item_path, "key"), f"key {key!r} is used twice")
                    ok = False
                keys[key] = i
                moment_path: Path_ = (*item_path, "time")
            else:
                moment = _check(d, _MOMENT, item, item_path)
                moment_path = item_path
                if moment is None:
                    ok = False
                    continue
            if not isinstance(moment, datetime):
                d.problem(
                    moment_path,
                    f"{moment.isoformat()} has no time of day",
                    f"write e.g. {moment.isoformat()}T10:00+07:00",
                )
                ok = False
                continue
            if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
                d.problem(moment_path, f"year {moment.year} is outside the supported range")
                ok = False
                continue
            times.append((key, moment))
    elif parsed.every is not None:
        try:
            rules = parse_every(parsed.every)
        except ScheduleError as exc:
            d.problem((*path, "every"), str(exc))
            ok = False
    elif parsed.rrule is not None:
        try:
            rule, count = check_rrule(parsed.rrule)
            rules = (rule,)
        except ScheduleError as exc:
            d.problem((*path, "rrule"), str(exc))
            ok = False
    if not ok:
        return None
    return Schedule(
        zone=d.zone,
        start=d.window_start,
        end=d.window_end,
        times=tuple(times),
        rules=rules,
        count=count,
        quiet=quiet,
    )
