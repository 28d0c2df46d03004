"""``marketing subscribers``: answer a person's PDPA request -- what is held about them
(``export``) and erasing it (``erase``); see :mod:`marketing.privacy`."""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import click

from marketing.cli.base import console, err_console, friendly_errors, needs_schema


def _nobody(address: str) -> None:
    err_console.print(f"No subscriber has the address {address!r}.", highlight=False)
    sys.exit(1)


@click.group()
def subscribers() -> None:
    """Requests from subscribers under the PDPA: export or erase what is held about them."""


@subscribers.command("export")
@click.argument("address")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON here (private to you) instead of standard output.",
)
@friendly_errors
@needs_schema
def export(address: str, output: Path | None) -> None:
    """Everything held about the person with e-mail ADDRESS, as JSON."""
    from marketing.db import session_scope
    from marketing.privacy import NobodyFound, export_subscriber

    try:
        with session_scope() as session:
            data = export_subscriber(session=session, address=address)
    except NobodyFound:
        _nobody(address)
        return
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output is None:
        click.echo(text)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    console.print(
        f"Wrote {len(data['subscribers'])} subscriber row(s), {len(data['deliveries'])} "
        f"deliveries and {len(data['email_events'])} e-mail events to {output}.",
        highlight=False,
    )


@subscribers.command("erase")
@click.argument("address")
@click.option("--reason", required=True, help="Why (e.g. the request's reference).")
@click.option("--by", "actor", default=None, help="Who handles the request (default: you).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly_errors
@needs_schema
def erase(address: str, reason: str, actor: str | None, yes: bool) -> None:
    """Erase the person with e-mail ADDRESS from every row; the totals stay as they were.

    Backups made before still hold them: see docs/operations.md.
    """
    from marketing.db import get_engine, session_scope
    from marketing.privacy import NobodyFound, erase_subscriber, note_erasure, wipe_free_space
    from marketing.settings import get_settings

    if not yes:
        click.confirm(f"Erase {address} for good?", abort=True)
    try:
        with session_scope() as session:
            counts = erase_subscriber(
                session=session, address=address, reason=reason, actor=actor or getpass.getuser()
            )
    except NobodyFound:
        _nobody(address)
        return
    note_erasure(path=get_settings().erasure_list, address=address)
    wipe_free_space(get_engine())
    console.print(
        f"Erased: {counts['subscribers']} subscriber row(s); {counts['deliveries']} deliveries "
        f"and {counts['email_events']} e-mail events kept without anything naming them; "
        f"{counts['entries_scrubbed']} log entries scrubbed. Recorded in the audit log.",
        highlight=False,
    )


@subscribers.command("purge-events")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    default=None,
    help="Days (default: MARKETING_TRACKING_RETENTION_DAYS).",
)
@friendly_errors
@needs_schema
def purge_events(days: int | None) -> None:
    """Count old e-mail opens and clicks into the daily totals and delete them (the
    housekeeping task does this every six hours)."""
    from marketing.db import get_engine
    from marketing.privacy import purge_tracking_events
    from marketing.settings import get_settings

    days = days or get_settings().tracking_retention_days
    deleted = purge_tracking_events(engine=get_engine(), older_than=timedelta(days=days))
    console.print(f"Deleted {deleted} e-mail event(s) older than {days} days; totals kept.")


@subscribers.command("reapply-erasures")
@friendly_errors
@needs_schema
def reapply_erasures() -> None:
    """Erase again everyone on the erasure list (after restoring an older backup;
    `marketing restore` does it by itself when the schema is current)."""
    from marketing.cli.backup import apply_erasure_list

    apply_erasure_list()
    console.print("Erasure list applied.")
