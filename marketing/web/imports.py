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

import csv
import io
import logging
import re
import secrets
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path as FilePath
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from marketing.bounded import BoundExceeded, report, run_bounded
from marketing.db import make_engine, session_scope, utcnow
from marketing.models import Community, ImportJob, ImportState, User
from marketing.problems import InvalidInput, Problem
from marketing.reference import ImportSummary, csv_rows, import_reference
from marketing.web.staff import audit

log = logging.getLogger(__name__)

MAX_CSV_BYTES = 5_000_000
IMPORT_SECONDS = 1_800  # 100,000 rows take about 2.5 minutes on a busy 2-core machine
IMPORT_MEMORY_BYTES = 2 * 1024**3
MAX_PROBLEMS_KEPT = 1_000  # problems stored with a failed job; the count of the rest is kept
IMPORT_ACTION = "community.import_subscribers"

_ROW = re.compile(r"^subscribers\[(\d+)\]")


def subscriber_csv(
    data: bytes,
    *,
    name: str,
    community: str,
    consent_source: str,
    consent_at: datetime,
) -> tuple[str, list[int]]:
    """An uploaded subscriber list as the reference importer's CSV, and the line of the
    upload each row came from.  Every row gets this community and, where its own cells are
    empty, the consent source and time given in the form."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [Problem(name, None, None, "", "is not UTF-8 text", "save the CSV as UTF-8")]
        ) from exc
    if "\x00" in text:
        raise InvalidInput([Problem(name, None, None, "", "contains a NUL character (not text)")])
    fieldnames, rows = csv_rows(text, name)
    header = [h.strip() for h in fieldnames]
    if "email" not in header:
        raise InvalidInput(
            [
                Problem(
                    name,
                    1,
                    1,
                    "(header)",
                    "has no email column",
                    "the first line names the columns: email,name,consent_source,consent_at,"
                    "tags (only email is required here)",
                )
            ]
        )
    columns = [c for c in header if c and c != "community"]
    extra = [c for c in ("consent_source", "consent_at") if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=["community", *columns, *extra], lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    lines = []
    for line, cells in rows:
        values = {k: v for k, v in zip(header, cells, strict=False) if k}
        values["community"] = community
        values["consent_source"] = values.get("consent_source") or consent_source
        values["consent_at"] = values.get("consent_at") or consent_at.isoformat()
        writer.writerow(values)
        lines.append(line)
    return out.getvalue(), lines


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
    """Import an uploaded subscriber CSV into ``community`` with the reference importer (all
    or nothing; an unsubscribe already recorded stands); InvalidInput naming the upload's
    lines and fields."""
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(
            [Problem(name, None, None, "", f"is larger than {MAX_CSV_BYTES:,} bytes")]
        )
    body, lines = subscriber_csv(
        data,
        name=name,
        community=community.slug,
        consent_source=consent_source,
        consent_at=consent_at,
    )
    with tempfile.TemporaryDirectory(prefix="mkt-subscribers-") as folder:
        path = FilePath(folder) / "subscribers.csv"
        path.write_text(body, encoding="utf-8")
        try:
            return import_reference(session=session, path=path, progress=progress)
        except InvalidInput as exc:
            problems = []
            for problem in exc.problems:
                row = _ROW.match(problem.field)
                line = lines[int(row[1])] if row and int(row[1]) < len(lines) else problem.line
                problems.append(replace(problem, file=name, line=line))
            raise InvalidInput(problems) from None


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
    data: bytes,
    name: str,
    consent_source: str,
    consent_at: datetime,
) -> str:
    """Record an import job for ``data`` (committing ``session``) and start it; its key."""
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
            data=data,
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
    data: bytes,
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
        "data": data,
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
        with _lock:
            _progress.pop(key, None)
            _running.pop(key, None)


def _import_in_worker(url: str, **job: Any) -> None:
    """The import, in a worker process of :func:`marketing.bounded.run_bounded`."""
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
    data: bytes,
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
            summary = import_subscribers(
                session=session,
                community=community,
                data=data,
                name=name,
                consent_source=consent_source,
                consent_at=consent_at,
                progress=lambda done, total: progress("saving", done, total),
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
