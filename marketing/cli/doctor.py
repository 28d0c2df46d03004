"""``marketing doctor``: check a deployment's settings and surroundings, say what to fix."""

from __future__ import annotations

import json
import sys

import click

from marketing.cli import display
from marketing.cli.base import console

MARKS = {"ok": "[green]✓[/]", "warning": "[yellow]![/]", "error": "[red]✗[/]"}


@click.command()
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object with every finding (code, severity, message, fix).",
)
@click.option(
    "--language",
    type=click.Choice(["th", "en"]),
    help="Language of the messages (default: marketing --language, MARKETING_LANGUAGE, th).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.5, 60),
    default=5.0,
    show_default=True,
    help="Seconds each check that reaches another host may take.",
)
def doctor(output: str, language: str | None, timeout: float) -> None:
    """Check this host's settings and surroundings: secrets, file permissions, URLs and TLS,
    the database and its migrations, Redis, the clock, the SMTP relay and every account's
    health. Exits 1 if anything is an error."""
    from marketing.doctor import diagnose
    from marketing.settings import get_settings

    language = language or display.current().language
    diagnosis = diagnose(settings=get_settings(), language=language, timeout=timeout)
    if output == "json":
        click.echo(json.dumps(diagnosis.as_dict(), ensure_ascii=False, indent=2))
    else:
        for finding in diagnosis.findings:
            console.print(f"{MARKS[finding.severity.value]} ", end="")
            console.print(
                f"{finding.code}: {finding.message}",
                markup=False,
                highlight=False,
                emoji=False,
                soft_wrap=True,
            )
            if finding.fix:
                console.print(
                    f"    → {finding.fix}",
                    markup=False,
                    highlight=False,
                    emoji=False,
                    soft_wrap=True,
                )
        errors, problems = len(diagnosis.errors), len(diagnosis.problems)
        summary = {
            "th": f"ข้อผิดพลาด {errors} รายการ คำเตือน {problems - errors} รายการ",
            "en": f"{errors} error(s), {problems - errors} warning(s)",
        }[language]
        console.print(summary, style="red" if errors else "green")
    sys.exit(1 if diagnosis.errors else 0)
