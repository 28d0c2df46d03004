"""``marketing backup`` and ``marketing restore``: the database and the media in one archive
(see :mod:`marketing.backup`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from marketing.cli.base import console, err_console, friendly_errors

_LABELS = {
    "database": "ฐานข้อมูล (database)",
    "checksums": "ตรวจค่าแฮช (checksums)",
    "archive": "เขียนไฟล์สำรอง (archive)",
    "verify": "ตรวจไฟล์สำรอง (verify)",
    "media": "ไฟล์สื่อ (media)",
}


@contextmanager
def _progress() -> Iterator[object]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console
    ) as bar:
        tasks: dict[str, object] = {}

        def report(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(_LABELS.get(what, what), total=total)
            bar.update(tasks[what], completed=done, total=total)  # type: ignore[arg-type]

        yield report


def _refused(exc: Exception) -> None:
    err_console.print("[bold red]Refused:[/] ", end="")
    err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace PATH if it exists.")
@friendly_errors
def backup(path: Path, overwrite: bool) -> None:
    """Write the database and every media file to the archive PATH (safe while workers run).

    The token-encryption keys are never in it: keep MARKETING_TOKEN_KEYS separately.
    """
    from marketing.backup import KEY_ADVICE, BackupRefused, create_backup
    from marketing.settings import get_settings

    settings = get_settings()
    if path.exists() and not overwrite:
        _refused(FileExistsError(f"{path} exists; choose another name or add --overwrite"))
    exclude = tuple(p for p in (settings.secrets_file,) if p is not None)
    try:
        with _progress() as report:
            manifest = create_backup(
                database_url=settings.effective_database_url,
                media_root=settings.media_root,
                target=path,
                pg_bin_dir=settings.pg_bin_dir,
                exclude=exclude,
                progress=report,  # type: ignore[arg-type]
            )
    except BackupRefused as exc:
        _refused(exc)
        return
    media = len(manifest.media_files)
    console.print(
        f"Backed up the {manifest.database} database (revision {manifest.schema_revision}) "
        f"and {media} media file(s) to {path} ({path.stat().st_size:,} bytes).",
        highlight=False,
    )
    console.print(f"[yellow]Note:[/] {KEY_ADVICE}", highlight=False)


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace everything in a database that is not empty.")
@friendly_errors
def restore(path: Path, force: bool) -> None:
    """Restore the archive PATH into the configured database and media folder.

    Refuses a damaged archive, and a database that has rows unless --force.
    Stop the workers and the web app first.
    """
    from marketing.backup import BackupRefused, restore_backup
    from marketing.settings import get_settings

    settings = get_settings()
    settings.ensure_data_dir()
    try:
        with _progress() as report:
            result = restore_backup(
                archive=path,
                database_url=settings.effective_database_url,
                media_root=settings.media_root,
                force=force,
                pg_bin_dir=settings.pg_bin_dir,
                progress=report,  # type: ignore[arg-type]
            )
    except BackupRefused as exc:
        _refused(exc)
        return
    made = result.manifest.created_at.isoformat(timespec="seconds")
    console.print(
        f"Restored the backup of {made} (revision {result.manifest.schema_revision}) and "
        f"{result.media_files} media file(s).",
        highlight=False,
    )
    if result.revision_now == result.head:
        apply_erasure_list()
    else:
        console.print(
            "[yellow]Next:[/] after `marketing db upgrade`, run "
            "`marketing subscribers reapply-erasures` (people erased after the backup).",
            highlight=False,
        )
    if result.to_reconcile:
        console.print(
            f"{result.to_reconcile} post(s) that may have gone out after the backup will be "
            "checked with their channel (by marker) before anything is published again.",
            highlight=False,
        )
    for line in result.advice:
        console.print(f"[yellow]Next:[/] {line}", highlight=False)


def apply_erasure_list() -> None:
    from marketing.db import get_engine, session_scope
    from marketing.privacy import erased_hashes, reapply_erasures, wipe_free_space
    from marketing.settings import get_settings

    listed = get_settings().erasure_list
    with session_scope() as session:
        again = reapply_erasures(session=session, hashes=erased_hashes(listed), actor="restore")
    if again:
        wipe_free_space(get_engine())
        console.print(
            f"{again} person(s) erased after this backup was made were erased again "
            f"(list: {listed}).",
            highlight=False,
        )
