"""What the programme is for: each community's monthly sales, bookings and visitors, imported
by staff from a CSV, and a year of them beside the year's engagement.

The file (UTF-8, a header row; columns in any order, unknown ones refused)::

    community,month,sales,bookings,visitors
    nan-ban-doi-ngoen,2570-01,125000,42,380
    phrae-ban-thung-khram,2027-01,"98,500.50",,210

* ``community``: a community's slug; ``month``: ``YYYY-MM`` in the Buddhist era (2570-01) or
  the Common era (2027-01);
* ``sales`` in baht (commas and two decimals allowed), ``bookings`` and ``visitors`` whole
  numbers; an empty cell is "not reported", never zero;
* one line per community and month.

Every line is checked before anything is written; any problem -- each named by file, line
and field -- and the whole file changes nothing (:class:`~marketing.problems.InvalidInput`).
A month already imported is replaced by the file's figures.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketing.models import Community, CommunityOutcome
from marketing.performance import summaries_changed
from marketing.problems import InvalidInput, Problem, control_character
from marketing.reference import csv_rows

COLUMNS = ("community", "month", "sales", "bookings", "visitors")
REQUIRED = ("community", "month")
MAX_BYTES = 2_000_000
MAX_ROWS = 50_000
MAX_SALES = Decimal("1000000000000")  # baht a month: anything above is a typing mistake
MAX_COUNT = 100_000_000
BUDDHIST_OFFSET = 543
MONTH = "write the month as YYYY-MM, e.g. 2570-01 (or 2027-01)"
_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


@dataclass
class OutcomeSummary:
    """What an import did."""

    file: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class _Row:
    line: int
    community_id: int
    month: date
    sales: Decimal | None
    bookings: int | None
    visitors: int | None


def parse_month(text: str) -> date:
    """``2570-01`` (Buddhist era) or ``2027-01`` -> 2027-01-01; ValueError otherwise."""
    found = _MONTH.match(text)
    if not found:
        raise ValueError(MONTH)
    year, month = int(found[1]), int(found[2])
    if year >= 2400:
        year -= BUDDHIST_OFFSET
    if not 2000 <= year <= 2100 or not 1 <= month <= 12:
        raise ValueError(MONTH)
    return date(year, month, 1)


AMOUNT = "is not an amount in baht of 0 or more with at most two decimals (e.g. 98,500.50)"
COUNT = "must be a whole number, 0 or more"


def _sales(text: str) -> Decimal:
    cleaned = text.strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(AMOUNT) from None
    if not value.is_finite() or value < 0 or value >= MAX_SALES:
        raise ValueError(AMOUNT)
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(AMOUNT)
    return value.quantize(Decimal("0.01"))


def _count(text: str) -> int:
    cleaned = text.strip().replace(",", "")
    if not cleaned.isdigit() or int(cleaned) > MAX_COUNT:
        raise ValueError(COUNT)
    return int(cleaned)


def read_outcomes(*, session: Session, text: str, file: str) -> list[_Row]:
    """Every line of outcomes CSV ``text`` checked against the communities; InvalidInput with
    every problem, each at its line and field."""
    problems: list[Problem] = []
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise InvalidInput(
            [Problem(file, None, None, "", f"is larger than {MAX_BYTES:,} bytes", "split it")]
        )
    header, lines = csv_rows(text, file)
    names = [h.strip().lower() for h in header]
    unknown = [h for h in names if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in names]
    if unknown or missing or len(set(names)) != len(names):
        found = ", ".join(names) or "-"
        raise InvalidInput(
            [
                Problem(
                    file,
                    1,
                    None,
                    "(header)",
                    "the columns are community, month, sales, bookings and visitors "
                    f"(community and month required); this header has {found}",
                    code="outcome_header",
                    values=(("found", found),),
                )
            ]
        )
    if len(lines) > MAX_ROWS:
        raise InvalidInput(
            [Problem(file, None, None, "", f"has more than {MAX_ROWS:,} lines", "split it")]
        )
    slugs = {slug: cid for slug, cid in session.execute(select(Community.slug, Community.id))}
    seen: dict[tuple[int, date], int] = {}
    rows: list[_Row] = []
    for line, cells in lines:
        if len(cells) > len(names):
            problems.append(
                Problem(file, line, len(names) + 1, "(row)", "more cells than the header")
            )
            continue
        values = dict(zip(names, (c.strip() for c in cells), strict=False))
        bad = False

        def problem(
            field: str,
            message: str,
            hint: str | None = None,
            *,
            code: str | None = None,
            pairs: tuple[tuple[str, str], ...] = (),
            at: int = line,
        ) -> None:
            nonlocal bad
            bad = True
            column = names.index(field) + 1 if field in names else None
            problems.append(Problem(file, at, column, field, message, hint, code, pairs))

        for field, value in values.items():
            if (char := control_character(value)) is not None:
                problem(field, f"contains a control character ({char})")
        if bad:
            continue
        community_id = None
        slug = values.get("community", "")
        if not slug:
            problem("community", "is required but missing", code="required")
        elif slug not in slugs:
            close = difflib.get_close_matches(slug, list(slugs), n=1)
            problem(
                "community",
                f"unknown community {slug!r}",
                f"did you mean {close[0]}?" if close else "see `marketing communities list`",
                code="unknown_community",
                pairs=(("slug", slug), ("close", close[0] if close else "")),
            )
        else:
            community_id = slugs[slug]
        month = None
        try:
            month = parse_month(values.get("month", ""))
        except ValueError as exc:
            problem("month", str(exc), code="outcome_month")
        parsed: dict[str, Decimal | int | None] = {}
        for field, reader in (("sales", _sales), ("bookings", _count), ("visitors", _count)):
            text_value = values.get(field, "")
            if not text_value:
                parsed[field] = None
                continue
            try:
                parsed[field] = reader(text_value)
            except ValueError as exc:
                problem(
                    field, str(exc), code="outcome_amount" if field == "sales" else "outcome_count"
                )
        if bad or community_id is None or month is None:
            continue
        if (community_id, month) in seen:
            first = str(seen[(community_id, month)])
            problem(
                "month",
                f"{slug} {month:%Y-%m} is already on line {first}",
                "keep one line per community and month",
                code="outcome_duplicate",
                pairs=(("slug", slug), ("month", f"{month:%Y-%m}"), ("line", first)),
            )
            continue
        seen[(community_id, month)] = line
        sales = parsed["sales"]
        bookings, visitors = parsed["bookings"], parsed["visitors"]
        assert sales is None or isinstance(sales, Decimal)
        assert bookings is None or isinstance(bookings, int)
        assert visitors is None or isinstance(visitors, int)
        rows.append(_Row(line, community_id, month, sales, bookings, visitors))
    if problems:
        raise InvalidInput(problems)
    return rows


def import_outcomes(*, session: Session, path: Path, actor: str, now: datetime) -> OutcomeSummary:
    """Import outcomes file ``path`` in the caller's transaction: every line or none."""
    file = str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InvalidInput(
                [Problem(file, None, None, "", f"is larger than {MAX_BYTES:,} bytes", "split it")]
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput([Problem(file, None, None, "", "file not found")]) from None
    except UnicodeDecodeError:
        raise InvalidInput(
            [Problem(file, None, None, "", "not UTF-8 text", "save the file as UTF-8")]
        ) from None
    return store_outcomes(
        session=session,
        rows=read_outcomes(session=session, text=text, file=file),
        file=file,
        actor=actor,
        now=now,
    )


def store_outcomes(
    *, session: Session, rows: Sequence[_Row], file: str, actor: str, now: datetime
) -> OutcomeSummary:
    """Write checked ``rows``: new months added, imported months replaced."""
    summary = OutcomeSummary(file=file)
    existing = {
        (o.community_id, o.month): o
        for o in session.scalars(
            select(CommunityOutcome).where(
                CommunityOutcome.community_id.in_({r.community_id for r in rows})
            )
        )
    }
    source = Path(file).name[:300]
    for row in rows:
        kept = existing.get((row.community_id, row.month))
        figures = (row.sales, row.bookings, row.visitors)
        if kept is None:
            session.add(
                CommunityOutcome(
                    community_id=row.community_id,
                    month=row.month,
                    sales=row.sales,
                    bookings=row.bookings,
                    visitors=row.visitors,
                    source=source,
                    imported_by=actor[:200],
                    imported_at=now,
                )
            )
            summary.added += 1
        elif (kept.sales, kept.bookings, kept.visitors) == figures:
            summary.unchanged += 1
        else:
            kept.sales, kept.bookings, kept.visitors = figures
            kept.source, kept.imported_by, kept.imported_at = source, actor[:200], now
            summary.updated += 1
    session.flush()
    if summary.added or summary.updated:
        # The yearly report kept by each web process is keyed on this counter (#19).
        summaries_changed(session=session)
    return summary


@dataclass(frozen=True)
class YearOutcome:
    """One community's outcomes over a year: sums of the months reported."""

    sales: Decimal | None
    bookings: int | None
    visitors: int | None
    months: int  # months with any figure


def year_outcomes(*, session: Session, year: int) -> dict[int, YearOutcome]:
    """Community id -> its outcomes in Common-era ``year`` (communities with none left out)."""
    months: dict[int, list[CommunityOutcome]] = {}
    for o in session.scalars(
        select(CommunityOutcome).where(
            CommunityOutcome.month >= date(year, 1, 1),
            CommunityOutcome.month < date(year + 1, 1, 1),
        )
    ):
        months.setdefault(o.community_id, []).append(o)

    def total(values: list[Decimal | None]) -> Decimal | None:
        given = [v for v in values if v is not None]
        return sum(given, Decimal(0)) if given else None

    def count(values: list[int | None]) -> int | None:
        given = [v for v in values if v is not None]
        return sum(given) if given else None

    return {
        cid: YearOutcome(
            sales=total([o.sales for o in rows]),
            bookings=count([o.bookings for o in rows]),
            visitors=count([o.visitors for o in rows]),
            months=len(rows),
        )
        for cid, rows in months.items()
    }
