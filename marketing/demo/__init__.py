"""``marketing demo``: the whole job on embedded defaults, in under a minute.

A fresh SQLite database and embedded broker in ``<data>/demo/``, the ten sample communities,
the three sandboxes started in this process, their Facebook Pages and YouTube channels
connected through the web app's connect flows (:mod:`marketing.demo.connect`: tokens only in
the encrypted store), a Thai campaign across Facebook, YouTube and
email applied and approved, a real Celery worker (with its beat) publishing everything,
engagement collected over a few compressed rounds (the sandboxes' clock jumps ahead; email
readers are simulated), then the programme overview on screen and HTML reports on disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from channels.sandbox.suite import SandboxSuite
from marketing import migrate
from marketing.db import dispose_engines, get_engine, session_scope, utcnow
from marketing.demo.connect import (
    connect_accounts,
    connect_settings,
    prepare_line,
    prepare_sandboxes,
)
from marketing.demo.worker import WORD
from marketing.media import install_media
from marketing.models import (
    Delivery,
    DeliveryState,
    EmailEventKind,
    Post,
    PostState,
)
from marketing.settings import get_settings, reset_settings

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "sample" / "communities.yaml"
FINAL = (
    PostState.PUBLISHED,
    PostState.FAILED,
    PostState.CANCELLED,
    PostState.UNCONFIRMED,
    PostState.NEEDS_RECONNECT,
)
ROUNDS = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=24), timedelta(days=3))


@dataclass
class DemoResult:
    """What the demo made and where it put it."""

    folder: Path
    posts: dict[str, int] = field(default_factory=dict)
    reports: list[Path] = field(default_factory=list)


def _fresh_folder(base: Path) -> Path:
    folder = (base / "demo").resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _settings_env(folder: Path, suite: SandboxSuite) -> dict[str, str]:
    return {
        "MARKETING_DATA_DIR": str(folder),
        "MARKETING_MEDIA_DIR": str(folder / "media"),
        "MARKETING_DATABASE_URL": f"sqlite:///{folder / 'marketing.sqlite3'}",
        "MARKETING_BROKER_URL": f"sqla+sqlite:///{folder / 'broker.sqlite3'}",
        "MARKETING_REDIS_URL": "",
        "MARKETING_DISPATCH_INTERVAL": "0.5",
        "MARKETING_QUEUE_LEASE": "10",
        "MARKETING_ATTEMPT_STALE_AFTER": "10",
        "MARKETING_RECONCILE_DELAY": "5",
        "MARKETING_BACKOFF_BASE": "1",
        "MARKETING_PUBLISH_RATE_PER_MINUTE": "600",
        "MARKETING_PUBLISH_BURST": "50",
        "MARKETING_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        **suite.settings_env(),
        **connect_settings(suite),
    }


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Run with ``values`` in the environment (and fresh settings), then put things back."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    reset_settings()
    dispose_engines(close=True)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        dispose_engines(close=True)


def _write_campaign(folder: Path) -> Path:
    """The demo campaign with its one occurrence a few seconds from now."""
    zone = get_settings().zone
    now = utcnow().astimezone(zone)
    # Due 1-2 s after this: still ahead when the campaign is planned a moment later (an
    # occurrence already past is not planned), and the worker has started by then (#19;
    # it was 2-3 s, and the worker started after the approval).
    at = (now + timedelta(seconds=2)).replace(microsecond=0)
    text = (HERE / "campaign.yaml").read_text(encoding="utf-8")
    text = (
        text.replace("__START__", now.date().isoformat())
        .replace("__END__", (now + timedelta(days=1)).date().isoformat())
        .replace("__AT__", at.isoformat())
    )
    target = folder / "campaign"
    target.mkdir(parents=True)
    media = get_settings().media_root / "demo"
    media.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "poster.png", media / "poster.png")
    shutil.copy(HERE / "clip.mp4", media / "clip.mp4")
    path = target / "demo-campaign.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _post_states() -> dict[PostState, int]:
    with session_scope() as session:
        return dict(session.execute(select(Post.state, func.count()).group_by(Post.state)).all())


def _simulate_readers() -> int:
    """Email engagement the sandboxes cannot make: some recipients open (and a few click)
    each email, decided by a hash so every run gives the same numbers."""
    from marketing.performance import record_email_event, rollup

    events = 0
    with session_scope() as session:
        sent = session.execute(
            select(Delivery.post_id, Delivery.subscriber_id).where(
                Delivery.state == DeliveryState.SENT
            )
        ).all()
        keys = set()
        for post_id, subscriber_id in sent:
            roll = hashlib.sha256(f"{post_id}:{subscriber_id}".encode()).digest()[0] / 255
            if roll < 0.6:
                keys |= record_email_event(
                    session=session,
                    post_id=post_id,
                    subscriber_id=subscriber_id,
                    kind=EmailEventKind.OPEN,
                )
                events += 1
            if roll < 0.25:
                keys |= record_email_event(
                    session=session,
                    post_id=post_id,
                    subscriber_id=subscriber_id,
                    kind=EmailEventKind.CLICK,
                    url="https://community.example.org/",
                )
                events += 1
        rollup(session=session, keys=keys)
    return events


def run_demo(*, base: Path, console: Console, worker_timeout: float = 45.0) -> DemoResult:
    """Run the whole job once, on embedded defaults, and return what it made."""
    folder = _fresh_folder(base)
    result = DemoResult(folder=folder)
    with SandboxSuite() as suite:
        env = _settings_env(folder, suite)
        with _environment(env):
            console.print(f"[bold]1/6[/] Database and sample data in {folder}")
            migrate.upgrade(get_engine())
            # The worker's process starts now: its imports (Celery, the tasks, every
            # channel's SDK) run beside the seeding and the connecting below, not after
            # them; it starts working once the campaign is approved (#19).
            worker = _start_worker(folder, env)
            try:
                from marketing.reference import import_reference

                install_media(
                    SAMPLE.parent / "media", root=get_settings().media_root, folder="sample"
                )
                with session_scope() as session:
                    import_reference(session=session, path=SAMPLE)
                channel_ids = prepare_sandboxes(suite)
                line_tokens = prepare_line(suite)
                _run_pipeline(
                    folder,
                    console,
                    result,
                    suite,
                    worker,
                    worker_timeout,
                    channel_ids,
                    line_tokens,
                )
            finally:
                _stop_worker(worker)
    return result


@dataclass
class _Worker:
    """The demo's worker process (leader of its own process group)."""

    process: subprocess.Popen[bytes]
    stopped: bool = False


def _start_worker(folder: Path, env: dict[str, str]) -> _Worker:
    """A real Celery worker with its beat on the demo's database and embedded broker, in
    its own process group, importing while the demo goes on (:mod:`marketing.demo.worker`;
    :func:`_release_worker` lets it start).  A prefetch of 10 a process: the embedded broker
    is polled every 0.1 s, and with one message a process each post waited a poll.  No
    ``-Q``: the worker consumes every queue of the configuration, and naming them here would
    import every channel module in this process before the worker could start."""
    log = (folder / "worker.log").open("wb")
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "marketing.demo.worker",
                "-A",
                "tasks",
                "worker",
                "-B",
                "-c",
                "2",
                "--prefetch-multiplier",
                "10",
                "--loglevel",
                "INFO",
                "-s",
                str(folder / "celerybeat-schedule"),
                "--without-mingle",
                "--without-gossip",
            ],
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()  # the worker has its own copy
    return _Worker(process)


def _release_worker(worker: _Worker) -> None:
    """Let the worker start: it has imported (or goes on importing) and now runs Celery."""
    stdin = worker.process.stdin
    assert stdin is not None
    with suppress(BrokenPipeError):  # it stopped: _watch_publishing says so
        stdin.write(f"{WORD}\n".encode())
        stdin.close()


def _stop_worker(worker: _Worker, *, done: bool = False) -> None:
    """End the worker and its beat (their own process group), once.  ``done``: every post
    is final and nothing of theirs is left to finish, so they are ended at once (a cold
    shutdown took about 5 s more -- the embedded broker's 2 s polls, the pool -- and left
    the beat ringing for a while after the worker had gone, #19).  Otherwise (a failure or
    Ctrl-C) first a warm shutdown, up to 15 s.  Called again, it reaps the ended process."""
    process = worker.process
    if worker.stopped:
        process.wait()
        return
    worker.stopped = True
    if process.stdin is not None and not process.stdin.closed:
        with suppress(BrokenPipeError):
            process.stdin.close()  # not started yet: it exits on end of input
    if not done and process.poll() is None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(15)
    with suppress(ProcessLookupError):  # the group is gone already
        os.killpg(process.pid, signal.SIGKILL)  # the beat too, and anything left
    if not done:
        process.wait()  # (done: reaped at the end; killed processes can take a while to go)


def _run_pipeline(
    folder: Path,
    console: Console,
    result: DemoResult,
    suite: SandboxSuite,
    worker: _Worker,
    worker_timeout: float,
    channel_ids: list[str],
    line_tokens: list[str],
) -> None:
    from campaigns.lifecycle import apply_campaign, approval_hash, approve_campaign

    console.print(
        "[bold]2/6[/] Sandboxes for the Graph API, YouTube, SMTP and LINE on 127.0.0.1 "
        f"(ports {suite.graph.port}, {suite.youtube.port}, {suite.smtp.port}, "
        f"{suite.line.port})"
    )
    connected = connect_accounts(channel_ids=channel_ids, line_tokens=line_tokens)
    console.print(
        f"    {connected.pages} Facebook Pages, {connected.channels} YouTube channels and "
        f"{connected.line} LINE Official Account(s) connected through the web app's connect "
        "flows (tokens encrypted in the database)"
    )
    path = _write_campaign(folder)
    with session_scope() as session:
        summary = apply_campaign(session=session, path=path, actor="demo")
        slug = summary.slug
    with session_scope() as session:
        shown = approval_hash(session=session, slug=slug)
        approve_campaign(session=session, slug=slug, actor="demo-approver", shown_hash=shown)
    total = sum(_post_states().values())
    console.print(
        f"[bold]3/6[/] Campaign applied and approved: {total} posts "
        f"({path.relative_to(folder.parent)})"
    )
    _release_worker(worker)
    # While the worker publishes this process mostly waits: import what the engagement
    # rounds and the reports need meanwhile, not after (#19).
    threading.Thread(target=_import_ahead, name="demo-imports", daemon=True).start()
    _watch_publishing(console, total, worker.process, folder, worker_timeout)
    _stop_worker(worker, done=True)
    states = _post_states()
    result.posts = {state.value: n for state, n in states.items()}

    from tasks import wiring
    from tasks.metrics import collect_metrics, rollup_recent

    wiring.reset()
    with Progress(
        TextColumn("[bold]5/6[/] Engagement, compressed"),
        BarColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as progress:
        task = progress.add_task("", total=len(ROUNDS) + 1)
        elapsed = timedelta(0)
        for age in ROUNDS:
            suite.advance(age - elapsed)
            elapsed = age
            collected = collect_metrics(force=True)
            progress.update(
                task,
                advance=1,
                description=f"{_age(age)} after posting: {collected['collected']} posts measured",
            )
        readers = _simulate_readers()
        rollup_recent(minutes=60)
        progress.update(task, advance=1, description=f"{readers} simulated email opens/clicks")
    _report(console, result, slug)


#: What the engagement rounds and the reports import (LINE's insight SDK is on first use).
AHEAD = (
    "tasks.metrics",
    "linebot.v3.insight",
    "marketing.performance",
    "marketing.reports",
    "marketing.reports.html",
    "marketing.reports.terminal",
    "marketing.cli.display",
)


def _import_ahead() -> None:
    for name in AHEAD:
        with suppress(ImportError):  # then it fails where it is used, and says so there
            import_module(name)


def _age(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


def _watch_publishing(
    console: Console,
    total: int,
    worker: subprocess.Popen[bytes],
    folder: Path,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    with Progress(
        TextColumn("[bold]4/6[/] Publishing"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.description}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("starting the worker", total=total)
        while True:
            states = _post_states()
            done = sum(states.get(s, 0) for s in FINAL)
            busy = states.get(PostState.PUBLISHING, 0) + states.get(PostState.QUEUED, 0)
            progress.update(task, completed=done, description=f"({busy} in flight)" if busy else "")
            if done >= total:
                return
            if worker.poll() is not None:
                raise RuntimeError(f"the worker stopped; see {folder / 'worker.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"publishing did not finish within {timeout:.0f} s ({states}); "
                    f"see {folder / 'worker.log'}"
                )
            time.sleep(0.3)


def _report(console: Console, result: DemoResult, slug: str) -> None:
    from marketing.cli import display
    from marketing.reports import campaign_report, community_report, programme_overview
    from marketing.reports.exports import Report
    from marketing.reports.html import render_html
    from marketing.reports.period import last_days, today_in
    from marketing.reports.terminal import renderables

    settings = get_settings()
    period = last_days(today=today_in(settings.zone), days=7)
    out = result.folder / "reports"
    out.mkdir(exist_ok=True)
    with session_scope() as session:
        overview = programme_overview(session=session, start=period.start, end=period.end)
        reports: dict[str, Report] = {
            "overview.html": overview,
            f"campaign-{slug}.html": campaign_report(session=session, campaign_slug=slug),
        }
        for row in overview.rows:
            reports[f"community-{row.community.slug}.html"] = community_report(
                session=session,
                community_slug=row.community.slug,
                start=period.start,
                end=period.end,
            )
    console.print("[bold]6/6[/] Programme overview, last 7 days")
    shown = display.current()
    console.print(
        renderables(
            overview,
            buddhist_era=shown.buddhist_era,
            zone=settings.zone,
            language=shown.language,
            gettext=shown._,
            width=console.width,
        )
    )
    for name, report in reports.items():
        path = out / name
        path.write_text(
            render_html(report, buddhist_era=True, zone=settings.zone), encoding="utf-8"
        )
        result.reports.append(path)
