"""``marketing report``: engagement per community, the programme overview, per campaign, and
best times to post."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
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

        html = render_html(
            report, language=d.language, buddhist_era=buddhist_era, zone=settings.zone
        )
        output = output or settings.data_dir / "reports" / html_name
        _write(output, html, "utf-8")


def _write(path: Path, body: str, encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding=encoding)
    console.print(f"[green]Wrote[/] {path}", highlight=False)


@click.group()
def report() -> None:
    """Engagement reports: per community, the programme overview, per campaign, and best times.

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


class Moment(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 moment with its offset, e.g. ``2027-06-30T19:00+07:00``."""

    name = "MOMENT"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 moment", param, ctx)
        if moment.tzinfo is None:
            self.fail(f"{value!r} has no offset (add +07:00 or Z)", param, ctx)
        return moment.astimezone(UTC)


#: The channels best times are learnt for (marketing.besttimes.best_times_channels: those whose
#: spec can publish and report metrics), written out so the command starts without loading
#: the channels; tests/test_best_times_line.py checks the two agree.
BEST_TIME_CHANNELS = ("facebook", "youtube", "line")


@report.command("best-times")
@click.argument("slug", required=False)
@click.option(
    "--channel",
    type=click.Choice(BEST_TIME_CHANNELS),
    default="facebook",
    show_default=True,
    help="The channel whose posts are learnt from.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table (terminal, in the language chosen with marketing --lang) or json (English keys).",
)
@click.option("--now", type=Moment(), hidden=True, help="Learn as if it were this moment.")
@friendly_errors
@needs_schema
def best_times_command(slug: str | None, channel: str, format_: str, now: datetime | None) -> None:
    """When each community's posts do best: the recommended two-hour block of the week with
    its confidence; for one community (SLUG) the whole week as a grid."""
    from marketing.besttimes_view import CommunityNotFound, as_json, community_times
    from marketing.db import utcnow
    from marketing.models import ChannelKind

    moment = now or utcnow()
    with session_scope() as session:
        try:
            items = community_times(
                session=session, channel=ChannelKind(channel), now=moment, slug=slug
            )
        except CommunityNotFound as exc:
            raise ReportNotFound(str(exc)) from None
    if format_ == "json":
        body = {
            "channel": channel,
            "now": moment.isoformat(),
            "communities": [as_json(item) for item in items],
        }
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    d = display.current()
    channel_name = display.channel_word(channel)
    if slug is None:
        from marketing.besttimes_view import sentence

        console.print(
            display.listing(
                console,
                title=d._("Best times on {channel}").format(channel=channel_name),
                headings=[d._("community"), d._("posts"), d._("best time")],
                rows=[
                    [
                        item.slug,
                        str(item.times.posts if item.times else 0),
                        sentence(item, language=d.language),
                    ]
                    for item in items
                ],
                keys=(0,),
                numeric=(1,),
            )
        )
        return
    console.print(_best_times_of_one(items[0], channel_name=channel_name))


def _best_times_of_one(item: Any, *, channel_name: str) -> Any:
    """One community's sentence, figures, and its week as a grid of % against its average."""
    from rich.console import Group
    from rich.text import Text

    from marketing.besttimes_view import grid, sentence, start_hours
    from marketing.reports.labels import percent
    from marketing.thai import WEEKDAYS_SHORT
    from marketing.web.i18n import ENGLISH_WEEKDAYS

    d = display.current()
    name = item.name_en if d.en else item.name_th
    title = d._("{name} ({slug}): best times on {channel}").format(
        name=name, slug=item.slug, channel=channel_name
    )
    parts: list[Any] = [
        Text(title, style="bold"),
        Text(sentence(item, language=d.language)),
    ]
    times = item.times
    if times is None:
        return Group(*parts)
    if item.from_programme:
        figures = d._(
            "The programme's pattern (average {rate}): this community has no post of its own "
            "to learn from yet."
        ).format(rate=percent(times.average, digits=1))
    else:
        figures = d._(
            "Average engagement rate {rate} from {posts} posts; {young} too young to compare."
        ).format(rate=percent(times.average, digits=1), posts=times.posts, young=times.left_out)
    parts.append(Text(figures, style="dim"))
    days = WEEKDAYS_SHORT if d.language == "th" else ENGLISH_WEEKDAYS
    styles = ("red", "yellow", "", "green", "bold green")
    rows = grid(times)
    # 4 cells for the day, 5 per block: 64 in all; narrower terminals get two halves.
    halves = [range(12)] if console.width >= 64 else [range(6), range(6, 12)]
    hours = start_hours()
    lines: list[Any] = [Text("")]
    for columns in halves:
        header = Text("    ")
        for col in columns:
            header.append(f"{hours[col]:02d}".rjust(4) + " ")
        lines.append(header)
        for day, row in enumerate(rows):
            label = days[day]
            line = Text(label + " " * max(1, 4 - Text(label).cell_len))
            for col in columns:
                cell = row[col]
                value = max(-999, min(999, round((cell.relative - 1) * 100)))
                mark = "*" if cell.recommended else ("·" if cell.estimate.posts == 0 else " ")
                style = "reverse bold" if cell.recommended else styles[cell.level]
                line.append(f"{value:>+4}", style=style)
                line.append(mark)
            lines.append(line)
    lines.append(
        Text(
            d._(
                "Each number: the block's rate in % above (+) or below (-) the community's "
                "average; columns start at the hour shown. * recommended; · no post of its own "
                "there yet (the programme's pattern)."
            ),
            style="dim",
        )
    )
    return Group(*parts, *lines)
