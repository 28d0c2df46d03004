"""Shared pieces of the command line: the root group, the console, and friendly failures."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from marketing import __version__

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn the errors people can fix into a clear message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Imported here, not at the top: `marketing --help` starts without pydantic and
        # SQLAlchemy (a command that raises these has loaded them already).
        from sqlalchemy.exc import OperationalError

        from marketing.problems import InvalidInput
        from marketing.settings import (
            DevelopmentSecretRefused,
            InsecureSecretsFile,
            MissingSecret,
        )

        try:
            return func(*args, **kwargs)
        except InvalidInput as exc:
            count = len(exc.problems)
            err_console.print(
                f"[bold red]{count} problem{'s' if count != 1 else ''} found; "
                "nothing was changed.[/]"
            )
            for problem in exc.problems:
                err_console.print("  [red]•[/] ", end="")
                err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)
        except InsecureSecretsFile as exc:
            err_console.print(f"[bold red]Secrets file refused:[/] {exc}", highlight=False)
            sys.exit(2)
        except MissingSecret as exc:
            err_console.print(f"[bold red]Missing secret:[/] {exc}")
            sys.exit(2)
        except DevelopmentSecretRefused as exc:
            err_console.print("[bold red]Refused:[/] ", end="")
            err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            sys.exit(2)
        except OperationalError as exc:
            err_console.print(
                f"[bold red]Database error:[/] {exc.orig}\n"
                "Is the database reachable, and has `marketing db upgrade` been run?"
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def schema_missing() -> str | None:
    """Why the configured database cannot be used yet (it does not exist, or has no tables),
    or None.  Never creates anything: a SQLite file that is missing stays missing."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    from marketing.db import get_engine
    from marketing.settings import get_settings

    url = make_url(get_settings().effective_database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(str(url.database))
        if not path.is_file():
            return f"there is no database yet ({path})"
    with get_engine().connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            where = url.render_as_string(hide_password=True)
            return f"the database {where} has no tables yet"
    return None


def needs_schema(func: F) -> F:
    """Say "run `marketing db upgrade`" (exit status 2) instead of running a command that
    needs the database's tables before they exist.  Put it under :func:`friendly_errors`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        why = schema_missing()
        if why is not None:
            err_console.print(f"[bold red]Not ready:[/] {why}.", highlight=False)
            err_console.print("Create it first: marketing db upgrade", highlight=False)
            sys.exit(2)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="marketing")
def main() -> None:
    """Publish the creative-community programme on Facebook, YouTube and email, and report on it.

    Settings come from MARKETING_* environment variables (see README.md); by default
    everything lives in ./data (a SQLite database and an embedded broker).
    """
