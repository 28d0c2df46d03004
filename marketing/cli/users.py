"""``marketing users``: staff accounts of the web app -- add, list, set a role or password, and
make API tokens for scripts."""

from __future__ import annotations

import sys

import click
from rich.table import Table
from sqlalchemy import select

from marketing.cli.base import console, err_console, friendly_errors
from marketing.cli.posts import local
from marketing.db import session_scope
from marketing.models import Role, User
from marketing.web.staff import (
    LANGUAGES,
    StaffError,
    audit,
    create_user,
    find_user,
    hash_password,
    issue_token,
)

ROLES = [r.value for r in Role]


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _refused(exc: Exception) -> None:
    err_console.print(f"[bold red]Refused:[/] {exc}", highlight=False)
    sys.exit(2)


@click.group()
def users() -> None:
    """Staff accounts of the web app (roles: viewer < editor < approver < admin)."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--name", "display_name", default="", help="Name shown in the app.")
@click.option("--language", type=click.Choice(LANGUAGES), default="th", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly_errors
def add(username: str, role: str, display_name: str, language: str, password_stdin: bool) -> None:
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
    console.print(f"[green]Created[/] user {name} ({role}).", highlight=False)


@users.command("list")
@friendly_errors
def list_() -> None:
    """Users with their role and last sign-in."""
    with session_scope() as session:
        table = Table(title="Users")
        for column in ("user", "name", "role", "language", "active", "last sign-in"):
            table.add_column(column)
        for user in session.scalars(select(User).order_by(User.username)):
            table.add_row(
                user.username,
                user.display_name,
                user.role.value,
                user.language,
                "yes" if user.active else "no",
                local(user.last_login_at),
            )
    console.print(table)


@users.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@friendly_errors
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
    console.print(f"User {username} is now {role}.", highlight=False)


@users.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@friendly_errors
def password(username: str, password_stdin: bool) -> None:
    """Set USERNAME's password (their other sessions end)."""
    secret = _password(password_stdin)
    try:
        with session_scope() as session:
            user = find_user(session=session, username=username)
            user.password_hash = hash_password(secret)
            audit(
                session=session,
                user=None,
                actor="command line",
                action="user.password",
                object_type="user",
                object_id=user.id,
            )
    except StaffError as exc:
        _refused(exc)
    console.print(f"Password of {username} changed.", highlight=False)


@users.command("token")
@click.argument("username")
@click.option("--name", default="", help="What the token is for (shown in the audit log).")
@friendly_errors
def token(username: str, name: str) -> None:
    """Make an API token for USERNAME's scripts (send it as `Authorization: Bearer ...`).
    It is printed once; only its hash is kept."""
    try:
        with session_scope() as session:
            user = find_user(session=session, username=username)
            value = issue_token(session=session, user=user, name=name)
            audit(
                session=session,
                user=None,
                actor="command line",
                action="user.token",
                object_type="user",
                object_id=user.id,
                name=name,
            )
    except StaffError as exc:
        _refused(exc)
    click.echo(value)
