"""The demo's worker process: it imports ahead, starts only on the demo's word, and is ended
with everything it started (#19)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from marketing.demo import _stop_worker, _Worker

pytestmark = pytest.mark.slow


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_worker_without_the_word_imports_and_exits_without_starting_celery() -> None:
    """End of input before ``start`` (the demo failed or was stopped while seeding): the
    process exits on its own, and no Celery worker ever started."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "marketing.demo.worker", "-A", "tasks", "worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = worker.communicate("", timeout=120)
    assert worker.returncode == 0, out
    assert "celery@" not in out and "[tasks]" not in out


def test_worker_after_the_word_runs_celerys_command_line() -> None:
    """After ``start`` it is Celery's own command line with the arguments it was given."""
    worker = subprocess.run(
        [sys.executable, "-m", "marketing.demo.worker", "--version"],
        input="start\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr
    import celery

    assert worker.stdout.split()[0] == celery.__version__


def test_stop_when_done_ends_the_whole_process_group_at_once() -> None:
    """Every post final: the worker and what it started (its beat, its pool) are ended at
    once, none left running after the demo; a second call reaps it."""
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)",
        ],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while len(_members(leader.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_members(leader.pid)) == 2  # the leader and its child, one group
    worker = _Worker(leader)
    began = time.monotonic()
    _stop_worker(worker, done=True)
    _stop_worker(worker)  # at the end of the demo: reaps the leader
    assert leader.returncode == -9
    deadline = time.monotonic() + 10
    while _group_alive(leader.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(leader.pid)  # the child went with it
    assert time.monotonic() - began < 10  # (not the warm shutdown's 15 s wait)


def test_stop_after_a_failure_asks_first_then_ends_what_is_left() -> None:
    """Not done (a failure, Ctrl-C): a warm shutdown is asked for (SIGTERM), then the group
    is ended, so a child that outlived its leader does not stay behind."""
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, subprocess, sys, time\n"
            "subprocess.Popen(['sleep', '300'])\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
            "print('ready', flush=True)\n"
            "time.sleep(300)\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert leader.stdout is not None and leader.stdout.readline().strip() == b"ready"
    _stop_worker(_Worker(leader))
    leader.stdout.close()
    assert leader.returncode == 3  # it was asked, and answered
    deadline = time.monotonic() + 10
    while _group_alive(leader.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(leader.pid)


def _members(pgid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]
