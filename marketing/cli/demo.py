"""``marketing demo`` and ``marketing sandbox``: see the whole job run with nothing to install."""

from __future__ import annotations

import gc
import shutil
import sys
import time
from pathlib import Path

import click
from sqlalchemy import select

from marketing.cli.base import console, friendly_errors, needs_schema
from marketing.settings import get_settings


@click.command()
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo keeps its database and reports (default: <data>/demo).",
)
@friendly_errors
def demo(folder: Path | None) -> None:
    """Run a whole campaign on embedded defaults: ten sample communities, a Thai campaign on
    Facebook, YouTube and email (local sandboxes), a real worker, engagement, reports."""
    from marketing.demo import run_demo

    base = folder.parent if folder else get_settings().data_dir
    started = time.monotonic()
    result = run_demo(base=base, console=console)
    console.print(
        f"\n[green]Done in {time.monotonic() - started:.0f} s.[/] Posts: "
        + ", ".join(f"{n} {state}" for state, n in sorted(result.posts.items()))
    )
    console.print("Reports (open in a browser; they work offline):")
    for path in result.reports[:2]:
        console.print(f"  {path}", highlight=False)
    console.print(
        f"  ... and {len(result.reports) - 2} community reports in {result.reports[0].parent}",
        highlight=False,
    )
    console.print(
        f"The demo's database is {result.folder / 'marketing.sqlite3'}; look around "
        f"with:\n  MARKETING_DATA_DIR={result.folder} {marketing_command()} report overview",
        highlight=False,
        soft_wrap=True,  # one line, whatever the terminal's width: it is copied and pasted
    )
    if marketing_command() != "marketing":
        console.print(
            "(or activate the virtual environment first, `. .venv/bin/activate`, and type "
            "plain `marketing`)",
            highlight=False,
        )
    # Exiting: the collector need not walk the ~400,000 objects of the web app, the worker's
    # imports and the SDKs once more on the way out (about 2-3 s at the end, #19).
    gc.freeze()


def marketing_command() -> str:
    """How to run ``marketing`` from here, as the person typed it or would: the script next
    to this Python (relative to the current folder when inside it, e.g. .venv/bin/marketing),
    or plain ``marketing`` if that is what the shell finds."""
    script = Path(sys.executable).parent / "marketing"
    if not script.is_file():
        return "marketing"
    found = shutil.which("marketing")
    if found and Path(found).resolve() == script.resolve():
        return "marketing"  # the virtual environment is active (or installed system-wide)
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


@click.command()
@click.option("--graph-port", default=8801, show_default=True)
@click.option("--youtube-port", default=8802, show_default=True)
@click.option("--smtp-port", default=8825, show_default=True)
@friendly_errors
@needs_schema
def sandbox(graph_port: int, youtube_port: int, smtp_port: int) -> None:
    """Serve the Graph API, YouTube and SMTP sandboxes until Ctrl-C, knowing every account
    in the database (token: sandbox-<secret name>), and print the settings that use them."""
    from channels.sandbox.suite import SandboxAccount, SandboxSuite, sandbox_token
    from marketing.db import session_scope
    from marketing.models import ChannelAccount

    suite = SandboxSuite(ports=(graph_port, youtube_port, smtp_port)).start()
    try:
        with session_scope() as session:
            accounts = [a for a in session.scalars(select(ChannelAccount)) if a.secret_name]
            suite.register(
                SandboxAccount(
                    a.kind.value, a.external_id, sandbox_token(a.secret_name or ""), a.display_name
                )
                for a in accounts
            )
        console.print("Sandboxes are running. Point the service at them with:")
        for name, value in suite.settings_env().items():
            console.print(f"  export {name}={value}", highlight=False)
        for account in accounts:
            console.print(
                f"  export MARKETING_SECRET_{account.secret_name}="
                f"{sandbox_token(account.secret_name or '')}",
                highlight=False,
            )
        console.print(
            f"State: {suite.graph.url}/_sandbox/state and "
            f"{suite.youtube.url}/_sandbox/state. Ctrl-C stops them."
        )
        _wait()
    finally:
        suite.stop()


def _wait() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("Stopped.")
