"""Backups: the database and the media root in one archive, and the way back.

An archive is a plain tar file (created private to its owner: it holds subscribers'
addresses) with::

    manifest.json       format, time, database kind, schema revision, and the SHA-256 and
                        size of every other member
    database.sqlite3    SQLite: a copy made with SQLite's online backup API
    database.pgdump     PostgreSQL: ``pg_dump --format=custom``
    media/...           every regular file under the media root (links are not followed)

Both copies are consistent snapshots taken while workers keep writing: SQLite's backup runs
in one step under a read transaction (in WAL mode writers carry on), ``pg_dump`` in one
repeatable-read transaction.

The token-encryption keys (``MARKETING_TOKEN_KEYS``) and the secrets file are *never* in an
archive: they live in the environment, and a backup that carried them would hand whoever
holds the file every connected account.  Keep them separately; restoring without them leaves
the stored tokens unreadable, and each account must be connected again.

A restored database may be behind what the channels have: posts published after the
backup look unpublished in it.  :func:`restore_backup` therefore turns every Facebook and
YouTube post that could have gone out since (queued, publishing or due) into an attempt of
unknown outcome, which recovery reconciles by its marker before anything is sent again --
the same path a worker killed mid-publish takes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Engine, MetaData, Table, func, inspect, select, text
from sqlalchemy.engine import URL, make_url

from channels.base import Capability
from marketing import __version__
from marketing.db import make_engine, utcnow
from marketing.models import channels_that

__all__ = [
    "BackupRefused",
    "Manifest",
    "Progress",
    "create_backup",
    "find_pg_tool",
    "read_manifest",
    "restore_backup",
]

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
MEDIA_PREFIX = "media/"
_CHUNK = 1 << 20

#: ``progress(what, done, total)``: called as work advances (bytes or files).
Progress = Callable[[str, int, int], None]

KEY_ADVICE = (
    "The token-encryption keys (MARKETING_TOKEN_KEYS) are not in the backup, by design. "
    "Set the same keys on the restored service; without them the stored account tokens "
    "cannot be read, and every Facebook Page and YouTube channel must be connected again "
    "(marketing accounts / the web app's account pages)."
)


class BackupRefused(RuntimeError):
    """A backup or restore that must not go ahead; the message says what to do."""


@dataclass(frozen=True)
class Manifest:
    """What an archive holds."""

    created_at: datetime
    database: str  # "sqlite" or "postgresql"
    schema_revision: str | None
    app_version: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> sha256, size
    server_version: int | None = None  # PostgreSQL major version of the dumped server

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created_at": self.created_at.isoformat(),
            "database": self.database,
            "schema_revision": self.schema_revision,
            "app_version": self.app_version,
            "server_version": self.server_version,
            "token_keys": "not included: keep MARKETING_TOKEN_KEYS separately",
            "files": self.files,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT:
            raise BackupRefused(f"unknown backup format {data.get('format')!r} (this is {FORMAT})")
        return cls(
            created_at=datetime.fromisoformat(data["created_at"]),
            database=str(data["database"]),
            schema_revision=data.get("schema_revision"),
            app_version=str(data.get("app_version", "")),
            files=dict(data.get("files") or {}),
            server_version=data.get("server_version"),
        )

    @property
    def media_files(self) -> list[str]:
        return sorted(n for n in self.files if n.startswith(MEDIA_PREFIX))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _quiet(_what: str, _done: int, _total: int) -> None:
    pass


# --- PostgreSQL tools ------------------------------------------------------------------------


def _tool_major(path: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(found.group(1)) if found else None


def find_pg_tool(name: str, *, server_major: int, bin_dir: Path | None = None) -> Path:
    """The ``pg_dump`` or ``pg_restore`` to use with a server of ``server_major``: from
    ``bin_dir`` if given, else the newest of /usr/lib/postgresql/*/bin and PATH whose major
    version is at least the server's (an older one refuses a newer server's data)."""
    candidates: list[Path] = []
    if bin_dir is not None:
        candidates.append(bin_dir / name)
    else:
        versioned = sorted(
            Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
            key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
            reverse=True,
        )
        candidates.extend(versioned)
        on_path = shutil.which(name)
        if on_path:
            candidates.append(Path(on_path))
    seen = []
    for candidate in candidates:
        if not candidate.is_file():
            continue
        major = _tool_major(candidate)
        seen.append(f"{candidate} ({major or '?'})")
        if major is not None and major >= server_major:
            return candidate
    found = "; found " + ", ".join(seen) if seen else ""
    raise BackupRefused(
        f"{name} for PostgreSQL {server_major} or newer not found{found}. Install the client "
        f"tools (Debian/Ubuntu: apt install postgresql-client-{server_major}) or set "
        "MARKETING_PG_BIN_DIR to the folder that holds them."
    )


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for the PostgreSQL tools, with the password in the environment
    (never on the command line, where other users of the machine can read it)."""
    args = ["--dbname", str(url.database or "")]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run_tool(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=6 * 3600)
    if done.returncode != 0:
        raise BackupRefused(f"{what} failed: {done.stderr.strip()[-1500:]}")


def _server_major(engine: Engine) -> int:
    with engine.connect() as connection:
        number = int(connection.execute(text("SHOW server_version_num")).scalar_one())
    return number // 10000


# --- backup ----------------------------------------------------------------------------------


def _media_files(root: Path, *, exclude: set[Path]) -> Iterator[tuple[str, Path]]:
    if not root.is_dir():
        return
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(real_root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file() or path.resolve() in exclude:
                continue
            yield MEDIA_PREFIX + path.relative_to(real_root).as_posix(), path


def create_backup(
    *,
    database_url: str,
    media_root: Path,
    target: Path,
    pg_bin_dir: Path | None = None,
    exclude: tuple[Path, ...] = (),
    progress: Progress | None = None,
    now: datetime | None = None,
) -> Manifest:
    """Write an archive of the database at ``database_url`` and the files under
    ``media_root`` to ``target``; return its manifest.  ``exclude``: files never copied
    (the secrets file, should it lie under the media root)."""
    from marketing import migrate

    report = progress or _quiet
    url = make_url(database_url)
    kind = url.get_backend_name()
    if kind not in ("sqlite", "postgresql"):
        raise BackupRefused(f"cannot back up a {kind} database (SQLite or PostgreSQL only)")
    target.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(database_url)
    try:
        revision = migrate.current_revision(engine)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".backup-") as tmp:
            work = Path(tmp)
            server_major = None
            if kind == "sqlite":
                member = SQLITE_MEMBER
                _sqlite_copy(Path(str(url.database)), work / member, report)
            else:
                member = PG_MEMBER
                server_major = _server_major(engine)
                tool = find_pg_tool("pg_dump", server_major=server_major, bin_dir=pg_bin_dir)
                args, env = _libpq(url)
                report("database", 0, 1)
                _run_tool(
                    [str(tool), "--format=custom", "--no-owner", "--no-privileges",
                     "--file", str(work / member), *args],
                    env,
                    "pg_dump",
                )  # fmt: skip
                report("database", 1, 1)
            files: dict[str, dict[str, Any]] = {}
            sources: dict[str, Path] = {member: work / member}
            media = list(_media_files(media_root, exclude={p.resolve() for p in exclude}))
            sources.update(media)
            total = len(sources)
            for done, (name, path) in enumerate(sources.items(), start=1):
                files[name] = {"sha256": _sha256(path), "size": path.stat().st_size}
                report("checksums", done, total)
            manifest = Manifest(
                created_at=now or utcnow(),
                database=kind,
                schema_revision=revision,
                app_version=__version__,
                files=files,
                server_version=server_major,
            )
            partial = target.with_name(target.name + ".partial")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as tar:
                data = json.dumps(manifest.to_json(), ensure_ascii=False, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode, info.mtime = (
                    len(data),
                    0o600,
                    int(manifest.created_at.timestamp()),
                )
                tar.addfile(info, io.BytesIO(data))
                for done, (name, path) in enumerate(sources.items(), start=1):
                    info = tar.gettarinfo(str(path), arcname=name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
                    report("archive", done, total)
            os.replace(partial, target)
    finally:
        engine.dispose()
    return manifest


def _sqlite_copy(source: Path, target: Path, report: Progress) -> None:
    if not source.is_file():
        raise BackupRefused(f"there is no database at {source}")
    # One step (pages=-1): the copy is one read transaction, so it never restarts because a
    # worker wrote meanwhile, and in WAL mode the workers are not held up.
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        report("database", 0, 1)
        src.backup(dst, pages=-1)
        report("database", 1, 1)
    finally:
        dst.close()
        src.close()


# --- restore ---------------------------------------------------------------------------------


def read_manifest(archive: Path) -> Manifest:
    """The manifest of ``archive`` (BackupRefused if it is not one of ours)."""
    try:
        with tarfile.open(archive, mode="r:") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            return Manifest.from_json(json.loads(member.read()))
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupRefused(f"{archive} is not a readable backup ({exc})") from exc


def _safe_name(name: str) -> bool:
    pure = PurePosixPath(name)
    return not pure.is_absolute() and ".." not in pure.parts and "\\" not in name


def _extract_verified(archive: Path, manifest: Manifest, into: Path, report: Progress) -> None:
    """Extract every member named in the manifest, checking size and SHA-256 as it is read;
    BackupRefused on any mismatch, missing or unexpected member."""
    expected = dict(manifest.files)
    total = len(expected)
    done = 0
    with tarfile.open(archive, mode="r:") as tar:
        for info in tar:
            if info.name == MANIFEST:
                continue
            entry = expected.pop(info.name, None)
            if entry is None or not info.isfile() or not _safe_name(info.name):
                raise BackupRefused(f"the archive holds {info.name!r}, which its manifest lacks")
            out = into / info.name
            out.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(info)
            assert source is not None
            digest = hashlib.sha256()
            with out.open("wb") as fh:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != entry["sha256"] or out.stat().st_size != entry["size"]:
                raise BackupRefused(
                    f"{info.name} in the archive does not match its checksum: the archive is "
                    "damaged; nothing was restored"
                )
            done += 1
            report("verify", done, total)
    if expected:
        raise BackupRefused(f"the archive lacks {sorted(expected)[:5]}; nothing was restored")


def _occupied(engine: Engine) -> str | None:
    """Why the database at ``engine`` is not empty (a table with rows), or None."""
    with engine.connect() as connection:
        names = inspect(connection).get_table_names()
        for name in sorted(names):
            if name == "alembic_version":
                continue
            count = connection.execute(
                select(func.count()).select_from(Table(name, MetaData()))
            ).scalar_one()
            if count:
                return f"table {name} has {count} row(s)"
    return None


def _drop_everything(engine: Engine) -> None:
    metadata = MetaData()
    with engine.begin() as connection:
        metadata.reflect(connection)
        metadata.drop_all(connection)
        if connection.dialect.name == "postgresql":
            # The search's SQL function outlives its tables; the archive creates it again.
            from marketing.search import drop_pg_index

            drop_pg_index(connection)


@dataclass
class RestoreResult:
    manifest: Manifest
    media_files: int
    to_reconcile: int
    revision_now: str | None
    head: str | None
    advice: list[str] = field(default_factory=list)


def restore_backup(
    *,
    archive: Path,
    database_url: str,
    media_root: Path,
    force: bool = False,
    pg_bin_dir: Path | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> RestoreResult:
    """Restore ``archive`` into the database at ``database_url`` and ``media_root``.

    Refuses (BackupRefused, nothing changed) a damaged archive, a database of another kind
    than the archive's, and -- unless ``force`` -- a database with rows in it or a media file
    that would be overwritten with other content.  Afterwards, posts that may have been
    published since the backup are left to be reconciled (see the module docstring).
    """
    from marketing import migrate

    report = progress or _quiet
    manifest = read_manifest(archive)
    url = make_url(database_url)
    kind = url.get_backend_name()
    if kind != manifest.database:
        raise BackupRefused(
            f"the archive holds a {manifest.database} database; the target is {kind}. Set "
            "MARKETING_DATABASE_URL to a database of the same kind."
        )
    engine = make_engine(database_url) if kind != "sqlite" or _sqlite_exists(url) else None
    try:
        if engine is not None and not force:
            why = _occupied(engine)
            if why is not None:
                raise BackupRefused(
                    f"the target database is not empty ({why}); restore into a fresh "
                    "database, or add --force to replace everything in it"
                )
        with tempfile.TemporaryDirectory(prefix=".restore-", dir=_scratch(archive)) as tmp:
            work = Path(tmp)
            _extract_verified(archive, manifest, work, report)
            real_root = media_root.resolve()
            for name in manifest.media_files:
                destination = media_root / name[len(MEDIA_PREFIX) :]
                if destination.is_symlink() or not destination.resolve().is_relative_to(real_root):
                    raise BackupRefused(
                        f"{destination} is (or is under) a link that leads out of the media "
                        "folder; remove the link, then restore again"
                    )
            clashes = [
                name
                for name in manifest.media_files
                if (media_root / name[len(MEDIA_PREFIX) :]).exists()
                and _sha256(media_root / name[len(MEDIA_PREFIX) :])
                != manifest.files[name]["sha256"]
            ]
            if clashes and not force:
                raise BackupRefused(
                    f"{len(clashes)} media file(s) in {media_root} differ from the archive's "
                    f"(e.g. {clashes[0][len(MEDIA_PREFIX) :]}); add --force to overwrite them"
                )
            report("database", 0, 1)
            if kind == "sqlite":
                if engine is not None:
                    engine.dispose()
                _sqlite_restore(work / SQLITE_MEMBER, Path(str(url.database)))
            else:
                assert engine is not None
                if force:
                    _drop_everything(engine)
                server_major = _server_major(engine)
                needed = max(server_major, manifest.server_version or 0)
                tool = find_pg_tool("pg_restore", server_major=needed, bin_dir=pg_bin_dir)
                args, env = _libpq(url)
                _run_tool(
                    [str(tool), "--no-owner", "--no-privileges", "--exit-on-error",
                     "--single-transaction", *args, str(work / PG_MEMBER)],
                    env,
                    "pg_restore",
                )  # fmt: skip
            report("database", 1, 1)
            for done, name in enumerate(manifest.media_files, start=1):
                destination = media_root / name[len(MEDIA_PREFIX) :]
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(work / name, destination)
                report("media", done, len(manifest.media_files))
        fresh = make_engine(database_url)
        try:
            to_reconcile = mark_for_reconciliation(
                engine=fresh, since=manifest.created_at, now=now or utcnow()
            )
            revision_now = migrate.current_revision(fresh)
        finally:
            fresh.dispose()
    finally:
        if engine is not None:
            engine.dispose()
    head = migrate.head_revision()
    advice = [KEY_ADVICE]
    if revision_now != head:
        advice.insert(0, f"The database is at revision {revision_now}: run `marketing db upgrade`.")
    return RestoreResult(
        manifest=manifest,
        media_files=len(manifest.media_files),
        to_reconcile=to_reconcile,
        revision_now=revision_now,
        head=head,
        advice=advice,
    )


def _sqlite_exists(url: URL) -> bool:
    return url.database not in (None, "", ":memory:") and Path(str(url.database)).is_file()


def _scratch(archive: Path) -> Path:
    # Extract next to the archive (it has the room the archive needed), not in a small /tmp.
    return archive.resolve().parent


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)  # replaces every page of the target, WAL included
    finally:
        dst.close()
        src.close()


def mark_for_reconciliation(*, engine: Engine, since: datetime, now: datetime) -> int:
    """Settle the posts that could have gone out after the backup was taken (``since``):
    queued, publishing, or scheduled and due by ``now``.  Returns how many were touched.

    * Facebook and YouTube: an attempt of unknown outcome whose heartbeat stopped at
      ``since``; recovery asks the channel for the post's marker and publishes only if it is
      not there.  (Attempts already open stay as they are: they are reconciled anyway.)
    * E-mail: a relay cannot be asked what it sent, so the post becomes ``unconfirmed`` for a
      person, as when a worker dies mid-send: never sent again automatically.
    """
    from sqlalchemy import or_

    from marketing.db import session_scope
    from marketing.models import Attempt, AttemptOutcome, Post, PostState

    with session_scope(engine) as session:
        posts = session.scalars(
            select(Post).where(
                or_(
                    Post.state.in_([PostState.QUEUED, PostState.PUBLISHING]),
                    (Post.state == PostState.SCHEDULED) & (Post.next_try_at <= now),
                ),
            )
        ).all()
        for post in posts:
            if post.channel in channels_that(Capability.SEND_TO_MANY):
                for attempt in session.scalars(
                    select(Attempt).where(
                        Attempt.post_id == post.id, Attempt.outcome == AttemptOutcome.UNKNOWN
                    )
                ):
                    attempt.outcome = AttemptOutcome.UNCONFIRMED
                    attempt.finished_at = now
                post.state = PostState.UNCONFIRMED
                post.last_error = (
                    "Restored from a backup: this e-mail may have been sent after the backup."
                )
                post.action_hint = (
                    "Check the relay's log for it. If it went out: "
                    f"`marketing posts resolve {post.id} --published relay-log`; if not: "
                    f"`marketing posts retry {post.id}`."
                )
            elif post.state != PostState.PUBLISHING:
                post.attempt_count += 1
                session.add(
                    Attempt(
                        post_id=post.id,
                        number=post.attempt_count,
                        started_at=since,
                        heartbeat_at=since,
                        outcome=AttemptOutcome.UNKNOWN,
                        worker="restore",
                    )
                )
                post.state = PostState.PUBLISHING
            post.state_changed_at = now
        return len(posts)
