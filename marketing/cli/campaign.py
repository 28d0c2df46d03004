"""``marketing campaign``: validate, plan and apply campaign files; approve, pause, resume,
cancel, list and show campaigns.  The format is in docs/campaigns.md."""

from __future__ import annotations

import functools
import getpass
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import click
from rich.markup import escape

from marketing.cli import display
from marketing.cli.base import console, err_console, friendly_errors, needs_schema, print_problems
from marketing.cli.display import N_, channel_word, state_word

if TYPE_CHECKING:
    from rich.console import RenderableType
    from sqlalchemy.orm import Session

    from campaigns.planning import Plan
    from marketing.problems import InvalidInput

# The campaign engine (templates, channels' limits, the database) is imported inside each
# command, so that `marketing --help` and the other commands start without it.

F = TypeVar("F", bound=Callable[..., Any])


def _state_errors(func: F) -> F:
    """A refused status change: its reason and what to do, exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from campaigns import CampaignStateError

        try:
            return func(*args, **kwargs)
        except CampaignStateError as exc:
            d = display.current()
            label = d._("Refused:")
            err_console.print(f"[bold red]{label}[/] ", end="")
            err_console.print(exc.message, markup=False, highlight=False, soft_wrap=True)
            if exc.hint:
                err_console.print(f"  {exc.hint}", highlight=False)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


CAMPAIGN_STATUSES = {
    "draft": N_("draft (awaiting approval)"),
    "approved": N_("approved"),
    "paused": N_("paused"),
    "cancelled": N_("cancelled"),
    "completed": N_("completed"),
}


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _local(moment: datetime | None, zone: str) -> str:
    """``moment`` in ``zone`` to the minute, in the chosen language and era."""
    if moment is None:
        return "-"
    local = moment.astimezone(ZoneInfo(zone))
    return f"{display.current().clock.day(local.date())} {local:%H:%M}"


def _print_problems(error: InvalidInput) -> None:
    print_problems(error.problems, display.current()._("{count} problem(s):"))


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        label = display.current()._("note:")
        console.print(f"  [yellow]{label}[/] {note}", highlight=False)


@click.group()
def campaign() -> None:
    """Campaign files and the campaigns applied from them (format: docs/campaigns.md)."""


@campaign.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@friendly_errors
@needs_schema
def validate(files: tuple[Path, ...]) -> None:
    """Check FILES against the schema, the reference data and every channel's limits,
    rendering every post; list every problem with its file, line and field."""
    from campaigns import plan_file
    from marketing.besttimes import schedule_snapshot
    from marketing.db import session_scope
    from marketing.problems import InvalidInput

    failed = 0
    now = datetime.now(UTC)
    with session_scope() as session:
        for path in files:
            try:
                plan = plan_file(
                    session=session,
                    path=path,
                    now=now,
                    best_times=lambda: schedule_snapshot(session=session, now=now),
                )
            except InvalidInput as exc:
                failed += 1
                err_console.print(f"[bold red]✗ {path}[/]", highlight=False)
                _print_problems(exc)
                continue
            said = display.current()._("{path}: {posts} posts for {communities} communities")
            console.print(
                "[green]✓[/] "
                + escape(
                    said.format(
                        path=path,
                        posts=f"{len(plan.posts):,}",
                        communities=len(plan.communities),
                    )
                ),
                highlight=False,
            )
            _print_notes(plan.notes)
    if failed:
        said = display.current()._("{failed} of {total} file(s) have problems.")
        err_console.print(f"[bold red]{said.format(failed=failed, total=len(files))}[/]")
        sys.exit(2)


def _print_content(content: Mapping[str, Any]) -> None:
    """A post's content as a reader sees it: merge fields as labels such as [ชื่อผู้รับ]."""
    from marketing.placeholders import readable_content

    for key, value in readable_content(content).items():
        console.print(f"[bold]{key}:[/]", end=" ")
        console.print(str(value), markup=False, highlight=False, soft_wrap=True)


# What applying a file would do to each post (``post_changes``'s outcome), as msgids.
OUTCOMES = {"new": N_("new"), "update": N_("update"), "same": N_("same")}


def _plan_table(plan: Plan, outcome: dict[str, str], limit: int) -> RenderableType:
    d = display.current()
    zone = plan.definition.timezone
    posts = sorted(plan.posts, key=lambda p: (p.scheduled_at, p.community_slug, p.channel))
    rows = []
    for post in posts[:limit] if limit else posts:
        change = outcome.get(post.idempotency_key, "new")
        rows.append(
            [
                _local(post.scheduled_at, zone),
                post.community_slug,
                channel_word(post.channel),
                post.account_slug,
                post.occurrence_key,
                d._(OUTCOMES[change]) if change in OUTCOMES else state_word(change),
            ]
        )
    headings = (
        N_("time"),
        N_("community"),
        N_("channel"),
        N_("account"),
        N_("occurrence"),
        N_("on apply"),
    )
    title = d._("{name} ({slug}) -- times in {zone}").format(
        name=plan.definition.name, slug=plan.slug, zone=zone
    )
    return display.listing(
        console, title=title, headings=[d._(h) for h in headings], rows=rows, keys=(0, 1, 3, 4)
    )


@campaign.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--preview", is_flag=True, help="Show each rendered post.")
@click.option(
    "--limit", default=100, show_default=True, help="Show at most this many posts (0: all)."
)
@friendly_errors
@needs_schema
def plan(file: Path, preview: bool, limit: int) -> None:
    """Show the posts FILE would make (local times, community, channel), and what applying
    it would change.  Writes nothing."""
    from sqlalchemy import select

    from campaigns import plan_file
    from campaigns.lifecycle import post_changes
    from marketing.besttimes import schedule_snapshot
    from marketing.db import session_scope
    from marketing.models import Campaign

    now = datetime.now(UTC)
    with session_scope() as session:
        result = plan_file(
            session=session,
            path=file,
            now=now,
            best_times=lambda: schedule_snapshot(session=session, now=now),
        )
        stored = session.scalars(
            select(Campaign.id).where(Campaign.slug == result.slug)
        ).one_or_none()
        changes = post_changes(session=session, campaign_id=stored, posts=result.posts, now=now)
        session.rollback()
    console.print(_plan_table(result, changes.outcome, limit))
    shown = min(limit, len(result.posts)) if limit else len(result.posts)
    if shown < len(result.posts):
        console.print(f"... and {len(result.posts) - shown:,} more (--limit 0 shows all)")
    d = display.current()
    console.print(
        d._(
            "{posts} posts; applying would add {add}, update {update}, cancel {cancel}, leave "
            "{unchanged} as they are and {kept} alone (already publishing or done)."
        ).format(
            posts=f"{len(result.posts):,}",
            add=f"{len(changes.inserts):,}",
            update=f"{len(changes.updates):,}",
            cancel=f"{len(changes.cancels):,}",
            unchanged=f"{changes.unchanged:,}",
            kept=f"{changes.kept:,}",
        )
    )
    _print_notes(result.notes)
    if preview:
        zone = result.definition.timezone
        posts = sorted(result.posts, key=lambda p: (p.scheduled_at, p.community_slug, p.channel))
        for post in posts[:shown]:
            console.rule(
                f"{_local(post.scheduled_at, zone)} · {post.community_slug} · "
                f"{post.channel} · {post.account_slug}",
                style="cyan",
            )
            _print_content(post.content)


@campaign.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--by",
    "actor",
    default=None,
    help="Who applies it: a web username (default: your user name). That name may not "
    "approve the change.",
)
@friendly_errors
@needs_schema
@_state_errors
def apply(file: Path, actor: str | None) -> None:
    """Store FILE as a draft campaign and its posts; re-applying an edited file updates the
    posts not yet handed to a channel and cancels those it no longer has."""
    from campaigns import apply_campaign
    from marketing.besttimes import schedule_snapshot
    from marketing.db import session_scope
    from marketing.web.staff import audit_apply

    name = actor or _actor()
    now = datetime.now(UTC)
    with session_scope() as session:
        summary = apply_campaign(
            session=session,
            path=file,
            actor=name,
            now=now,
            best_times=lambda: schedule_snapshot(session=session, now=now),
        )
        audit_apply(session=session, summary=summary, user=None, actor=name, via="command line")
    d = display.current()
    if not summary.changed:
        said = d._("{slug} is already as {file} says.").format(slug=summary.slug, file=file)
        console.print("[green]" + d._("Nothing changed:") + "[/] " + escape(said), highlight=False)
    else:
        verb = d._("Created") if summary.created else d._("Updated")
        status_word = d._(CAMPAIGN_STATUSES.get(summary.status.value, summary.status.value))
        said = d._(
            "campaign {slug} ({status}): {added} posts added, {updated} updated, {cancelled} "
            "cancelled, {unchanged} unchanged, {kept} left alone (already publishing or done)."
        ).format(
            slug=summary.slug,
            status=status_word,
            added=f"{summary.added:,}",
            updated=f"{summary.updated:,}",
            cancelled=f"{summary.cancelled:,}",
            unchanged=f"{summary.unchanged:,}",
            kept=f"{summary.kept:,}",
        )
        console.print(f"[green]{verb}[/] {escape(said)}", highlight=False)
    _print_notes(summary.notes)
    if summary.back_to_draft:
        said = d._(
            "The campaign changed, so it is a draft again and nothing more of it is published "
            "until it is approved again:"
        )
        console.print(
            f"[bold yellow]{said}[/] marketing campaign approve {summary.slug}", highlight=False
        )
    elif summary.status.value == "draft":
        said = d._("Drafts are not published. When the plan is right:")
        console.print(f"{said} marketing campaign approve {summary.slug}", highlight=False)


@campaign.command()
@click.argument("slug")
@click.option(
    "--by",
    "actor",
    default=None,
    help="Who approves it: a web username (default: your user name). Refused if that name "
    "applied the change (four-eyes).",
)
@click.option(
    "--expect-hash",
    default=None,
    metavar="HASH",
    help="Approve only if the campaign still has this approval hash (printed by `marketing "
    "campaign status SLUG`); no question is asked.",
)
@click.option(
    "--show",
    default=3,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Posts whose text is shown before asking.",
)
@click.option(
    "--single-person",
    is_flag=True,
    envvar="MARKETING_SINGLE_PERSON_APPROVAL",
    help="A team of one: approve a change you applied yourself. Recorded in the audit log.",
)
@friendly_errors
@needs_schema
@_state_errors
def approve(
    slug: str, actor: str | None, expect_hash: str | None, show: int, single_person: bool
) -> None:
    """Approve draft SLUG for publishing, exactly as shown: without --expect-hash it shows
    the campaign and its next posts and asks; if the campaign changes before you answer,
    nothing is approved (it is checked again first, too).  Four-eyes, as in the web app:
    whoever applied a change since the last approval (or created the campaign) may not
    approve it, unless --single-person (or MARKETING_SINGLE_PERSON_APPROVAL=true)."""
    from sqlalchemy import select

    from campaigns import approval_hash, approve_campaign
    from campaigns.lifecycle import APPROVE_ACTION
    from marketing.db import session_scope
    from marketing.models import Campaign, CampaignStatus
    from marketing.web.staff import audit

    name = actor or _actor()
    if expect_hash is None:
        with session_scope() as session:
            _four_eyes(session, slug, name, single_person)
            _print_status(session, slug)
            _print_posts(session, slug, show)
            expect_hash = approval_hash(session=session, slug=slug)
        d = display.current()
        console.print(d._("approval hash:"), expect_hash, highlight=False)
        if not click.confirm(d._("Approve exactly this version?"), err=True):
            console.print(d._("Not approved."))
            sys.exit(1)
    with session_scope() as session:
        waived = _four_eyes(session, slug, name, single_person)
        before = session.scalar(select(Campaign.status).where(Campaign.slug == slug))
        approved = approve_campaign(session=session, slug=slug, actor=name, shown_hash=expect_hash)
        if before == CampaignStatus.DRAFT:  # approved now (not approved already)
            detail: dict[str, Any] = {"via": "command line", "approval_hash": expect_hash}
            if single_person:
                # Who waived the rule, and which part of it, stays on record.
                detail.update(single_person=True, four_eyes_waived=waived)
            audit(
                session=session,
                user=None,
                actor=name,
                action=APPROVE_ACTION,
                object_type="campaign",
                object_id=slug,
                **detail,
            )
        by, at, zone = approved.approved_by, approved.approved_at, approved.timezone
    d = display.current()
    if waived:
        said = (
            d._("{name} approves a change {name} applied; the audit log says so.")
            if waived == "applied-change"
            else d._("{name} approves a change {name} created; the audit log says so.")
        )
        console.print(
            "[yellow]" + d._("Single-person approval:") + f"[/] {said.format(name=name)}",
            highlight=False,
        )
    console.print(
        "[green]"
        + d._("Approved")
        + "[/] "
        + d._("{slug} (by {by}, {when} {zone}); its posts go out at their times.").format(
            slug=slug, by=by, when=_local(at, zone), zone=zone
        ),
        highlight=False,
    )


def _four_eyes(session: Session, slug: str, name: str, single_person: bool) -> str | None:
    """Refuse (CampaignStateError) if ``name`` may not approve ``slug`` (the web app's rule);
    with ``single_person`` the refusal it waives (None: there was nothing to waive)."""
    from campaigns import CampaignStateError
    from campaigns.lifecycle import FOUR_EYES_APPLIED, four_eyes_refusal
    from marketing.queries import campaign_by_slug

    campaign = campaign_by_slug(session=session, slug=slug)
    if campaign is None:
        return None  # approving says there is no such campaign
    refusal = four_eyes_refusal(session=session, campaign=campaign, actor=name)
    if refusal is None or single_person:
        return refusal
    what = (
        "applied a change to it that no one else has approved"
        if refusal == FOUR_EYES_APPLIED
        else "created it"
    )
    raise CampaignStateError(
        f"{name} {what}, so {name} may not approve {slug!r} (four-eyes: another person approves)",
        "another approver approves it in the web app, or here with --by THEIR-USERNAME; a "
        "team of one uses --single-person (or MARKETING_SINGLE_PERSON_APPROVAL=true), which "
        "the audit log records",
    )


def _print_posts(session: Session, slug: str, limit: int) -> None:
    """The texts of the next ``limit`` posts of ``slug``."""
    from sqlalchemy import select

    from marketing.models import Campaign, Community, Post, PostState

    rows = session.execute(
        select(Post, Community.slug, Campaign.timezone)
        .join(Campaign, Campaign.id == Post.campaign_id)
        .join(Community, Community.id == Post.community_id)
        .where(Campaign.slug == slug, Post.state != PostState.CANCELLED)
        .order_by(Post.scheduled_at, Community.slug, Post.id)
        .limit(limit)
    ).all()
    for post, community, zone in rows:
        console.rule(
            f"{_local(post.scheduled_at, zone)} · {community} · {post.channel.value}",
            style="cyan",
        )
        _print_content(post.content)


@campaign.command()
@click.argument("slug")
@friendly_errors
@needs_schema
@_state_errors
def pause(slug: str) -> None:
    """Stop publishing SLUG until it is resumed."""
    from campaigns import pause_campaign
    from marketing.db import session_scope

    with session_scope() as session:
        moved = pause_campaign(session=session, slug=slug)
    if not moved:
        console.print(display.current()._("{slug} is paused already.").format(slug=slug))
        return
    d = display.current()
    said = d._("{slug}: nothing more is published until you resume it.").format(slug=slug)
    console.print("[yellow]" + d._("Paused") + f"[/] {said}", highlight=False)


@campaign.command()
@click.argument("slug")
@friendly_errors
@needs_schema
@_state_errors
def resume(slug: str) -> None:
    """Publish paused SLUG again; posts whose time passed meanwhile go out now."""
    from campaigns import resume_campaign
    from marketing.db import session_scope

    with session_scope() as session:
        moved = resume_campaign(session=session, slug=slug)
    d = display.current()
    if moved:
        console.print("[green]" + d._("Resumed") + f"[/] {slug}", highlight=False)
    else:
        console.print(d._("{slug} is approved already.").format(slug=slug), highlight=False)


@campaign.command()
@click.argument("slug")
@friendly_errors
@needs_schema
@_state_errors
def cancel(slug: str) -> None:
    """Cancel SLUG and every post of it not yet handed to a channel (cannot be undone)."""
    from campaigns import cancel_campaign
    from marketing.db import session_scope

    with session_scope() as session:
        count = cancel_campaign(session=session, slug=slug)
    d = display.current()
    said = d._("{slug}: {count} posts will not be published.").format(slug=slug, count=f"{count:,}")
    console.print("[red]" + d._("Cancelled") + f"[/] {said}", highlight=False)


@campaign.command("list")
@friendly_errors
@needs_schema
def list_() -> None:
    """Every campaign with its status, window and posts by state."""
    from campaigns import list_campaigns
    from marketing.db import session_scope

    with session_scope() as session:
        rows = list_campaigns(session=session)
        d = display.current()
        shown = [
            (
                c.slug,
                c.name,
                d._(CAMPAIGN_STATUSES.get(c.status.value, c.status.value)),
                f"{_local(c.window_start, c.timezone)} - {_local(c.window_end, c.timezone)}",
                ", ".join(f"{state_word(state.value)} {n:,}" for state, n in sorted(counts.items()))
                or "-",
            )
            for c, counts in rows
        ]
    headings = (N_("slug"), N_("name"), N_("status"), N_("window"), N_("posts"))
    console.print(
        display.listing(
            console, title=d._("Campaigns"), headings=[d._(h) for h in headings], rows=shown
        )
    )


@campaign.command()
@click.argument("slug")
@friendly_errors
@needs_schema
@_state_errors
def status(slug: str) -> None:
    """SLUG's status, its posts by channel and state, its next posts, and its approval hash
    (for `marketing campaign approve SLUG --expect-hash HASH`)."""
    from campaigns import approval_hash
    from marketing.db import session_scope

    with session_scope() as session:
        _print_status(session, slug)
        d = display.current()
        console.print(d._("approval hash:"), approval_hash(session=session, slug=slug))


def _print_status(session: Session, slug: str) -> None:
    """SLUG's status, its posts by channel and state, and its next posts."""
    from campaigns import campaign_report
    from marketing.models import PostState

    report = campaign_report(session=session, slug=slug)
    c = report.campaign
    d = display.current()
    console.print(f"[bold]{escape(c.name)}[/] ({c.slug})", highlight=False)
    status_word = d._(CAMPAIGN_STATUSES.get(c.status.value, c.status.value))
    console.print(d._("status:"), status_word, highlight=False)
    if c.approved_by:
        console.print(
            d._("approved by {by} at {when}").format(
                by=c.approved_by, when=_local(c.approved_at, c.timezone)
            ),
            highlight=False,
        )
    console.print(
        d._("window:") + f" {_local(c.window_start, c.timezone)} - "
        f"{_local(c.window_end, c.timezone)} ({c.timezone})",
        highlight=False,
    )
    console.print(d._("source:"), escape(str(c.source_path)), highlight=False)
    console.print(d._("communities:"), report.communities, highlight=False)
    states = [s for s in PostState if report.states.get(s)]
    headings = [d._("channel"), *(state_word(s.value) for s in states)]
    rows = [
        [channel_word(channel.value), *(f"{counts.get(s, 0):,}" for s in states)]
        for channel, counts in sorted(report.by_channel.items())
    ]
    console.print(
        display.listing(
            console,
            title=d._("Posts"),
            headings=headings,
            rows=rows,
            numeric=range(1, len(headings)),
        )
    )
    if report.next_posts:
        console.print(d._("next:"))
        for when, community, channel in report.next_posts:
            console.print(
                f"  {_local(when, c.timezone)}  {community}  {channel_word(channel.value)}",
                highlight=False,
            )
