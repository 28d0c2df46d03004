"""``marketing report``: engagement per community, the programme overview, and per campaign."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console

from marketing.cli import display
from marketing.cli.base import console, friendly_errors, needs_schema
from marketing.db import session_scope
from marketing.reports import (
    SORT_KEYS,
    ReportSubjectNotFound,
    campaign_report,
    community_report,
    programme_overview,
    resolve_period,
)
from marketing.reports.exports import Report, to_csv, to_json
from marketing.reports.period import DEFAULT_DAYS, Period, parse_day
from marketing.reports.terminal import renderables
from marketing.settings import get_settings

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "csv", "json", "html")
# Spreadsheet programs (Excel above all) read a CSV file as UTF-8 only when it starts with a
# byte-order mark; without it Thai turns into mojibake.  Standard output gets no mark.
CSV_FILE_ENCODING = "utf-8-sig"


class Day(click.ParamType):  # type: ignore[type-arg]
    """A day as ``YYYY-MM-DD`` or ``DD/MM/YYYY``; a Buddhist-era year (2569) is read as such."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return parse_day(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ReportNotFound(click.ClickException):
    exit_code = 2


def period_options(func: F) -> F:
    """--from, --to and --days."""
    func = click.option(
        "--days",
        type=click.IntRange(min=1, max=3660),
        default=DEFAULT_DAYS,
        show_default=True,
        help="Length of the period when --from or --to is missing.",
    )(func)
    func = click.option(
        "--to",
        "end",
        type=Day(),
        help="Last day (included), e.g. 28/11/2569 or 2026-11-28; default: today in Asia/Bangkok.",
    )(func)
    func = click.option(
        "--from", "start", type=Day(), help="First day (included), e.g. 01/11/2569."
    )(func)
    return func


def output_options(func: F) -> F:
    """--format and --output (and the old --buddhist-era, now ``marketing --era be``)."""
    func = click.option("--buddhist-era", is_flag=True, hidden=True)(func)
    func = click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write to this file (html default: <data folder>/reports/...).",
    )(func)
    func = click.option(
        "--format",
        "format_",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table (terminal) or html (one self-contained file), in the language and era "
        "chosen (marketing --lang/--era); csv or json for programs (ISO dates, English keys).",
    )(func)
    return func


def _period(start: date | None, end: date | None, days: int) -> Period:
    try:
        return resolve_period(start=start, end=end, zone=get_settings().zone, days=days)
    except ValidationError as exc:
        message = "; ".join(
            str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()
        )
        raise click.BadParameter(message, param_hint="--from/--to") from None


def _emit(
    report: Report, *, format_: str, output: Path | None, buddhist_era: bool, html_name: str
) -> None:
    settings = get_settings()
    d = display.current()
    buddhist_era = buddhist_era or d.buddhist_era
    if format_ == "table":
        width = 200 if output is not None else console.width
        rendered = renderables(
            report,
            buddhist_era=buddhist_era,
            zone=settings.zone,
            language=d.language,
            gettext=d._,
            width=width,
        )
        if output is None:
            console.print(rendered)
            return
        buffer = io.StringIO()
        Console(file=buffer, width=width, no_color=True, highlight=False).print(rendered)
        _write(output, buffer.getvalue(), "utf-8")
    elif format_ == "csv":
        body = to_csv(report)
        if output is None:
            click.echo(body, nl=False)
            return
        _write(output, body, CSV_FILE_ENCODING)
    elif format_ == "json":
        body = to_json(report)
        if output is None:
            click.echo(body, nl=False)
            return
        _write(output, body, "utf-8")
    else:
        from marketing.reports.html import render_html  # jinja2: only for this format

        html = render_html(report, buddhist_era=buddhist_era, zone=settings.zone)
        output = output or settings.data_dir / "reports" / html_name
        _write(output, html, "utf-8")


def _write(path: Path, body: str, encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding=encoding)
    console.print(f"[green]Wrote[/] {path}", highlight=False)


@click.group()
def report() -> None:
    """Engagement reports: per community, the programme overview, and per campaign.

    Periods are whole local days (Asia/Bangkok); the default is the last 28 days up to
    today. Every report compares with the period of the same length just before.
    """


@report.command("community")
@click.argument("slug")
@period_options
@output_options
@friendly_errors
@needs_schema
def community(
    slug: str,
    start: date | None,
    end: date | None,
    days: int,
    format_: str,
    output: Path | None,
    buddhist_era: bool,
) -> None:
    """One community: channels, change, rank in the programme and best posts."""
    period = _period(start, end, days)
    with session_scope() as session:
        try:
            result = community_report(
                session=session, community_slug=slug, start=period.start, end=period.end
            )
        except ReportSubjectNotFound as exc:
            raise ReportNotFound(str(exc)) from None
    _emit(
        result,
        format_=format_,
        output=output,
        buddhist_era=buddhist_era,
        html_name=f"community-{slug}-{period.start}_{period.end}.html",
    )


@report.command("overview")
@period_options
@click.option(
    "--sort",
    type=click.Choice(list(SORT_KEYS)),
    default="rate",
    show_default=True,
    help="Order of communities: " + "; ".join(f"{k}: {v[0]}" for k, v in SORT_KEYS.items()),
)
@click.option("--reverse", is_flag=True, help="Turn the sort order round.")
@output_options
@friendly_errors
@needs_schema
def overview(
    start: date | None,
    end: date | None,
    days: int,
    sort: str,
    reverse: bool,
    format_: str,
    output: Path | None,
    buddhist_era: bool,
) -> None:
    """Every community side by side, per channel and in total, with growth."""
    period = _period(start, end, days)
    with session_scope() as session:
        result = programme_overview(
            session=session, start=period.start, end=period.end, sort=sort, reverse=reverse
        )
    _emit(
        result,
        format_=format_,
        output=output,
        buddhist_era=buddhist_era,
        html_name=f"overview-{period.start}_{period.end}.html",
    )


@report.command("campaign")
@click.argument("slug")
@output_options
@friendly_errors
@needs_schema
def campaign(slug: str, format_: str, output: Path | None, buddhist_era: bool) -> None:
    """One campaign: what was published where, what needs a person, what it achieved."""
    with session_scope() as session:
        try:
            result = campaign_report(session=session, campaign_slug=slug)
        except ReportSubjectNotFound as exc:
            raise ReportNotFound(str(exc)) from None
    _emit(
        result,
        format_=format_,
        output=output,
        buddhist_era=buddhist_era,
        html_name=f"campaign-{slug}.html",
    )
