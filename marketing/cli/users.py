"""``marketing users``: staff accounts of the web app -- add, list, set a role or password, and
make, list and revoke API tokens for scripts."""

from __future__ import annotations

import sys

import click
from sqlalchemy import select

from marketing.cli import display
from marketing.cli.base import console, friendly_errors, needs_schema, refused
from marketing.cli.display import N_
from marketing.cli.posts import local
from marketing.db import session_scope, utcnow
from marketing.models import Role, User
from marketing.web.staff import (
    LANGUAGES,
    TOKEN_DAYS,
    TOKEN_MAX_DAYS,
    StaffError,
    audit,
    create_user,
    find_user,
    issue_token,
    revoke_token,
    revoke_tokens,
    set_password,
    tokens_of,
)

ROLES = [r.value for r in Role]


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    d = display.current()
    return str(
        click.prompt(
            d._("Password"),
            hide_input=True,
            confirmation_prompt=d._("Repeat for confirmation"),
        )
    )


def _refused(exc: Exception) -> None:
    refused(exc)


@click.group()
def users() -> None:
    """Staff accounts of the web app (roles: viewer < editor < approver < admin)."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--name", "display_name", default="", help="Name shown in the app.")
@click.option("--language", type=click.Choice(LANGUAGES), default="th", show_default=True)
@click.option("--email", default="", help="Address for notifications (none: no e-mail).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly_errors
@needs_schema
def add(
    username: str,
    role: str,
    display_name: str,
    language: str,
    email: str,
    password_stdin: bool,
) -> None:
    """Create a user (the password is asked for, or read with --password-stdin)."""
    password = _password(password_stdin)
    try:
        with session_scope() as session:
            user = create_user(
                session=session,
                username=username,
                password=password,
                role=Role(role),
                display_name=display_name,
                language=language,
                email=email,
            )
            audit(
                session=session,
                user=None,
                actor="command line",
                action="user.create",
                object_type="user",
                object_id=user.id,
                username=user.username,
                role=role,
            )
            name = user.username
    except StaffError as exc:
        _refused(exc)
    d = display.current()
    console.print(
        "[green]"
        + d._("Created")
        + "[/] "
        + d._("user {name} ({role}).").format(name=name, role=role),
        highlight=False,
    )


@users.command("list")
@friendly_errors
@needs_schema
def list_() -> None:
    """Users with their role and last sign-in."""
    d = display.current()
    with session_scope() as session:
        rows = [
            [
                user.username,
                user.display_name,
                user.email or "",
                user.role.value,
                user.language,
                d._("yes") if user.active else d._("no"),
                local(user.last_login_at),
            ]
            for user in session.scalars(select(User).order_by(User.username))
        ]
    headings = (
        N_("user"),
        N_("name"),
        N_("e-mail"),
        N_("role"),
        N_("language"),
        N_("active"),
        N_("last sign-in"),
    )
    console.print(
        display.listing(console, title=d._("Users"), headings=[d._(h) for h in headings], rows=rows)
    )


@users.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@friendly_errors
@needs_schema
def role(username: str, role: str) -> None:
    """Give USERNAME another role."""
    try:
        with session_scope() as session:
            user = find_user(session=session, username=username)
            before, user.role = user.role.value, Role(role)
            audit(
                session=session,
                user=None,
                actor="command line",
                action="user.change",
                object_type="user",
                object_id=user.id,
                before={"role": before},
                after={"role": role},
            )
    except StaffError as exc:
        _refused(exc)
    console.print(
        display.current()._("User {name} is now {role}.").format(name=username, role=role),
        highlight=False,
    )


@users.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly_errors
@needs_schema
def password(username: str, password_stdin: bool) -> None:
    """Set USERNAME's password: their sessions end and their API tokens are revoked."""
    secret = _password(password_stdin)
    try:
        with session_scope() as session:
            user = find_user(session=session, username=username)
            ended = set_password(session=session, user=user, password=secret)
            audit(
                session=session,
                user=None,
                actor="command line",
                action="user.password",
                object_type="user",
                object_id=user.id,
                sessions_ended=ended.get("sessions_ended", 0),
                tokens_revoked=ended.get("tokens_revoked", 0),
            )
    except StaffError as exc:
        _refused(exc)
    console.print(
        display.current()
        ._("Password of {name} changed; {sessions} session(s) ended, {tokens} token(s) revoked.")
        .format(name=username, sessions=ended["sessions_ended"], tokens=ended["tokens_revoked"]),
        highlight=False,
    )


@users.command("token")
@click.argument("username")
@click.option("--name", default="", help="What the token is for (shown in the audit log).")
@click.option(
    "--days",
    type=click.IntRange(1, TOKEN_MAX_DAYS),
    default=TOKEN_DAYS,
    show_default=True,
    help="Days until the token expires.",
)
@friendly_errors
@needs_schema
def token(username: str, name: str, days: int) -> None:
    """Make an API token for USERNAME's scripts (send it as `Authorization: Bearer ...`).
    It is printed once; only its hash is kept.  It expires after --days."""
    try:
        with session_scope() as session:
            user = find_user(session=session, username=username)
            value = issue_token(session=session, user=user, name=name, days=days)
            audit(
                session=session,
                user=None,
                actor="command line",
                action="user.token",
                object_type="user",
                object_id=user.id,
                name=name,
                days=days,
            )
    except StaffError as exc:
        _refused(exc)
    click.echo(value)


@users.command("tokens")
@click.argument("username", required=False)
@friendly_errors
@needs_schema
def tokens(username: str | None) -> None:
    """API tokens (of USERNAME, or everyone's) with their expiry and state."""
    now = utcnow()
    d = display.current()
    rows: list[list[str]] = []
    try:
        with session_scope() as session:
            user = find_user(session=session, username=username) if username else None
            for row in tokens_of(session=session, user=user):
                state = (
                    d._("revoked")
                    if row.revoked_at
                    else d._("expired")
                    if row.expires_at <= now
                    else d._("in use")
                )
                rows.append(
                    [
                        str(row.id),
                        row.user.username,
                        row.name,
                        local(row.created_at),
                        local(row.last_used_at),
                        local(row.expires_at),
                        state,
                    ]
                )
    except StaffError as exc:
        _refused(exc)
    headings = (
        N_("id"),
        N_("user"),
        N_("for"),
        N_("made"),
        N_("last used"),
        N_("expires"),
        N_("state"),
    )
    console.print(
        display.listing(
            console,
            title=d._("API tokens"),
            headings=[d._(h) for h in headings],
            rows=rows,
            keys=(0, 1),
        )
    )


@users.command("token-revoke")
@click.argument("token_ids", metavar="[ID]...", nargs=-1, type=int)
@click.option("--user", "username", help="Revoke every token of this user instead.")
@friendly_errors
@needs_schema
def token_revoke(token_ids: tuple[int, ...], username: str | None) -> None:
    """Revoke API tokens by their id (`marketing users tokens` shows them), or all of --user's.
    Scripts using them are refused from then on."""
    if bool(token_ids) == bool(username):
        _refused(ValueError(display.current()._("give token ids or --user NAME (one of the two)")))
    try:
        with session_scope() as session:
            if username:
                user = find_user(session=session, username=username)
                count = revoke_tokens(session=session, user=user)
                audit(
                    session=session,
                    user=None,
                    actor="command line",
                    action="user.token_revoke",
                    object_type="user",
                    object_id=user.id,
                    tokens_revoked=count,
                )
            else:
                for token_id in token_ids:
                    row = revoke_token(session=session, token_id=token_id)
                    audit(
                        session=session,
                        user=None,
                        actor="command line",
                        action="user.token_revoke",
                        object_type="api_token",
                        object_id=row.id,
                        owner=row.user.username,
                        name=row.name,
                    )
                count = len(token_ids)
    except StaffError as exc:
        _refused(exc)
    console.print(
        display.current()._("{count} token(s) revoked.").format(count=count), highlight=False
    )
