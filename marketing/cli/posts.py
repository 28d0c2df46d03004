"""``marketing posts`` and ``marketing accounts``: see what needs a person, and act on it."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import click
from rich.text import Text
from sqlalchemy import select

from marketing.cli import display
from marketing.cli.base import console, err_console, friendly_errors, needs_schema
from marketing.cli.display import N_, channel_word, state_word
from marketing.db import session_scope
from marketing.models import (
    AccountHealth,
    AccountToken,
    Campaign,
    ChannelAccount,
    Community,
    Post,
    PostState,
)
from marketing.publishing import (
    PROBLEM_STATES,
    PostActionRefused,
    account_reconnected,
    cancel_post,
    resolve_published,
    retry_post,
)
from marketing.queries import PostFilter, find_posts


def local(moment: datetime | None) -> str:
    """A time as staff read it: in the configured zone, to the minute, in the chosen era."""
    return display.current().when(moment)


@click.group()
def posts() -> None:
    """Scheduled and published posts, and the ones that need a person."""


@posts.command("problems")
@friendly_errors
@needs_schema
def problems() -> None:
    """List posts that need a person: failed, unconfirmed, or waiting for a reconnect."""
    with session_scope() as session:
        rows = session.execute(
            select(Post, Community.slug, ChannelAccount.slug, Campaign.slug)
            .join(Community, Community.id == Post.community_id)
            .join(ChannelAccount, ChannelAccount.id == Post.channel_account_id)
            .join(Campaign, Campaign.id == Post.campaign_id)
            .where(Post.state.in_(PROBLEM_STATES))
            .order_by(Post.state, Post.scheduled_at)
        ).all()
        d = display.current()
        if not rows:
            console.print(f"[green]{d._('No post needs a person.')}[/]")
            return
        shown = [
            (
                str(post.id),
                state_word(post.state.value),
                campaign,
                community,
                account,
                local(post.scheduled_at),
                post.last_error or "",
                post.action_hint or "",
            )
            for post, community, account, campaign in rows
        ]
    headings = (
        N_("id"),
        N_("state"),
        N_("campaign"),
        N_("community"),
        N_("account"),
        N_("due"),
        N_("problem"),
        N_("what to do"),
    )
    console.print(
        display.listing(
            console,
            title=d._("{count} post(s) need a person").format(count=len(shown)),
            headings=[d._(h) for h in headings],
            rows=shown,
            keys=(0, 2, 3, 4, 5),
        )
    )


@posts.command("list")
@click.option("--campaign", help="Only this campaign (slug).")
@click.option("--state", type=click.Choice([s.value for s in PostState]), help="Only this state.")
@click.option("--limit", default=50, show_default=True)
@friendly_errors
@needs_schema
def list_(campaign: str | None, state: str | None, limit: int) -> None:
    """List posts with their state, time and link."""
    where = PostFilter(campaign=campaign, state=PostState(state) if state else None)
    with session_scope() as session:
        shown = [
            (
                str(row.post.id),
                row.campaign_slug,
                row.community_slug,
                channel_word(row.post.channel.value),
                local(row.post.scheduled_at),
                state_word(row.post.state.value),
                row.post.permalink or "",
            )
            for row in find_posts(session=session, where=where, limit=limit)
        ]
    d = display.current()
    headings = (
        N_("id"),
        N_("campaign"),
        N_("community"),
        N_("channel"),
        N_("due"),
        N_("state"),
        N_("link"),
    )
    console.print(
        display.listing(
            console,
            title=d._("Posts"),
            headings=[d._(h) for h in headings],
            rows=shown,
            keys=(0, 1, 2, 4),
        )
    )


def _act(action: str, post_id: int, **kwargs: str) -> None:
    functions = {"retry": retry_post, "cancel": cancel_post, "resolve": resolve_published}
    try:
        with session_scope() as session:
            post = functions[action](session=session, post_id=post_id, **kwargs)  # type: ignore[operator]
            console.print(f"Post {post.id} is now {post.state.value}.")
    except PostActionRefused as exc:
        err_console.print(f"[red]Refused:[/] {exc}")
        sys.exit(2)


@posts.command("retry")
@click.argument("post_id", type=int)
@friendly_errors
@needs_schema
def retry(post_id: int) -> None:
    """Send a failed, unconfirmed or waiting post out again (check the channel first for an
    unconfirmed one: it may already be there)."""
    _act("retry", post_id)


@posts.command("cancel")
@click.argument("post_id", type=int)
@friendly_errors
@needs_schema
def cancel(post_id: int) -> None:
    """Cancel a post that has not gone out."""
    _act("cancel", post_id)


@posts.command("resolve")
@click.argument("post_id", type=int)
@click.option(
    "--published",
    "permalink",
    required=True,
    metavar="URL",
    help="Where you found the post on the channel.",
)
@friendly_errors
@needs_schema
def resolve(post_id: int, permalink: str) -> None:
    """Record that an unconfirmed post is in fact on the channel."""
    _act("resolve", post_id, permalink=permalink)


@click.group()
def accounts() -> None:
    """Channel accounts and their health."""


@accounts.command("list")
@friendly_errors
@needs_schema
def accounts_list() -> None:
    """List channel accounts with their health."""
    with session_scope() as session:
        d = display.current()
        rows = session.execute(
            select(ChannelAccount, Community.slug)
            .outerjoin(Community, Community.id == ChannelAccount.community_id)
            .order_by(ChannelAccount.slug)
        ).all()
        encrypted = set(session.scalars(select(AccountToken.account_id)))
        shown: list[tuple[str | Text, ...]] = []
        for account, community in rows:
            health = Text(
                state_word(account.health.value),
                style="red" if account.health != AccountHealth.OK else "",
            )
            shown.append(
                (
                    account.slug,
                    channel_word(account.kind.value),
                    account.external_id,
                    community or d._("(programme)"),
                    d._("(encrypted store)")
                    if account.id in encrypted
                    else account.secret_name or "—",
                    health,
                    local(account.health_checked_at),
                    account.health_message or "",
                )
            )
    headings = (
        N_("slug"),
        N_("channel"),
        N_("external id"),
        N_("community"),
        N_("secret"),
        N_("health"),
        N_("checked"),
        N_("message"),
    )
    console.print(
        display.listing(
            console,
            title=d._("Channel accounts"),
            headings=[d._(h) for h in headings],
            rows=shown,
            keys=(0, 3, 6),
        )
    )


@accounts.command("reconnected")
@click.argument("slug")
@friendly_errors
@needs_schema
def reconnected(slug: str) -> None:
    """Mark an account healthy after its token was renewed; its waiting posts go out again."""
    try:
        with session_scope() as session:
            count = account_reconnected(session=session, slug=slug)
    except PostActionRefused as exc:
        err_console.print(f"[red]Refused:[/] {exc}")
        sys.exit(2)
    console.print(f"Account {slug} is healthy; {count} waiting post(s) rescheduled.")


@accounts.command("check")
@friendly_errors
@needs_schema
def check() -> None:
    """Check now the tokens of accounts with posts due within a day (the beat does this
    every few minutes); mark the ones that need reconnecting."""
    from marketing.db import get_engine
    from marketing.publishing import accounts_to_check, record_account_check
    from tasks.health import check_one

    engine = get_engine()
    due = accounts_to_check(engine=engine, every=timedelta(0))
    if not due:
        console.print("No healthy account has a post due within a day.")
        return
    for account in due:
        error = check_one(account)
        health = record_account_check(engine=engine, account_id=account.account_id, error=error)
        mark = "[green]ok[/]" if error is None else f"[red]{health.value}[/]: {error}"
        console.print(f"{account.slug}: {mark}")


@posts.command("takedown")
@click.argument("post_id", type=int)
@click.option("--reason", required=True, help="Why it must come down (the request).")
@click.option("--by", "by", required=True, help="Who asked for it.")
@click.option("--private", is_flag=True, help="YouTube: make the video private, not deleted.")
@friendly_errors
@needs_schema
def takedown(post_id: int, reason: str, by: str, private: bool) -> None:
    """Remove a published post from its channel (Facebook: deleted; YouTube: video deleted,
    or private with --private) and record who asked and why."""
    from channels.errors import ChannelError
    from marketing.takedown import TakedownRefused, take_down_post
    from tasks import wiring

    try:
        with session_scope() as session:
            done = take_down_post(
                session=session,
                post_id=post_id,
                reason=reason,
                by=by,
                publisher_for=wiring.publisher,
                private=private,
            )
    except TakedownRefused as exc:
        err_console.print(f"[bold red]Refused:[/] {exc}", highlight=False)
        sys.exit(2)
    except ChannelError as exc:
        err_console.print(f"[bold red]The channel refused:[/] {exc}", highlight=False)
        if exc.hint:
            err_console.print(exc.hint, highlight=False)
        sys.exit(1)
    if done.removed:
        console.print(
            f"Post {post_id} removed from {done.channel.value} ({done.external_id}).",
            highlight=False,
        )
    else:
        console.print(
            f"Post {post_id} was no longer on {done.channel.value}; the request is recorded.",
            highlight=False,
        )


@accounts.command("rotate-key")
@friendly_errors
@needs_schema
def rotate_key() -> None:
    """Re-encrypt every stored token under the first key of MARKETING_TOKEN_KEYS."""
    from marketing.token_store import rotate_keys

    with session_scope() as session:
        count = rotate_keys(session=session)
    console.print(
        f"{count} account(s) re-encrypted under the first key of MARKETING_TOKEN_KEYS; "
        "the other keys may now be removed from it."
    )


@accounts.command("import-secrets")
@friendly_errors
@needs_schema
def import_secrets_command() -> None:
    """Move accounts' environment or secrets-file tokens into the encrypted store."""
    from marketing.token_store import import_secrets

    with session_scope() as session:
        moved = import_secrets(session=session)
    for slug in moved:
        console.print(f"{slug}: token moved into the encrypted store")
    console.print(
        f"{len(moved)} account(s) moved; their MARKETING_SECRET_* variables or secrets-file "
        "entries are no longer read and may be deleted."
    )
