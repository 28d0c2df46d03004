"""Real services for benchmarks and tests: a private Redis server, a private PostgreSQL
database, Celery worker processes and a look at their memory.  Each is started for the run
that needs it and always stopped afterwards; the machine's shared services are never
restarted.  (``tests/support/services.py`` re-exports these for the test suite.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import redis as redis_lib

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("MARKETING_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.05, what: str = ""
) -> None:
    """Poll ``predicate`` until it is true; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what or predicate}")


class RedisServer:
    """A private ``redis-server`` on a free port, with no persistence (like production's)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mkt-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis_lib.Redis.from_url(self.url)
        wait_until(lambda: _redis_up(client), timeout=10, what="redis-server to start")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, pause: float = 0.5) -> None:
        """Kill the server (losing every message, as Redis without persistence does) and
        start it again on the same port."""
        self.stop()
        time.sleep(pause)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _redis_up(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.ConnectionError:
        return False


class PostgresDatabase:
    """A database of its own on the machine's PostgreSQL, dropped at the end."""

    def __init__(self, prefix: str = "mkt_test") -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    @property
    def url(self) -> str:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        return f"{base}/{self.name}"

    @property
    def libpq_url(self) -> str:
        """The URL for psycopg itself (no SQLAlchemy driver suffix)."""
        return self.url.replace("postgresql+psycopg://", "postgresql://")

    def create(self) -> PostgresDatabase:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE \"{self.name}\" ENCODING 'UTF8' TEMPLATE template0")
        return self

    def drop(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class CeleryWorker:
    """``celery -A <app> worker`` as a real child process with its own environment."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        name: str = "w1",
        concurrency: int = 1,
        queues: str | None = None,
        beat: bool = False,
        log_dir: Path | None = None,
        app: str = "tasks",
        loglevel: str = "INFO",
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.env = {**os.environ, **env}
        # A command the worker runs under, e.g. ("ip", "netns", "exec", NAME): it must exec
        # the worker (not fork it), so the process group is still the worker's own.
        self.prefix = prefix
        self.name = name
        self.concurrency = concurrency
        self.queues = queues
        self.beat = beat
        self.app = app
        self.loglevel = loglevel
        self.log_path = (log_dir or Path(tempfile.mkdtemp())) / f"worker-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait: bool = True) -> CeleryWorker:
        cmd = [
            *self.prefix,
            sys.executable,
            *("-m", "celery", "-A", self.app, "worker", "-n", f"{self.name}@%h"),
            *("-c", str(self.concurrency), "-P", "prefork", "--loglevel", self.loglevel),
            "--without-mingle",
            "--without-gossip",
        ]
        if self.queues:
            cmd += ["-Q", self.queues]
        if self.beat:
            cmd += ["-B", "-s", str(self.log_path.with_suffix(".schedule"))]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait:
            wait_until(self._ready, timeout=60, interval=0.1, what=f"worker {self.name} ready")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited:\n{self.log()[-3000:]}")
        # At INFO the worker says "ready."; at WARNING it says nothing, so look for the
        # pool's children instead (they exist once the worker consumes).
        if " ready." in self.log():
            return True
        return self.loglevel.upper() != "INFO" and len(self.children()) >= self.concurrency

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def children(self) -> list[int]:
        """Process ids of the worker's pool processes (and beat, if embedded)."""
        if self.proc is None:
            return []
        return [pid for pid in processes_in_group(self.proc.pid) if pid != self.proc.pid]

    def peak_memory(self) -> int:
        """The largest peak resident set (bytes, VmHWM) of any pool process so far."""
        return max((peak_rss(pid) for pid in self.children()), default=0)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker and its children (the whole process group); with
        SIGKILL, return once every process of the group is gone."""
        if self.proc and self.proc.poll() is None:
            group = self.proc.pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
            self.proc.wait(30)
            if sig == signal.SIGKILL:
                wait_until(
                    lambda: not _alive(processes_in_group(group)),
                    timeout=30,
                    what=f"every process of worker {self.name} to die",
                )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


def processes_in_group(pgid: int) -> list[int]:
    """Process ids whose process group is ``pgid`` (Linux: read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces) start after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (a zombie, killed and not yet reaped, does not)."""
    running = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].split()[0] != "Z":
            running.append(pid)
    return running


def peak_rss(pid: int) -> int:
    """Peak resident set size of process ``pid`` in bytes (VmHWM), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextlib.contextmanager
def running(*workers: CeleryWorker) -> Iterator[tuple[CeleryWorker, ...]]:
    """Start workers and always stop them, even when the run fails."""
    try:
        for worker in workers:
            worker.start()
        yield workers
    finally:
        for worker in workers:
            worker.stop()
