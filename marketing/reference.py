"""Import reference data -- communities, channel accounts, subscribers, highlights -- from YAML or
CSV files that staff keep.

The import is idempotent (a second run changes nothing), additive (what a file leaves out is
kept), and all-or-nothing: every problem in the file is reported with its line and field, and
then nothing is written.  An unsubscribe recorded by the service is never undone by importing
an older list.  Files name the *secret* that holds an account's token, never the token.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.media import IMAGE_TYPES, VIDEO_TYPES, type_problem
from marketing.conventions import DEFAULT_TIMEZONE, SLUG_PATTERN
from marketing.destinations import DestinationRefused, checked_url
from marketing.media import MediaRefused, resolve_media
from marketing.models import (
    ChannelAccount,
    ChannelKind,
    Community,
    CommunityDestination,
    DestinationKind,
    Highlight,
    Subscriber,
)
from marketing.problems import (
    InvalidInput,
    Path_,
    Positions,
    Problem,
    collect,
    control_character,
    problem_at,
    problems_from_validation,
)
from marketing.settings import get_settings
from marketing.yamlsource import load_yaml

PROGRESS_EVERY = 500  # subscribers saved between two progress reports

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
SecretName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{1,119}$"),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Asia/Bangkok"
        ) from exc
    return value


Zone = Annotated[str, AfterValidator(_zone)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AccountIn(_Strict):
    slug: Slug | None = Field(None, description="Default: <community>-<channel>.")
    community: Slug | None = Field(None, description="Owning community; absent: programme-wide.")
    channel: ChannelKind
    external_id: Text
    display_name: Text
    secret: SecretName | None = Field(
        None, description="Name of the secret holding the token (MARKETING_SECRET_<NAME>)."
    )


class SubscriberIn(_Strict):
    community: Slug | None = None
    email: EmailStr
    name: str = ""
    consent_source: Text
    consent_at: AwareDatetime
    consent_form: str | None = Field(None, max_length=300)  # the sign-up form (web)
    consent_address: str | None = Field(None, max_length=100)  # its sender's IP address
    unsubscribed_at: AwareDatetime | None = None
    tags: list[str] = []
    # A linked LINE user id: U and 32 lowercase hex digits (developers.line.biz/en/docs/
    # messaging-api/getting-user-ids/).
    line_user_id: str | None = Field(None, pattern=r"^U[0-9a-f]{32}$")


class HighlightIn(_Strict):
    key: Slug
    title: Text
    body: str = ""
    media: list[str] = []
    tags: list[str] = []
    link: str | None = None
    people_consent: bool = False
    consent_note: str | None = None


class DestinationIn(_Strict):
    """A community's shop, booking or product page (one of each kind): where its counted
    ``/go/`` links lead (:mod:`marketing.destinations`)."""

    kind: DestinationKind
    url: str = Field(max_length=2000)
    label_th: Text

    @field_validator("url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        try:
            return checked_url(value)
        except DestinationRefused as exc:
            raise ValueError(str(exc)) from None


class CommunityIn(_Strict):
    slug: Slug
    name_th: Text
    name_en: Text
    province: Text
    description: str = ""
    tags: list[str] = []
    timezone: Zone = DEFAULT_TIMEZONE
    website: str | None = None
    accounts: list[AccountIn] = []
    subscribers: list[SubscriberIn] = []
    highlights: list[HighlightIn] = []
    destinations: list[DestinationIn] = []


class ReferenceFile(_Strict):
    sample_data: bool = Field(False, description="True marks fictional sample data.")
    communities: list[CommunityIn] = []
    accounts: list[AccountIn] = []
    subscribers: list[SubscriberIn] = []


@dataclass
class ImportSummary:
    """What an import did, per kind of record: created, updated, unchanged."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, kind: str, outcome: str) -> None:
        self.counts.setdefault(kind, Counter())[outcome] += 1

    @property
    def changed(self) -> bool:
        return any(c["created"] or c["updated"] for c in self.counts.values())


# --- reading -------------------------------------------------------------------------------

_CSV_KINDS = {
    "subscribers": {"email"},
    "accounts": {"channel", "external_id"},
    "communities": {"slug", "name_th"},
}
_CSV_LISTS = {"tags"}


def csv_problem(exc: csv.Error, file: str, start: int, line: int) -> Problem:
    """The problem of broken quoting that ``csv`` (strict) reported at ``line``, for a row
    that began on line ``start``: a quote never closed is named where it opened."""
    if "unexpected end of data" in str(exc):
        return Problem(
            file,
            start,
            None,
            "(row)",
            'a quoted cell begins on this line and is never closed (a closing " is missing)',
            'close the quote; a quote inside a cell is written twice: "say ""hello"""',
        )
    return Problem(
        file,
        line,
        None,
        "(row)",
        f"is not valid CSV here ({exc})",
        'a cell with a quote in it is quoted as a whole: "say ""hello"""',
    )


def csv_rows(text: str, file: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header of CSV ``text`` and each non-empty row's cells with the line the row
    starts on; InvalidInput naming the line of a quote that is never closed, or of any other
    broken quoting (the lenient reading would swallow the rest of the file into one cell)."""
    reader = csv.reader(io.StringIO(text), strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if header is None:
                header = cells
            elif cells:
                rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput([csv_problem(exc, file, start, reader.line_num)]) from None
    return header or [], rows


def _read_csv(text: str, file: str) -> tuple[dict[str, Any], Positions]:
    fieldnames, csv_lines = csv_rows(text, file)
    header = set(fieldnames)
    kind = next((k for k, cols in _CSV_KINDS.items() if cols <= header), None)
    if kind is None:
        raise InvalidInput(
            [
                Problem(
                    file,
                    1,
                    1,
                    "(header)",
                    f"cannot tell what this CSV holds from its header {sorted(header)}",
                    "a communities file needs slug,name_th; accounts need channel,external_id; "
                    "subscribers need email",
                )
            ]
        )
    positions = Positions()
    rows: list[dict[str, Any]] = []
    columns = list(fieldnames)
    for index, (line, cells) in enumerate(csv_lines):
        positions.set((kind, index), line, 1)
        item: dict[str, Any] = {}
        for col_no, (name, value) in enumerate(zip(columns, cells, strict=False), start=1):
            if value == "":
                continue
            positions.set((kind, index, name), line, col_no)
            item[name] = (
                [v.strip() for v in value.split("|") if v.strip()]
                if (name in _CSV_LISTS)
                else value
            )
        if len(cells) > len(columns):
            positions.set((kind, index, "(extra)"), line, len(columns) + 1)
            raise InvalidInput(
                [
                    Problem(
                        file,
                        line,
                        len(columns) + 1,
                        f"{kind}[{index}]",
                        "more cells than the header",
                    )
                ]
            )
        rows.append(item)
    return {kind: rows}, positions


def _control_character_problems(
    data: Any, file: str, positions: Positions, path: Path_ = ()
) -> list[Problem]:
    """A problem for every text value holding a control character (NUL and the like), named
    by its field and line; the value itself is never repeated (it may be personal data)."""
    if isinstance(data, str):
        found = control_character(data)
        if found is None:
            return []
        return [
            problem_at(
                file,
                positions,
                path,
                f"contains a control character ({found}), which text may not hold",
                "retype the value, or save the file again as plain UTF-8 text",
            )
        ]
    items: list[tuple[str | int, Any]] = []
    if isinstance(data, dict):
        items = [(k, v) for k, v in data.items() if isinstance(k, str | int)]
    elif isinstance(data, list):
        items = list(enumerate(data))
    problems: list[Problem] = []
    for key, value in items:
        problems += _control_character_problems(value, file, positions, (*path, key))
    return problems


def read_reference(path: Path) -> tuple[ReferenceFile, Positions, str]:
    """Parse and validate a reference file; raise InvalidInput with every problem."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InvalidInput([Problem(file, None, None, "", "file not found")]) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [Problem(file, None, None, "", "not UTF-8 text", "save the file as UTF-8")]
        ) from exc
    if path.suffix.lower() == ".csv":
        data, positions = _read_csv(text, file)
    else:
        data, positions = load_yaml(text, file)
    if not isinstance(data, dict):
        raise InvalidInput(
            [
                Problem(
                    file,
                    1,
                    1,
                    "",
                    "expected a mapping with 'communities', 'accounts' or 'subscribers' at the top",
                )
            ]
        )
    collect(_control_character_problems(data, file, positions))
    try:
        parsed = ReferenceFile.model_validate(data)
    except ValidationError as exc:
        # Not chained: pydantic's error repeats each bad value (a subscriber's address or
        # name), and a chained error is printed with any traceback that shows this one.
        raise InvalidInput(problems_from_validation(exc, file=file, positions=positions)) from None
    return parsed, positions, file


# --- checking across records ----------------------------------------------------------------


@dataclass
class _Flat:
    """The file's records, flattened, each with its path for messages."""

    communities: list[tuple[Path_, CommunityIn]] = field(default_factory=list)
    accounts: list[tuple[Path_, str | None, AccountIn]] = field(default_factory=list)
    subscribers: list[tuple[Path_, str, SubscriberIn]] = field(default_factory=list)
    highlights: list[tuple[Path_, str, HighlightIn]] = field(default_factory=list)


def _flatten(ref: ReferenceFile, file: str, positions: Positions) -> tuple[_Flat, list[Problem]]:
    flat = _Flat()
    problems: list[Problem] = []
    for i, c in enumerate(ref.communities):
        base: Path_ = ("communities", i)
        flat.communities.append((base, c))
        for j, a in enumerate(c.accounts):
            path = (*base, "accounts", j)
            if a.community not in (None, c.slug):
                problems.append(
                    problem_at(
                        file,
                        positions,
                        (*path, "community"),
                        f"differs from the community it is listed under ({c.slug})",
                    )
                )
            flat.accounts.append((path, c.slug, a))
        for j, s in enumerate(c.subscribers):
            flat.subscribers.append(((*base, "subscribers", j), c.slug, s))
        for j, h in enumerate(c.highlights):
            flat.highlights.append(((*base, "highlights", j), c.slug, h))
    for j, a in enumerate(ref.accounts):
        flat.accounts.append((("accounts", j), a.community, a))
    for j, s in enumerate(ref.subscribers):
        path = ("subscribers", j)
        if s.community is None:
            problems.append(
                problem_at(
                    file,
                    positions,
                    path,
                    "says no community",
                    "add community: <slug> to each subscriber",
                )
            )
            continue
        flat.subscribers.append((path, s.community, s))
    return flat, problems


def _duplicates(
    items: list[tuple[Path_, Any]], file: str, positions: Positions, what: str, leaf: str
) -> list[Problem]:
    seen: dict[Any, Path_] = {}
    problems = []
    for path, key in items:
        if key in seen:
            first = positions.nearest(seen[key])[0]
            problems.append(
                problem_at(
                    file,
                    positions,
                    (*path, leaf),
                    f"duplicate {what} {key!r}",
                    f"it is already used on line {first}" if first else None,
                )
            )
        else:
            seen[key] = path
    return problems


def _media_problems(flat: _Flat, root: Path, file: str, positions: Positions) -> list[Problem]:
    """Every highlight's media: a file inside the media ``root``, an image or a video by
    its suffix and its content."""
    problems = []
    for path, _slug, h in flat.highlights:
        for k, media in enumerate(h.media):
            where = (*path, "media", k)
            try:
                real = resolve_media(media, root=root)
            except MediaRefused as exc:
                problems.append(
                    problem_at(
                        file,
                        positions,
                        where,
                        exc.message,
                        exc.hint,
                        code=exc.code,
                        values=exc.values,
                    )
                )
                continue
            table = VIDEO_TYPES if real.suffix.lower() in VIDEO_TYPES else IMAGE_TYPES
            found = type_problem(real, table)
            if found is not None:
                problems.append(
                    problem_at(
                        file,
                        positions,
                        where,
                        f"{media!r}: {found}",
                        "highlight media are photos or videos",
                    )
                )
    return problems


# --- writing ----------------------------------------------------------------------------------


def _apply(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _upsert(
    session: Session,
    summary: ImportSummary,
    kind: str,
    existing: Any,
    model: type[Any],
    values: dict[str, Any],
) -> Any:
    if existing is None:
        obj = model(**values)
        session.add(obj)
        summary.add(kind, "created")
        return obj
    summary.add(kind, "updated" if _apply(existing, values) else "unchanged")
    return existing


def import_reference(
    *,
    session: Session,
    path: Path,
    media_root: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import ``path`` in the caller's transaction; raise InvalidInput before writing anything.
    Highlight media are named relative to ``media_root`` (default: the settings').
    ``progress(saved, total)`` is told how many subscribers are saved, every few hundred."""
    from marketing.subscriber_import import import_subscriber_csv, is_subscriber_csv

    if is_subscriber_csv(path):
        # A subscriber list may be a million rows: streamed, in bounded memory.
        def told(stage: str, done: int, total: int) -> None:
            if progress is not None and stage == "saving":
                progress(done, total)

        return import_subscriber_csv(session=session, path=path, progress=told)
    root = media_root if media_root is not None else get_settings().media_root
    ref, positions, file = read_reference(path)
    flat, problems = _flatten(ref, file, positions)
    problems += _duplicates(
        [(p, c.slug) for p, c in flat.communities], file, positions, "community slug", "slug"
    )
    problems += _duplicates(
        [(p, a.slug or f"{slug}-{a.channel.value}") for p, slug, a in flat.accounts],
        file,
        positions,
        "account slug",
        "slug",
    )
    problems += _duplicates(
        [(p, (a.channel, a.external_id)) for p, _s, a in flat.accounts],
        file,
        positions,
        "channel account",
        "external_id",
    )
    problems += _duplicates(
        [(p, (slug, s.email.lower())) for p, slug, s in flat.subscribers],
        file,
        positions,
        "subscriber",
        "email",
    )
    problems += _duplicates(
        [(p, (slug, h.key)) for p, slug, h in flat.highlights], file, positions, "highlight", "key"
    )
    problems += _duplicates(
        [
            ((*base, "destinations", j), (c.slug, d.kind))
            for base, c in flat.communities
            for j, d in enumerate(c.destinations)
        ],
        file,
        positions,
        "destination",
        "kind",
    )
    problems += _media_problems(flat, root, file, positions)

    in_file = {c.slug for _p, c in flat.communities}
    referenced = {slug for _p, slug, _a in flat.accounts if slug} | {
        slug for _p, slug, _s in flat.subscribers
    }
    known = set(
        session.scalars(select(Community.slug).where(Community.slug.in_(referenced - in_file)))
    )
    for path_, slug, _item in [*flat.accounts, *flat.subscribers]:
        if slug and slug not in in_file and slug not in known:
            problems.append(
                problem_at(
                    file,
                    positions,
                    (*path_, "community"),
                    f"unknown community {slug!r}",
                    "import the community first or fix the slug",
                )
            )
    for path_, _slug, s in flat.subscribers:
        if s.unsubscribed_at and s.unsubscribed_at < s.consent_at:
            problems.append(
                problem_at(file, positions, (*path_, "unsubscribed_at"), "is before consent_at")
            )
    if problems:
        raise InvalidInput(problems)

    summary = ImportSummary()
    by_slug: dict[str, Community] = {
        c.slug: c
        for c in session.scalars(select(Community).where(Community.slug.in_(in_file | referenced)))
    }
    for _p, c in flat.communities:
        values = c.model_dump(
            include={
                "slug",
                "name_th",
                "name_en",
                "province",
                "description",
                "tags",
                "timezone",
                "website",
            }
        )
        by_slug[c.slug] = _upsert(
            session, summary, "communities", by_slug.get(c.slug), Community, values
        )
    session.flush()

    accounts = {a.slug: a for a in session.scalars(select(ChannelAccount))}
    for _p, slug, a in flat.accounts:
        account_slug = a.slug or f"{slug}-{a.channel.value}"
        values = {
            "slug": account_slug,
            "kind": a.channel,
            "external_id": a.external_id,
            "display_name": a.display_name,
            "secret_name": a.secret,
            "community_id": by_slug[slug].id if slug else None,
        }
        _upsert(session, summary, "accounts", accounts.get(account_slug), ChannelAccount, values)

    existing_subs: dict[tuple[int, str], Subscriber] = {}
    community_ids = {by_slug[slug].id for _p, slug, _s in flat.subscribers}
    if community_ids:
        for sub in session.scalars(
            select(Subscriber).where(Subscriber.community_id.in_(community_ids))
        ):
            existing_subs[(sub.community_id, sub.email.lower())] = sub
    total = len(flat.subscribers)
    for done, (_p, slug, s) in enumerate(flat.subscribers):
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)
        community_id = by_slug[slug].id
        found = existing_subs.get((community_id, s.email.lower()))
        values = {
            "email": s.email,
            "name": s.name,
            "community_id": community_id,
            "consent_source": s.consent_source,
            "consent_at": s.consent_at,
            "consent_form": s.consent_form or None,
            "consent_address": s.consent_address or None,
            "tags": s.tags,
        }
        if s.line_user_id:  # a list without it keeps the id linked before
            values["line_user_id"] = s.line_user_id
        # An unsubscribe already recorded stands, whatever an older list says.
        if s.unsubscribed_at and (found is None or found.unsubscribed_at is None):
            values["unsubscribed_at"] = s.unsubscribed_at
        _upsert(session, summary, "subscribers", found, Subscriber, values)

    highlights = {
        (h.community_id, h.key): h
        for h in session.scalars(
            select(Highlight).where(Highlight.community_id.in_([c.id for c in by_slug.values()]))
        )
    }
    for hpath, slug, h in flat.highlights:
        community_id = by_slug[slug].id
        values = h.model_dump(exclude={"media"})
        # As written (relative to the media root), where templates, pages and the media
        # route look them up again; never an absolute path.
        values["media"] = [m.strip() for m in h.media]
        values["community_id"] = community_id
        values["position"] = hpath[-1]  # order within its community, as written
        _upsert(
            session, summary, "highlights", highlights.get((community_id, h.key)), Highlight, values
        )
    # Destinations listed under a community are set; those not listed are kept (a file
    # written before a page was added on the web does not remove it).
    listed = [(by_slug[c.slug], d) for _p, c in flat.communities for d in c.destinations]
    if listed:
        known_pages = {
            (d.community_id, d.kind): d
            for d in session.scalars(
                select(CommunityDestination).where(
                    CommunityDestination.community_id.in_({c.id for c, _d in listed})
                )
            )
        }
        for community, d in listed:
            values = {
                "community_id": community.id,
                "kind": d.kind,
                "url": d.url,
                "label_th": d.label_th,
            }
            _upsert(
                session,
                summary,
                "destinations",
                known_pages.get((community.id, d.kind)),
                CommunityDestination,
                values,
            )
    session.flush()
    if progress is not None:
        progress(total, total)
    return summary
