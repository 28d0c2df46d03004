r"""Subscriber lists uploaded through the web, imported in the background with progress.

The upload's request only stores an :class:`~marketing.models.ImportJob` and answers at once
with the job's page (``/imports/<key>``); the import itself runs in a thread of the web
process (one at a time per process, so SQLite's single writer is never contended by two
imports), which hands it to a worker process (:func:`marketing.bounded.run_bounded`: its own
interpreter, bounded in time and memory) and relays its progress -- off the event loop, outside
any request, and without pausing this process's threads for the parsing and garbage collection
of 100,000 rows:

    upload --> job WAITING --> RUNNING (checking, then saving n of N) --> DONE (counts, audit)
                                                                     \-> FAILED (problems)

The import is all or nothing, as from the command line: every problem is found before
anything is written, each at the line of the person's file (:func:`import_subscribers`), and
an unsubscribe already recorded stands.  The job's state and outcome are rows (any web
process can show them); the live count of rows saved is kept in the memory of the process
that runs the import, since the import's own transaction is invisible to others (and on
SQLite holds the write lock) until it commits.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path as FilePath
from typing import IO, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from marketing.bounded import BoundExceeded, report, run_bounded
from marketing.db import make_engine, session_scope, utcnow
from marketing.models import Community, ImportJob, ImportState, User
from marketing.problems import InvalidInput, Problem
from marketing.reference import ImportSummary
from marketing.subscriber_import import import_subscriber_csv
from marketing.web.staff import audit

log = logging.getLogger(__name__)

MAX_CSV_BYTES = 200_000_000  # the benchmark's million rows (Thai names, consent) are 140 MB
IMPORT_SECONDS = 1_800  # 1,000,000 rows take about a minute on a busy 2-core machine
IMPORT_MEMORY_BYTES = 1024**3  # the import is streamed: a million rows stay under 300 MB
MAX_PROBLEMS_KEPT = 1_000  # problems stored with a failed job; the count of the rest is kept
IMPORT_ACTION = "community.import_subscribers"
IMPORT_NICENESS = 10  # added to the import process's nice value (0 -> 10 on Linux)


def import_subscriber_file(
    *,
    session: Session,
    community: Community,
    path: FilePath,
    name: str,
    consent_source: str,
    consent_at: datetime,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportSummary:
    """Import the uploaded subscriber CSV at ``path`` into ``community``, streamed
    (:mod:`marketing.subscriber_import`: all or nothing; an unsubscribe already recorded
    stands).  Every row gets this community and, where its own cells are empty, the consent
    source and time given in the form; InvalidInput naming the upload's lines and fields."""
    if path.stat().st_size > MAX_CSV_BYTES:
        raise InvalidInput(
            [Problem(name, None, None, "", f"is larger than {MAX_CSV_BYTES:,} bytes")]
        )
    return import_subscriber_csv(
        session=session,
        path=path,
        name=name,
        community=community.slug,
        defaults={"consent_source": consent_source, "consent_at": consent_at.isoformat()},
        strip_header=True,
        progress=progress,
    )


def import_subscribers(
    *,
    session: Session,
    community: Community,
    data: bytes,
    name: str,
    consent_source: str,
    consent_at: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """:func:`import_subscriber_file` for an upload held in memory; ``progress(saved,
    total)``."""

    def told(stage: str, done: int, total: int) -> None:
        if progress is not None and stage == "saving":
            progress(done, total)

    with tempfile.TemporaryDirectory(prefix="mkt-subscribers-") as folder:
        path = FilePath(folder) / "subscribers.csv"
        path.write_bytes(data)
        return import_subscriber_file(
            session=session,
            community=community,
            path=path,
            name=name,
            consent_source=consent_source,
            consent_at=consent_at,
            progress=told,
        )


def save_upload(source: IO[bytes], *, name: str) -> FilePath:
    """Copy an upload to a private file of its own (the job reads it later, in another
    process), in pieces; InvalidInput if it is larger than MAX_CSV_BYTES.  The caller owns
    the file (:func:`start_import` hands it to the job, which removes it)."""
    fd, where = tempfile.mkstemp(prefix="mkt-subscribers-", suffix=".csv")
    path = FilePath(where)
    size = 0
    try:
        with open(fd, "wb") as out:
            while piece := source.read(1 << 20):
                size += len(piece)
                if size > MAX_CSV_BYTES:
                    raise InvalidInput(
                        [Problem(name, None, None, "", f"is larger than {MAX_CSV_BYTES:,} bytes")]
                    )
                out.write(piece)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@dataclass
class Progress:
    """How far a running import is: ``stage`` is "checking" or "saving" (``done`` of
    ``total`` subscribers)."""

    stage: str = "checking"
    done: int = 0
    total: int = 0


_runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="subscriber-import")
_lock = threading.Lock()
_progress: dict[str, Progress] = {}
_running: dict[str, Future[None]] = {}
# Called in the import's thread as each progress report arrives (key, progress): lets a test
# or a measurement see that an import is under way.
progress_reported: list[Callable[[str, Progress], None]] = []


def progress_of(key: str) -> Progress | None:
    """The live progress of import ``key`` if this process runs it, else None."""
    with _lock:
        found = _progress.get(key)
        return replace(found) if found is not None else None


def wait_for(key: str, timeout: float) -> bool:
    """Wait until import ``key`` (run by this process) has ended; False if it is still
    running after ``timeout`` seconds."""
    with _lock:
        future = _running.get(key)
    if future is None:
        return True
    try:
        future.result(timeout=timeout)
    except TimeoutError:
        return False
    return True


def start_import(
    *,
    engine: Engine,
    session: Session,
    community: Community,
    user: User,
    path: FilePath,
    name: str,
    consent_source: str,
    consent_at: datetime,
) -> str:
    """Record an import job for the upload saved at ``path`` (committing ``session``) and
    start it; its key.  The job removes the file when it ends."""
    key = secrets.token_urlsafe(18)
    session.add(
        ImportJob(key=key, community_id=community.id, file_name=name, created_by=user.username)
    )
    session.commit()
    with _lock:
        _progress[key] = Progress()
        _running[key] = _runner.submit(
            _run,
            engine=engine,
            key=key,
            user_id=user.id,
            path=str(path),
            name=name,
            consent_source=consent_source,
            consent_at=consent_at,
        )
    return key


def _report(key: str, stage: str, done: int, total: int) -> None:
    with _lock:
        progress = _progress.setdefault(key, Progress())
        progress.stage, progress.done, progress.total = stage, done, total
        seen = replace(progress)
    for hook in progress_reported:
        hook(key, seen)


def _problem_row(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "field": problem.field,
        "message": problem.message,
        "hint": problem.hint,
    }


def job_problems(job: ImportJob) -> list[Problem]:
    """The problems a failed job stored."""
    return [Problem(**row) for row in job.result.get("problems", [])]


def _finish(engine: Engine, key: str, state: ImportState, result: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        job = session.scalars(select(ImportJob).where(ImportJob.key == key)).one()
        job.state, job.result, job.finished_at = state, result, utcnow()


def _run(
    *,
    engine: Engine,
    key: str,
    user_id: int,
    path: str,
    name: str,
    consent_source: str,
    consent_at: datetime,
) -> None:
    """The job, in the runner's thread: the import itself runs in a worker process (its own
    interpreter, so its parsing and garbage collection never pause this process's requests),
    bounded by IMPORT_SECONDS and IMPORT_MEMORY_BYTES; this thread relays its progress."""
    job: dict[str, Any] = {
        "key": key,
        "user_id": user_id,
        "path": path,
        "name": name,
        "consent_source": consent_source,
        "consent_at": consent_at,
    }
    try:
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            # A private in-memory database cannot be opened by another process.
            _import(engine=engine, progress=lambda *m: _report(key, *m), **job)
            return
        try:
            run_bounded(
                _import_in_worker,
                url.render_as_string(hide_password=False),
                seconds=IMPORT_SECONDS,
                memory_bytes=IMPORT_MEMORY_BYTES,
                on_message=lambda message: _report(key, *message),
                **job,
            )
        except BoundExceeded as exc:
            if exc.kind == "time":
                message = f"การนำเข้าใช้เวลาเกิน {IMPORT_SECONDS // 60} นาที จึงหยุด"
            elif exc.kind == "memory":
                message = f"การนำเข้าใช้หน่วยความจำเกิน {IMPORT_MEMORY_BYTES // 2**20:,} MB จึงหยุด"
            else:
                message = "นำเข้าไม่สำเร็จเพราะข้อผิดพลาดภายในระบบ"
            problem = Problem(
                name,
                None,
                None,
                "",
                message + " ไม่มีข้อมูลใดถูกเปลี่ยน",
                "แบ่งไฟล์เป็นหลายไฟล์แล้วนำเข้าทีละไฟล์ ถ้ายังไม่ได้ให้แจ้งผู้ดูแลระบบ",
            )
            _finish(engine, key, ImportState.FAILED, {"problems": [_problem_row(problem)]})
    finally:
        FilePath(path).unlink(missing_ok=True)
        with _lock:
            _progress.pop(key, None)
            _running.pop(key, None)


def _import_in_worker(url: str, **job: Any) -> None:
    """The import, in a worker process of :func:`marketing.bounded.run_bounded`, at a lower
    CPU priority than the web workers: staff reading pages come first, the import takes
    what is left (#19)."""
    try:
        os.nice(IMPORT_NICENESS)
    except OSError:  # not allowed here: the import still runs, at the same priority
        log.info("the subscriber import could not lower its CPU priority")
    engine = make_engine(url)
    try:
        _import(engine=engine, progress=lambda *message: report(message), **job)
    finally:
        engine.dispose()


def _import(
    *,
    engine: Engine,
    key: str,
    user_id: int,
    path: str,
    name: str,
    consent_source: str,
    consent_at: datetime,
    progress: Callable[[str, int, int], None],
) -> None:
    """Run import job ``key`` to its end, recording the outcome on the job's row."""
    try:
        with session_scope(engine) as session:
            job = session.scalars(select(ImportJob).where(ImportJob.key == key)).one()
            job.state = ImportState.RUNNING
        progress("checking", 0, 0)
        with session_scope(engine) as session:
            job = session.scalars(select(ImportJob).where(ImportJob.key == key)).one()
            community = session.get(Community, job.community_id)
            user = session.get(User, user_id)
            assert community is not None
            summary = import_subscriber_file(
                session=session,
                community=community,
                path=FilePath(path),
                name=name,
                consent_source=consent_source,
                consent_at=consent_at,
                progress=progress,
            )
            counts = {
                outcome: summary.counts.get("subscribers", Counter()).get(outcome, 0)
                for outcome in ("created", "updated", "unchanged")
            }
            audit(
                session=session,
                user=user,
                actor=job.created_by,
                action=IMPORT_ACTION,
                object_type="community",
                object_id=community.slug,
                file=name,
                consent_source=consent_source,
                counts=counts,
            )
            job.state, job.result, job.finished_at = ImportState.DONE, {"counts": counts}, utcnow()
    except InvalidInput as exc:
        kept = exc.problems[:MAX_PROBLEMS_KEPT]
        _finish(
            engine,
            key,
            ImportState.FAILED,
            {
                "problems": [_problem_row(p) for p in kept],
                "more": len(exc.problems) - len(kept),
            },
        )
    except Exception:
        # No row data in the log: the traceback's type and place are enough to investigate.
        log.error("subscriber import %s failed", key, exc_info=False)
        log.debug("subscriber import %s failed", key, exc_info=True)
        problem = Problem(
            name,
            None,
            None,
            "",
            "นำเข้าไม่สำเร็จเพราะข้อผิดพลาดภายในระบบ ไม่มีข้อมูลใดถูกเปลี่ยน",
            "ลองนำเข้าอีกครั้ง ถ้ายังไม่ได้ให้แจ้งผู้ดูแลระบบ",
        )
        _finish(engine, key, ImportState.FAILED, {"problems": [_problem_row(problem)], "more": 0})
