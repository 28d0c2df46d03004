"""Shared pieces of the command line: the root group, the console, and friendly failures."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from marketing import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from marketing.problems import Problem


class LazyConsole:
    """A ``rich`` console made on its first use: ``marketing --help`` and the commands that
    print nothing through it start without ``rich.console`` (about half of ``--help``'s
    imports, #19).  Attributes are read from and set on the console itself, so
    ``monkeypatch.setattr(console, "width", 80)`` sets the real console's width and puts
    the old one back."""

    __slots__ = ("_console", "_options")

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_console", None)

    def get(self) -> Console:
        """The console itself (made now if not yet)."""
        made: Console | None = object.__getattribute__(self, "_console")
        if made is None:
            from rich.console import Console

            made = Console(**object.__getattribute__(self, "_options"))
            object.__setattr__(self, "_console", made)
        return made

    # A property here, as on Console: ``monkeypatch.setattr`` then restores the width it read
    # (for an attribute without one it would look in the proxy's ``__dict__`` and, finding
    # nothing there, delete the console's width afterwards).
    @property
    def width(self) -> int:
        return self.get().width

    @width.setter
    def width(self, value: int) -> None:
        self.get().width = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.get(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self.get(), name)

    # Console's own special methods (Python looks these up on the type, not through
    # __getattr__): ``with console:`` buffers its output, as rich's Live does.
    def __enter__(self) -> Console:
        return self.get().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.get().__exit__(*exc)

    def __repr__(self) -> str:
        return repr(self.get())


# Typed as the console they stand for: every use is the console's own attribute.
console: Console = cast("Console", LazyConsole())
err_console: Console = cast("Console", LazyConsole(stderr=True))

F = TypeVar("F", bound=Callable[..., Any])


def _refusal(label: str, reason: object) -> None:
    """``label`` in bold red, then ``reason`` as plain text (never read as markup)."""
    from rich.markup import escape

    err_console.print(f"[bold red]{escape(label)}[/] ", end="")
    err_console.print(str(reason), markup=False, highlight=False, soft_wrap=True)


def refused(reason: object) -> None:
    """Say that an action was refused and why, in the chosen language; exit status 2."""
    from marketing.cli.display import current

    _refusal(current()._("Refused:"), reason)
    sys.exit(2)


def print_problems(problems: Sequence[Problem], title: str) -> None:
    """``title`` (a ``{count}`` message) and each problem where it is, in the chosen language
    (the web app's words for a problem with a code, :func:`marketing.web.wording.problem_text`)."""
    from rich.markup import escape

    from marketing.cli.display import current
    from marketing.web.i18n import translations
    from marketing.web.wording import problem_text

    words = translations(current().language).gettext
    whole = current()._("(file)")
    err_console.print(f"[bold red]{escape(title.format(count=len(problems)))}[/]")
    for problem in problems:
        message, hint = problem_text(problem, words)
        where = problem.file
        if problem.line is not None:
            where += f":{problem.line}"
            if problem.column is not None:
                where += f":{problem.column}"
        text = f"{where}: {problem.field or whole}: {message}"
        err_console.print("  [red]•[/] ", end="")
        err_console.print(
            f"{text} -- {hint}" if hint else text, markup=False, highlight=False, soft_wrap=True
        )


def friendly_errors(func: F) -> F:
    """Turn the errors people can fix into a clear message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Imported here, not at the top: `marketing --help` starts without pydantic and
        # SQLAlchemy (a command that raises these has loaded them already).
        from sqlalchemy.exc import OperationalError

        from marketing.cli.display import current
        from marketing.problems import InvalidInput
        from marketing.settings import (
            DevelopmentSecretRefused,
            InsecureSecretsFile,
            MissingSecret,
            TokenKeysInvalid,
            TokenUnreadable,
        )

        _ = current()._
        try:
            return func(*args, **kwargs)
        except InvalidInput as exc:
            print_problems(exc.problems, _("{count} problem(s) found; nothing was changed."))
            sys.exit(2)
        except InsecureSecretsFile as exc:
            _refusal(_("Secrets file refused:"), exc)
            sys.exit(2)
        except MissingSecret as exc:
            _refusal(_("Missing secret:"), exc)
            sys.exit(2)
        except (TokenKeysInvalid, TokenUnreadable) as exc:
            _refusal(_("Token store:"), exc)
            sys.exit(2)
        except DevelopmentSecretRefused as exc:
            _refusal(_("Refused:"), exc)
            sys.exit(2)
        except OperationalError as exc:
            _refusal(_("Database error:"), exc.orig)
            err_console.print(
                _("Is the database reachable, and has `marketing db upgrade` been run?"),
                markup=False,
                highlight=False,
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
            from marketing.cli.display import current

            _ = current()._
            _refusal(_("Not ready:"), f"{why}.")
            err_console.print(_("Create it first: marketing db upgrade"), highlight=False)
            sys.exit(2)
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when one of them runs (or its help is
    asked for): ``marketing --help`` lists them from ``lazy``'s static short help, so it starts
    without SQLAlchemy, pydantic, the SDKs or the web framework.  tests/test_cli_startup.py
    checks that each static help is the command's own."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kw: Any):
        super().__init__(*args, **kw)
        # name -> ("module:attribute", short help)
        self.lazy: dict[str, tuple[str, str]] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module_name, attribute = self.lazy[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(name) for name in names), default=0)
        rows = [
            (name, click.Command(name, help=self.lazy[name][1]).get_short_help_str(limit))
            if name in self.lazy and name not in self.commands
            else (name, self.commands[name].get_short_help_str(limit))
            for name in names
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="marketing")
@click.option(
    "--language",
    "--lang",
    "language",
    type=click.Choice(["th", "en"]),
    help="Language of tables and reports (default: MARKETING_LANGUAGE, else th).",
)
@click.option(
    "--era",
    type=click.Choice(["be", "ce"]),
    help="Years in the Buddhist era (be: 2569) or the Common era (ce: 2026); "
    "default: MARKETING_ERA, else be in Thai and ce in English.",
)
def main(language: str | None, era: str | None) -> None:
    """Publish the creative-community programme on Facebook, YouTube and email, and report on it.

    Settings come from MARKETING_* environment variables (see README.md); by default
    everything lives in ./data (a SQLite database and an embedded broker).
    """
