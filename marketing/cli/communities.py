"""``marketing communities``: import and list reference data."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from sqlalchemy import func, select

from marketing.cli import display
from marketing.cli.base import console, friendly_errors, needs_schema
from marketing.cli.display import N_, channel_word, state_word
from marketing.db import session_scope
from marketing.models import ChannelAccount, Community, Highlight, Subscriber
from marketing.settings import get_settings

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "communities.yaml"


@click.group()
def communities() -> None:
    """Communities, their channel accounts, subscribers and highlights."""


@communities.command("import")
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option(
    "--sample",
    is_flag=True,
    help="Import the shipped sample of ten communities (its pictures go to <media folder>/sample).",
)
@friendly_errors
@needs_schema
def import_(file: Path | None, sample: bool) -> None:
    """Import FILE (YAML or CSV). Idempotent; all-or-nothing on any problem."""
    from marketing.media import install_media
    from marketing.reference import import_reference  # YAML, e-mail validation: only here

    if sample == (file is not None):
        raise click.UsageError("give a FILE or --sample (not both)")
    path = SAMPLE if sample else file
    assert path is not None
    if sample:
        root = get_settings().media_root
        install_media(SAMPLE.parent / "media", root=root, folder="sample")
    with session_scope() as session:
        summary = import_reference(session=session, path=path)
    if not summary.changed:
        console.print(f"[green]Nothing changed:[/] {path} is already imported.")
        return
    table = Table(title=f"Imported {path.name}")
    for column in ("", "created", "updated", "unchanged"):
        table.add_column(column, justify="right" if column else "left")
    for kind, counts in summary.counts.items():
        table.add_row(
            kind, str(counts["created"]), str(counts["updated"]), str(counts["unchanged"])
        )
    console.print(table)


@communities.command("list")
@friendly_errors
@needs_schema
def list_() -> None:
    """List communities with their accounts and subscriber counts."""
    with session_scope() as session:
        subs = dict(
            session.execute(
                select(Subscriber.community_id, func.count())
                .where(Subscriber.unsubscribed_at.is_(None))
                .group_by(Subscriber.community_id)
            ).all()
        )
        highlights = dict(
            session.execute(
                select(Highlight.community_id, func.count()).group_by(Highlight.community_id)
            ).all()
        )
        accounts: dict[int | None, list[str]] = {}
        for account in session.scalars(select(ChannelAccount).order_by(ChannelAccount.slug)):
            accounts.setdefault(account.community_id, []).append(
                channel_word(account.kind.value)
                + ("" if account.health == "ok" else f" ({state_word(account.health.value)})")
            )
        d = display.current()
        shown = [
            (
                c.slug,
                c.name_th,
                c.province,
                ", ".join(accounts.get(c.id, [])),
                str(subs.get(c.id, 0)),
                str(highlights.get(c.id, 0)),
            )
            for c in session.scalars(select(Community).order_by(Community.slug))
        ]
    headings = (
        N_("slug"),
        N_("name"),
        N_("province"),
        N_("channels"),
        N_("subscribers"),
        N_("highlights"),
    )
    console.print(
        display.listing(
            console,
            title=d._("Communities"),
            headings=[d._(h) for h in headings],
            rows=shown,
            numeric=(4, 5),
        )
    )


@communities.command("outcomes")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--by", "actor", default=None, help="Who imports it (default: your user name).")
@friendly_errors
@needs_schema
def outcomes(file: Path, actor: str | None) -> None:
    """Import FILE, a CSV of monthly outcomes per community (community, month, sales,
    bookings, visitors); all-or-nothing on any problem (docs/outcomes.md)."""
    import getpass
    from datetime import UTC, datetime

    from marketing.outcomes import import_outcomes

    with session_scope() as session:
        summary = import_outcomes(
            session=session,
            path=file,
            actor=actor or getpass.getuser(),
            now=datetime.now(UTC),
        )
    d = display.current()
    console.print(
        "[green]✓[/] "
        + d._(
            "{file}: {added} months added, {updated} replaced, {unchanged} already as imported."
        ).format(
            file=file.name,
            added=summary.added,
            updated=summary.updated,
            unchanged=summary.unchanged,
        ),
        highlight=False,
    )


@communities.command("creator-add")
@click.argument("slug")
@click.argument("url")
@click.option("--by", "actor", default=None, help="Who adds it (default: your user name).")
@friendly_errors
@needs_schema
def creator_add(slug: str, url: str, actor: str | None) -> None:
    """Add a creator's YouTube video (its URL) to community SLUG; its public statistics
    are read by `marketing communities creators-refresh` (docs/creators.md)."""
    import getpass
    from datetime import UTC, datetime

    from marketing.creators import CreatorRefused, add_creator_video

    d = display.current()
    try:
        with session_scope() as session:
            video = add_creator_video(
                session=session,
                community_slug=slug,
                url=url,
                actor=actor or getpass.getuser(),
                now=datetime.now(UTC),
            )
            video_id = video.video_id
    except CreatorRefused as exc:
        words = {
            "unknown_community": d._("There is no community {slug}."),
            "not_a_video": d._(
                "That is not a YouTube video address (youtube.com/watch?v=..., youtu.be/...)."
            ),
            "too_many": d._("The community already has the most creator videos it may hold."),
        }
        raise click.ClickException(words[exc.code].format(slug=slug)) from None
    console.print(
        "[green]✓[/] " + d._("Video {id} added to {slug}.").format(id=video_id, slug=slug),
        highlight=False,
    )


@communities.command("creators-refresh")
@friendly_errors
@needs_schema
def creators_refresh() -> None:
    """Read the public statistics of every creator video with MARKETING_YOUTUBE_API_KEY."""
    from datetime import UTC, datetime

    from marketing.creators import refresh_creator_videos

    settings = get_settings()
    d = display.current()
    if settings.youtube_api_key is None:
        raise click.ClickException(d._("Set MARKETING_YOUTUBE_API_KEY first."))
    with session_scope() as session:
        done = refresh_creator_videos(
            session=session,
            api_key=settings.youtube_api_key,
            root_url=settings.youtube_root_url,
            now=datetime.now(UTC),
        )
    console.print(
        "[green]✓[/] "
        + d._("{videos} videos read in {calls} calls; {missing} private or removed.").format(
            videos=done.videos, calls=done.calls, missing=done.missing
        ),
        highlight=False,
    )
