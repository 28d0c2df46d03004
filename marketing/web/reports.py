"""Reports in the browser: the same reports as ``marketing report``, as the same self-contained
HTML documents, and downloadable as CSV (with a byte-order mark, so spreadsheets read Thai)
and HTML."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy import select

from marketing.cli.report import CSV_FILE_ENCODING
from marketing.conventions import SLUG_PATTERN
from marketing.models import Campaign, Community, User
from marketing.reports import (
    SORT_KEYS,
    ReportSubjectNotFound,
    campaign_report,
    community_report,
    programme_overview,
    resolve_period,
)
from marketing.reports.exports import Report, to_csv, to_json
from marketing.reports.html import render_html
from marketing.reports.period import Period
from marketing.web.deps import DB, Editor, Viewer, now_of, settings_of, today_of
from marketing.web.i18n import language_of
from marketing.web.rendering import environment, flash, gettext_for, parse_day_input, render
from marketing.web.report_cache import Document, DocumentCache, database_state, kept_ranks
from marketing.web.staff import audit

router = APIRouter(include_in_schema=False)

FORMAT = r"^(html|csv|json)$"
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
MAX_DAYS = 3660

# A day as typed into the form (dd/mm/yyyy in the reader's era) or ISO (links, scripts).
Day = Annotated[str | None, Query(max_length=40)]


def report_period(
    request: Request,
    start: date | str | None,
    end: date | str | None,
    days: int,
    *,
    user: User | None = None,
) -> Period:
    """The period asked for (default: the last ``days`` days); 400 if it is not one.  Days
    given as text were typed by ``user`` (``dd/mm/yyyy`` in their era, or ISO)."""
    if isinstance(start, str):
        start = parse_day_input(request, user, start) if start else None
    if isinstance(end, str):
        end = parse_day_input(request, user, end) if end else None
    try:
        period = resolve_period(
            start=start,
            end=end,
            zone=settings_of(request).zone,
            days=days,
            today=today_of(request),
        )
    except ValidationError as exc:
        raise HTTPException(400, "the period ends before it starts") from exc
    if period.days > MAX_DAYS or period.start < EARLIEST or period.end > LATEST:
        raise HTTPException(400, f"a period covers at most {MAX_DAYS} days within 2000-2100")
    return period


def document(request: Request, report: Report, *, format_: str, user: User) -> Document:
    """``report`` as an HTML document, CSV or JSON, in ``user``'s language and era."""
    if format_ == "csv":
        return Document(to_csv(report).encode(CSV_FILE_ENCODING), "text/csv; charset=utf-8")
    if format_ == "json":
        return Document(to_json(report).encode(), "application/json")
    html = render_html(
        report,
        language=language_of(user.language),
        buddhist_era=user.buddhist_era,
        zone=settings_of(request).zone,
    )
    return Document(html.encode(), "text/html; charset=utf-8")


def respond(found: Document, *, format_: str, name: str, download: bool) -> Response:
    """``found`` as the answer: CSV always as a download, HTML when ``download``."""
    headers = {}
    if format_ == "csv" or (format_ == "html" and download):
        headers = {"Content-Disposition": f'attachment; filename="{name}.{format_}"'}
    return Response(found.body, media_type=found.media_type, headers=headers)


def deliver(
    request: Request,
    report: Report,
    *,
    format_: str,
    name: str,
    user: User,
    download: bool,
) -> Response:
    """``report`` as an HTML document, CSV or JSON."""
    found = document(request, report, format_=format_, user=user)
    return respond(found, format_=format_, name=name, download=download)


@router.get("/reports")
def reports_page(
    request: Request,
    user: Viewer,
    session: DB,
) -> Response:
    period = report_period(request, None, None, 28, user=user)
    return render(
        request,
        "reports.html",
        user=user,
        period=period,
        sorts=list(SORT_KEYS),
        communities=session.execute(
            select(Community.slug, Community.name_th).order_by(Community.name_th)
        ).all(),
        campaigns=session.execute(
            select(Campaign.slug, Campaign.name).order_by(Campaign.window_start.desc())
        ).all(),
        year=today_of(request).year,
    )


@router.get("/reports/year/{year}")
def year_report(
    request: Request,
    user: Viewer,
    session: DB,
    year: Annotated[int, Path(ge=2000, le=2700)],
    format_: Annotated[str, Query(alias="format", pattern=r"^(html|csv)$")] = "html",
) -> Response:
    """One year of the programme: each community's outcomes (sales, bookings, visitors, as
    staff imported them) and its click-throughs to its shop, booking and product pages,
    beside its engagement on the owned channels; as a page or CSV (``?format=csv``).  The
    year is written in either era (2570 or 2027)."""
    from marketing.destinations import clicks_by_community
    from marketing.outcomes import BUDDHIST_OFFSET, year_outcomes

    if year >= 2400:
        year -= BUDDHIST_OFFSET
    if not EARLIEST.year <= year <= LATEST.year:
        raise HTTPException(404, "no such year")
    start, end = date(year, 1, 1), date(year, 12, 31)

    def build() -> dict[str, Any]:
        overview = programme_overview(session=session, start=start, end=end, sort="posts")
        ids = {slug: cid for slug, cid in session.execute(select(Community.slug, Community.id))}
        outcomes = year_outcomes(session=session, year=year)
        rows = sorted(
            overview.rows,
            key=lambda r: (r.community.province, r.community.name_th, r.community.slug),
        )
        return {
            "rows": [(row, outcomes.get(ids[row.community.slug])) for row in rows],
            "ids": [ids[row.community.slug] for row in rows],
            "total": overview.programme[-1].current,
            "totals": _outcome_totals(list(outcomes.values())),
        }

    # The figures are kept until the next rollup or outcomes import (both raise the
    # summaries' generation) or a community's name changes (#19).  Clicks change with every
    # person's click, not with a rollup: they are read each time (one grouped sum over the
    # year's counters) and joined to the kept figures; the table (some 700 KB of HTML at
    # 1,000 communities) is kept per figures, clicks and language.  The page itself is
    # rendered for each reader.
    cache: DocumentCache = request.app.state.report_cache
    state = database_state(session)
    language = language_of(user.language)
    clicks = clicks_by_community(session=session, start=start, end=end)
    figures = cache.value(("year", state, year), build, lambda f: 2000 * len(f["rows"]))
    lines = [
        (row, outcome, clicks.get(cid, 0))
        for (row, outcome), cid in zip(figures["rows"], figures["ids"], strict=True)
    ]
    if format_ == "csv":
        return Response(
            _year_csv(year, lines).encode(CSV_FILE_ENCODING),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="programme-{year}.csv"'},
        )

    def table() -> Markup:
        html = (
            environment(language)
            .get_template("year_report_table.html")
            .render(
                rows=lines,
                total=figures["total"],
                totals=figures["totals"],
                total_clicks=sum(clicks.values()),
            )
        )
        return Markup(html)

    clicks_key = tuple(sorted(clicks.items()))
    kept = cache.value(("year-table", state, year, clicks_key, language), table, len)
    return render(request, "year_report.html", user=user, year=year, table=kept)


YEAR_COLUMNS = (
    "community",
    "name_th",
    "province",
    "year",
    "posts",
    "reach",
    "interactions",
    "engagement_rate",
    "destination_clicks",
    "sales",
    "bookings",
    "visitors",
    "months_reported",
)


def _year_csv(year: int, lines: list[tuple[Any, Any, int]]) -> str:
    """The yearly report as CSV: one line a community; an outcome not reported is empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(YEAR_COLUMNS)

    def given(value: Any) -> str:
        return "" if value is None else str(value)

    for row, outcome, clicks in lines:
        m = row.total.current
        writer.writerow(
            [
                row.community.slug,
                row.community.name_th,
                row.community.province,
                year,
                m.posts,
                m.reach,
                m.interactions,
                f"{m.engagement_rate:.6f}",
                clicks,
                given(outcome.sales if outcome else None),
                given(outcome.bookings if outcome else None),
                given(outcome.visitors if outcome else None),
                outcome.months if outcome else 0,
            ]
        )
    return out.getvalue()


@router.post("/reports/year/{year}/outcomes")
def outcomes_import(
    request: Request,
    user: Editor,
    session: DB,
    year: Annotated[int, Path(ge=2000, le=2700)],
    file: UploadFile,
) -> Response:
    """Import an outcomes CSV (every line or none); back to the year's report."""
    from marketing.outcomes import BUDDHIST_OFFSET, MAX_BYTES, read_outcomes, store_outcomes
    from marketing.problems import InvalidInput, Problem

    ce_year = year - BUDDHIST_OFFSET if year >= 2400 else year
    name = (file.filename or "outcomes.csv")[:200]
    data = file.file.read(MAX_BYTES + 1)
    _ = gettext_for(user)
    try:
        if len(data) > MAX_BYTES:
            raise InvalidInput(
                [Problem(name, None, None, "", f"is larger than {MAX_BYTES:,} bytes")]
            )
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput([Problem(name, None, None, "", "not UTF-8 text")]) from None
        rows = read_outcomes(session=session, text=text, file=name)
    except InvalidInput as exc:
        return render(
            request,
            "outcome_problems.html",
            user=user,
            problems=exc.problems,
            name=name,
            year=ce_year,
            status_code=422,
        )
    summary = store_outcomes(
        session=session, rows=rows, file=name, actor=user.username, now=now_of(request)
    )
    audit(
        session=session,
        user=user,
        action="outcomes.import",
        object_type="outcomes",
        object_id=name,
        rows=len(rows),
    )
    session.commit()
    flash(
        request,
        _("%(added)s months added, %(updated)s replaced, %(unchanged)s already as imported.")
        % {"added": summary.added, "updated": summary.updated, "unchanged": summary.unchanged},
    )
    return RedirectResponse(f"/reports/year/{year}", status_code=303)


def _outcome_totals(values: list[Any]) -> dict[str, Any]:
    def add(name: str) -> Any:
        given = [getattr(v, name) for v in values if getattr(v, name) is not None]
        return sum(given) if given else None

    return {name: add(name) for name in ("sales", "bookings", "visitors")}


@router.get("/reports/overview")
def overview_report(
    request: Request,
    user: Viewer,
    session: DB,
    start: Annotated[Day, Query(alias="from")] = None,
    end: Annotated[Day, Query(alias="to")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 28,
    sort: Annotated[str, Query(pattern="^(" + "|".join(SORT_KEYS) + ")$")] = "rate",
    reverse: bool = False,
    format_: Annotated[str, Query(alias="format", pattern=FORMAT)] = "html",
    download: bool = False,
) -> Response:
    period = report_period(request, start, end, days, user=user)

    def build() -> Document:
        report = programme_overview(
            session=session, start=period.start, end=period.end, sort=sort, reverse=reverse
        )
        return document(request, report, format_=format_, user=user)

    # Kept until the next rollup (or a community's name changes): the page is the one whose
    # cost grows with the programme (#19).
    cache: DocumentCache = request.app.state.report_cache
    key = (
        "overview",
        database_state(session),
        period.start,
        period.end,
        sort,
        reverse,
        format_,
        language_of(user.language),
        user.buddhist_era,
        str(settings_of(request).zone),
    )
    found = cache.get_or_build(key, build)
    name = f"overview-{period.start}_{period.end}"
    return respond(found, format_=format_, name=name, download=download)


@router.get("/reports/community/{slug}")
def community_report_page(
    request: Request,
    user: Viewer,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
    start: Annotated[Day, Query(alias="from")] = None,
    end: Annotated[Day, Query(alias="to")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 28,
    format_: Annotated[str, Query(alias="format", pattern=FORMAT)] = "html",
    download: bool = False,
) -> Response:
    period = report_period(request, start, end, days, user=user)
    try:
        report = community_report(
            session=session,
            community_slug=slug,
            start=period.start,
            end=period.end,
            ranks=kept_ranks(request.app.state.report_cache, session),
        )
    except ReportSubjectNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    name = f"community-{slug}-{period.start}_{period.end}"
    return deliver(request, report, format_=format_, name=name, user=user, download=download)


@router.get("/reports/campaign/{slug}")
def campaign_report_page(
    request: Request,
    user: Viewer,
    session: DB,
    slug: Annotated[str, Path(pattern=SLUG_PATTERN)],
    format_: Annotated[str, Query(alias="format", pattern=FORMAT)] = "html",
    download: bool = False,
) -> Response:
    try:
        report = campaign_report(session=session, campaign_slug=slug)
    except ReportSubjectNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    name = f"campaign-{slug}"
    return deliver(request, report, format_=format_, name=name, user=user, download=download)
