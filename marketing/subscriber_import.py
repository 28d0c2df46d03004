"""Subscriber CSV files streamed into the database, a million rows in bounded memory.

The reference importer (:mod:`marketing.reference`) reads a whole file, validates it into
pydantic models and writes each record through the ORM: right for a YAML file of ten
communities, but 100,000 subscribers took 19 s and 761 MB.  A subscriber CSV (the command
line's ``marketing communities import FILE.csv`` and the web's upload) comes here instead:

1. the file is read row by row (``csv.reader`` on the open file, never the whole text);
2. each row is checked on its own -- the usual, plain row (an ASCII address, ISO 8601
   times) by a few precompiled patterns, anything else by the reference importer's own
   :class:`~marketing.reference.SubscriberIn`, so an accepted value and a problem's wording
   are the reference importer's;
3. the valid rows go in batches into a temporary table of the transaction (``COPY`` on
   PostgreSQL, ``executemany`` on SQLite);
4. at the end, the cross-row check (the same address twice in one community) is one
   ``GROUP BY`` over that table, and the subscribers are merged by two statements: an
   ``UPDATE ... FROM`` of the known addresses whose values differ (an unsubscribe already
   recorded stands) and an ``INSERT ... SELECT`` of the new ones.

All or nothing, as before: any problem and nothing is merged (the caller rolls back; the
temporary table goes with the transaction); every problem names the file, line, column and
field (``subscribers[i].email``), the first :data:`PROBLEMS_KEPT` of them kept, then a count
of the rest.  Addresses are matched without regard to case by the database's ``lower()``.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import email_validator
from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from marketing.db import UTCDateTime, utcnow
from marketing.models import Community
from marketing.problems import (
    CONTROL_CHARACTERS,
    InvalidInput,
    Positions,
    Problem,
    control_character,
    problem_at,
    problems_from_validation,
)
from marketing.reference import ImportSummary, SubscriberIn, csv_problem

PROBLEMS_KEPT = 1_000  # problems reported; the rest are counted
BATCH_ROWS = 5_000  # rows held in memory before they go to the temporary table
PROGRESS_EVERY = 10_000  # rows read between two progress reports

FIELDS = tuple(SubscriberIn.model_fields)
_LENGTHS = {"email": 320, "name": 200, "consent_source": 300}  # the columns' sizes

# The usual address, which email-validator accepts unchanged but for the domain's case: an
# ASCII dot-atom local part and letters-digits-hyphens labels ending in a letters-only top
# level.  Anything else (quoted or non-ASCII parts, "Name <addr>", IDNA labels) is checked
# by email-validator itself through SubscriberIn.
_EMAIL = re.compile(
    r"([A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*)@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL = re.compile(
    r"(?:^|\.)(?:" + "|".join(re.escape(d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES) + ")$"
)
# An ISO 8601 time with its offset (what the files and the web form write).
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:\d\d)")
_CONTROL = CONTROL_CHARACTERS

_COLUMNS = (
    "email",
    "name",
    "community_id",
    "consent_source",
    "consent_at",
    "consent_form",
    "consent_address",
    "unsubscribed_at",
    "line_user_id",
    "tags",
)
_LINE_USER = re.compile(r"U[0-9a-f]{32}")
_INCOMING = "subscriber_incoming"


def fast_email(value: str) -> str | None:
    """``value`` as SubscriberIn stores it (the domain in lower case) when it is a plain
    address that email-validator accepts; None when only email-validator can tell."""
    found = _EMAIL.fullmatch(value)
    if found is None:
        return None
    local, domain = found.groups()
    domain = domain.lower()
    if len(local) > 64 or len(value) > 254 or "--" in domain or _SPECIAL.search(domain) is not None:
        return None
    return f"{local}@{domain}"


def fast_time(value: str) -> datetime | None:
    """``value`` as an aware datetime when it is an ISO 8601 time with an offset; None
    when only pydantic can tell (including when it is not a time at all)."""
    if _TIME.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def is_subscriber_csv(path: Path) -> bool:
    """Whether ``path`` is a CSV file of subscribers (its header names an ``email``)."""
    if path.suffix.lower() != ".csv":
        return False
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return "email" in header


class _Rows:
    """Valid rows on their way to the temporary table, in batches."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.batch: list[tuple[Any, ...]] = []
        self.count = 0
        self.table = Table(
            _INCOMING,
            MetaData(),
            Column("idx", Integer),
            Column("line", Integer),
            Column("email", String),
            Column("name", String),
            Column("community_id", Integer),
            Column("consent_source", String),
            Column("consent_at", UTCDateTime()),
            Column("consent_form", String),
            Column("consent_address", String),
            Column("unsubscribed_at", UTCDateTime()),
            Column("line_user_id", String),
            Column("tags", JSON),
            prefixes=["TEMPORARY"],
        )
        if self.postgres:
            self.session.execute(text(f"DROP TABLE IF EXISTS pg_temp.{_INCOMING}"))
            self.session.execute(
                text(
                    f"CREATE TEMPORARY TABLE {_INCOMING} ON COMMIT DROP AS SELECT "
                    "0 AS idx, 0 AS line, email, name, community_id, consent_source, "
                    "consent_at, consent_form, consent_address, unsubscribed_at, line_user_id, "
                    "tags "
                    "FROM subscriber WITH NO DATA"
                )
            )
        else:
            self.session.execute(text(f"DROP TABLE IF EXISTS temp.{_INCOMING}"))
            self.table.create(self.session.connection())

    def add(self, row: tuple[Any, ...]) -> None:
        self.batch.append(row)
        if len(self.batch) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        self.count += len(self.batch)
        if self.postgres:
            self._copy()
        else:
            names = [c.name for c in self.table.columns]
            self.session.execute(
                insert(self.table), [dict(zip(names, row, strict=True)) for row in self.batch]
            )
        self.batch = []

    def _copy(self) -> None:
        pooled = self.session.connection().connection
        driver = pooled.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            names = ", ".join(c.name for c in self.table.columns)
            with cursor.copy(f"COPY {_INCOMING} ({names}) FROM STDIN") as copy:
                write, dumps = copy.write_row, json.dumps
                for row in self.batch:
                    tags = row[-1]
                    write((*row[:-1], dumps(tags) if tags else "[]"))


def _reader(fh: IO[str], file: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-empty row of ``fh`` with the line it starts on; InvalidInput at broken
    quoting (as :func:`marketing.reference.csv_rows`)."""
    reader = csv.reader(fh, strict=True)
    start = 1
    try:
        for cells in reader:
            if cells:
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidInput([csv_problem(exc, file, start, reader.line_num)]) from None


def import_subscriber_csv(
    *,
    session: Session,
    path: Path,
    name: str | None = None,
    community: str | None = None,
    defaults: dict[str, str] | None = None,
    strip_header: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportSummary:
    """Import the subscriber CSV at ``path`` in the caller's transaction; InvalidInput (and
    nothing merged) at any problem.  ``name`` is the file's name in problems (default: the
    path); ``community`` puts every row in that community whatever its ``community``
    column says; ``defaults`` fill a field whose cell is empty or missing; ``progress(stage,
    done, total)`` hears "checking" (rows read so far) and then "saving"."""
    file = name or str(path)
    defaults = defaults or {}
    slugs: dict[str, int] = {s: i for s, i in session.execute(select(Community.slug, Community.id))}
    rows = _Rows(session)
    problems: list[Problem] = []
    more = 0

    def found(problem: Problem) -> None:
        nonlocal more
        if len(problems) < PROBLEMS_KEPT:
            problems.append(problem)
        else:
            more += 1

    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError:
        raise InvalidInput([Problem(file, None, None, "", "file not found")]) from None
    with fh:
        try:
            lines = _reader(fh, file)
            header = next(lines, (1, []))[1]
            if strip_header:
                header = [h.strip() for h in header]
            if "email" not in header:
                raise InvalidInput(
                    [
                        Problem(
                            file,
                            1,
                            1,
                            "(header)",
                            "has no email column",
                            "the first line names the columns: email,name,consent_source,"
                            "consent_at,tags (only email is required)",
                        )
                    ]
                )
            if community is not None and community not in slugs:
                raise InvalidInput(
                    [Problem(file, None, None, "", f"unknown community {community!r}")]
                )
            checker = _Checker(
                file=file,
                header=header,
                defaults=defaults,
                community=community,
                slugs=slugs,
                found=found,
            )
            for index, (line, cells) in enumerate(lines):
                if progress is not None and index % PROGRESS_EVERY == 0:
                    progress("checking", index, 0)
                row = checker.row(index, line, cells)
                if row is not None and not problems:
                    rows.add(row)
        except UnicodeDecodeError:
            raise InvalidInput(
                [Problem(file, None, None, "", "is not UTF-8 text", "save the CSV as UTF-8")]
            ) from None
    if problems:
        raise InvalidInput(_with_more(problems, more, file))
    rows.flush()
    total = rows.count
    if progress is not None:
        progress("saving", 0, total)
    duplicates = _duplicates(session, file, {v: k for k, v in slugs.items()})
    if duplicates:
        raise InvalidInput(duplicates)
    summary = _merge(session, total)
    if progress is not None:
        progress("saving", total, total)
    return summary


def _with_more(problems: list[Problem], more: int, file: str) -> list[Problem]:
    if not more:
        return problems
    return [
        *problems,
        Problem(file, None, None, "", f"and {more:,} more problems like these", None),
    ]


class _Checker:
    """Checks rows of one file: each row as a row of the temporary table, or None after
    reporting its problems."""

    def __init__(
        self,
        *,
        file: str,
        header: list[str],
        defaults: dict[str, str],
        community: str | None,
        slugs: dict[str, int],
        found: Callable[[Problem], None],
    ) -> None:
        self.file, self.header, self.defaults = file, header, defaults
        self.community, self.slugs, self.found = community, slugs, found
        self.width = width = len(header)
        # The cell of each field (the last column of that name, as the reference reader);
        # a field without a column reads the empty cell appended after the last one.
        at = {h: i for i, h in enumerate(header) if h}
        if community is not None:
            at.pop("community", None)
        self.unknown = [i for h, i in at.items() if h not in FIELDS]
        self.at = {f: at.get(f, width) for f in FIELDS}
        self.fixed_community = slugs.get(community) if community is not None else None
        self.times: dict[str, datetime | None] = {}
        self.no_tags: list[str] = []

    def row(self, index: int, line: int, cells: list[str]) -> tuple[Any, ...] | None:
        width = self.width
        if len(cells) > width:
            self.found(
                Problem(
                    self.file,
                    line,
                    width + 1,
                    f"subscribers[{index}]",
                    "more cells than the header",
                )
            )
            return None
        padded = cells + [""] * (width + 1 - len(cells))
        at, defaults = self.at, self.defaults
        plain = _CONTROL.search("".join(cells)) is None and not any(padded[i] for i in self.unknown)
        consent_source = (
            padded[at["consent_source"]] or defaults.get("consent_source", "")
        ).strip()
        consent_raw = (padded[at["consent_at"]] or defaults.get("consent_at", "")).strip()
        unsubscribed_raw = padded[at["unsubscribed_at"]].strip()
        consent_form = padded[at["consent_form"]].strip() or None
        consent_address = padded[at["consent_address"]].strip() or None
        line_user_id = padded[at["line_user_id"]].strip() or None
        email = fast_email(padded[at["email"]].strip()) if plain else None
        consent_at = unsubscribed_at = None
        if email is not None and consent_source:
            times = self.times
            consent_at = times.get(consent_raw)
            if consent_at is None:
                if len(times) >= 1_000:
                    times.clear()  # a few distinct times repeat; keep memory bounded
                consent_at = times[consent_raw] = fast_time(consent_raw)
            if unsubscribed_raw:
                unsubscribed_at = fast_time(unsubscribed_raw)
        tags_raw = padded[at["tags"]]
        tags = [t.strip() for t in tags_raw.split("|") if t.strip()] if tags_raw else self.no_tags
        name = padded[at["name"]].strip()
        slug = self.community
        if slug is None:
            slug = padded[at["community"]].strip() or None
        if not (
            email is not None
            and consent_at is not None
            and (unsubscribed_at is not None or not unsubscribed_raw)
            and (consent_form is None or len(consent_form) <= 300)
            and (consent_address is None or len(consent_address) <= 100)
            and (line_user_id is None or _LINE_USER.fullmatch(line_user_id) is not None)
        ):
            # Not the usual row: the reference importer's model says what is wrong, if any.
            checked = _slow(
                index, line, cells, self.file, self.header, defaults, self.community, self.found
            )
            if checked is None:
                return None
            email, name, consent_source = checked.email, checked.name, checked.consent_source
            consent_at, unsubscribed_at = checked.consent_at, checked.unsubscribed_at
            consent_form = checked.consent_form or None
            consent_address = checked.consent_address or None
            line_user_id = checked.line_user_id
            tags, slug = checked.tags, checked.community
        community_id = (
            self.fixed_community if self.community is not None else self.slugs.get(slug or "")
        )
        if (
            community_id is None
            or len(email) > _LENGTHS["email"]
            or len(name) > _LENGTHS["name"]
            or len(consent_source) > _LENGTHS["consent_source"]
            or (unsubscribed_at is not None and unsubscribed_at < consent_at)
        ):
            self._problems(
                index, line, cells, slug, email, name, consent_source, consent_at, unsubscribed_at
            )
            return None
        return (
            index,
            line,
            email,
            name,
            community_id,
            consent_source,
            consent_at,
            consent_form,
            consent_address,
            unsubscribed_at,
            line_user_id,
            tags,
        )

    def _problems(
        self,
        index: int,
        line: int,
        cells: list[str],
        slug: str | None,
        email: str,
        name: str,
        consent_source: str,
        consent_at: datetime,
        unsubscribed_at: datetime | None,
    ) -> None:
        """Report what is wrong with a row that passed the model's checks."""
        file, found = self.file, self.found
        positions = _positions(index, line, cells, self.header)
        for field, value in (
            ("email", email),
            ("name", name),
            ("consent_source", consent_source),
        ):
            if len(value) > _LENGTHS[field]:
                found(
                    problem_at(
                        file,
                        positions,
                        ("subscribers", index, field),
                        f"is longer than {_LENGTHS[field]} characters",
                    )
                )
        if slug is None:
            found(
                problem_at(
                    file,
                    positions,
                    ("subscribers", index),
                    "says no community",
                    "add community: <slug> to each subscriber",
                )
            )
        elif self.community is None and slug not in self.slugs:
            found(
                problem_at(
                    file,
                    positions,
                    ("subscribers", index, "community"),
                    f"unknown community {slug!r}",
                    "import the community first or fix the slug",
                )
            )
        if unsubscribed_at is not None and unsubscribed_at < consent_at:
            found(
                problem_at(
                    file,
                    positions,
                    ("subscribers", index, "unsubscribed_at"),
                    "is before consent_at",
                )
            )


def _positions(index: int, line: int, cells: list[str], header: list[str]) -> Positions:
    positions = Positions()
    positions.set(("subscribers", index), line, 1)
    for col_no, (h, value) in enumerate(zip(header, cells, strict=False), start=1):
        if value != "":
            positions.set(("subscribers", index, h), line, col_no)
    return positions


def _slow(
    index: int,
    line: int,
    cells: list[str],
    file: str,
    header: list[str],
    defaults: dict[str, str],
    community: str | None,
    found: Callable[[Problem], None],
) -> SubscriberIn | None:
    """Row ``index`` checked as the reference importer checks it."""
    positions = _positions(index, line, cells, header)
    item: dict[str, Any] = {}
    for h, value in zip(header, cells, strict=False):
        if value == "" or not h or (community is not None and h == "community"):
            continue
        item[h] = [v.strip() for v in value.split("|") if v.strip()] if h == "tags" else value
    for field, value in defaults.items():
        if not item.get(field):
            item[field] = value
    if community is not None:
        item["community"] = community
    problems = []
    for h, value in item.items():
        if isinstance(value, str) and (char := control_character(value)) is not None:
            problems.append(
                problem_at(
                    file,
                    positions,
                    ("subscribers", index, h),
                    f"contains a control character ({char}), which text may not hold",
                    "retype the value, or save the file again as plain UTF-8 text",
                )
            )
    if problems:
        for problem in problems:
            found(problem)
        return None
    try:
        return SubscriberIn.model_validate(item)
    except ValidationError as exc:
        for problem in problems_from_validation(
            exc, file=file, positions=positions, prefix=("subscribers", index)
        ):
            found(problem)
        return None


def _duplicates(session: Session, file: str, slug_of: dict[int, str]) -> list[Problem]:
    """A problem at every row whose address is already on an earlier row of the same
    community (without regard to case)."""
    twice = session.execute(
        text(
            f"SELECT community_id, lower(email) AS k FROM {_INCOMING} "
            "GROUP BY community_id, lower(email) HAVING count(*) > 1 LIMIT 1"
        )
    ).first()
    if twice is None:
        return []
    found = session.execute(
        text(
            "SELECT idx, line, community_id, k, first_line FROM ("
            "SELECT idx, line, community_id, lower(email) AS k, "
            "first_value(line) OVER (PARTITION BY community_id, lower(email) ORDER BY idx) "
            "AS first_line, "
            "row_number() OVER (PARTITION BY community_id, lower(email) ORDER BY idx) AS n "
            f"FROM {_INCOMING}) AS x WHERE n > 1 ORDER BY idx"
        )
    )
    problems: list[Problem] = []
    more = 0
    for idx, line, community_id, key, first_line in found:
        if len(problems) >= PROBLEMS_KEPT:
            more += 1
            continue
        problems.append(
            Problem(
                file,
                line,
                None,
                f"subscribers[{idx}].email",
                f"duplicate subscriber {(slug_of.get(community_id), key)!r}",
                f"it is already used on line {first_line}",
            )
        )
    return _with_more(problems, more, file)


def _merge(session: Session, total: int) -> ImportSummary:
    """Merge the temporary table into ``subscriber``: update the known addresses whose
    values differ (an unsubscribe already recorded stands), then insert the new ones."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres:
        session.execute(
            text(f"CREATE INDEX temp.{_INCOMING}_key ON {_INCOMING} (community_id, lower(email))")
        )
    now = {"now": utcnow()}
    changed = " OR ".join(
        [
            *(
                f"s.{c} IS DISTINCT FROM t.{c}"
                for c in _COLUMNS
                if c not in ("tags", "community_id", "unsubscribed_at", "line_user_id")
            ),
            "CAST(s.tags AS TEXT) IS DISTINCT FROM CAST(t.tags AS TEXT)",
            "(s.unsubscribed_at IS NULL AND t.unsubscribed_at IS NOT NULL)",
            # An empty LINE cell keeps the id linked before (a file without the column too).
            "(t.line_user_id IS NOT NULL AND s.line_user_id IS DISTINCT FROM t.line_user_id)",
        ]
    )
    sets = ", ".join(
        f"{c} = t.{c}"
        for c in _COLUMNS
        if c not in ("community_id", "unsubscribed_at", "line_user_id")
    )
    connection = session.connection()
    updated = connection.execute(
        text(
            f"UPDATE subscriber AS s SET {sets}, "
            "unsubscribed_at = COALESCE(s.unsubscribed_at, t.unsubscribed_at), "
            "line_user_id = COALESCE(t.line_user_id, s.line_user_id), "
            f"updated_at = :now FROM {_INCOMING} AS t "
            "WHERE s.community_id = t.community_id AND lower(s.email) = lower(t.email) "
            f"AND ({changed})"
        ),
        now,
    ).rowcount
    columns = ", ".join(_COLUMNS)
    created = connection.execute(
        text(
            f"INSERT INTO subscriber ({columns}, created_at, updated_at) "
            f"SELECT {', '.join('t.' + c for c in _COLUMNS)}, :now, :now FROM {_INCOMING} AS t "
            "WHERE NOT EXISTS (SELECT 1 FROM subscriber AS s "
            "WHERE s.community_id = t.community_id AND lower(s.email) = lower(t.email))"
        ),
        now,
    ).rowcount
    if not postgres:
        session.execute(text(f"DROP TABLE temp.{_INCOMING}"))
    summary = ImportSummary()
    counts = summary.counts.setdefault("subscribers", Counter())
    counts["created"] += created
    counts["updated"] += updated
    counts["unchanged"] += total - created - updated
    return summary
