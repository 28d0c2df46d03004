"""``marketing demo`` as a newcomer runs it, and ``marketing --help``, timed from outside.

Each run starts ``marketing demo`` (the script next to this Python) in a new temporary
folder with no ``MARKETING_`` settings, as README's first command does, and times it to its
exit; its baseline in the same run is ``python -c`` importing the web app and the worker's
tasks -- the imports every demo pays, so the ratio follows the machine's load.
``marketing --help`` is timed 5 times a run (median) beside ``python -c pass``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

from bench.base import Benchmark
from bench.results import Figure, Target

MARKETING = str(Path(sys.executable).parent / "marketing")
IMPORTS = "import marketing.web.app, tasks"
HELP_TIMES = 5


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}


def timed(command: list[str], *, cwd: Path | None = None, timeout: float = 300) -> float:
    """Seconds from start to exit of ``command``; it must succeed."""
    began = time.monotonic()
    done = subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}): {done.stdout[-2000:]}"
            f"{done.stderr[-2000:]}"
        )
    return seconds


class DemoTime(Benchmark):
    name = "demo"
    full_runs: ClassVar[int] = 3
    note = (
        "**Demo and `marketing --help`** (`bench/demo.py`, #19). Each run starts "
        "`marketing demo` in a new "
        "temporary folder without `MARKETING_` settings (README's first command, after the "
        "install) and times it to its exit; it must succeed. Baseline in the same run: "
        "`python -c 'import marketing.web.app, tasks'`, the imports every demo pays, so the "
        "ratio follows the machine's load. `marketing --help`: the median of 5 starts a run, "
        "beside `python -c pass`."
    )
    findings = (
        "*Measured* 2026-12-01 on a machine shared with seven other engineers' runs. "
        "`python -m bench --only demo --runs 3` at load average 21-26 on 2 cores: the "
        "demo 55.9 s (54.2-64.1), 0.31 of its baseline (16.8 s for imports that take "
        "about 2.5 s on a quiet machine); `--help` 0.39 s (0.18-0.67) beside `python -c "
        "pass` 0.20 s. A quick run at load 5.5: demo 22.4 s, `--help` 0.135 s; "
        "`/usr/bin/time marketing --help` at load 7: 0.05-0.08 s. Beside main's build in "
        "the same minutes (`/usr/bin/time`, fresh folder each, main and this branch "
        "alternating, load 9-24): main 44.3, 40.6, 47.3, 53.8 s, this branch 20.5, 24.5, "
        "22.5, 44.6 s; user CPU of the demo and its worker 10.3-11.1 -> 6.8-7.9 s; the "
        "imports baseline over the demo in the same minute 0.13-0.17 -> 0.23-0.34. One "
        "run with step timings at load 6: 12.9 s to exit (start-up and imports 1.8 s, "
        "seeding 0.3 s, connecting through the web app 4.6 s, approval to every post "
        "final 3.6 s of which 1.9 s waiting for the due time, engagement 1.1 s, reports "
        "0.6 s, exit 0.1 s). So the 15 s target was met at load 6 in that run and is not "
        "met at load 9 and more, where every process gets a fraction of a core. "
        "*Profiled* (pyinstrument on the demo process, step timings, Celery's stack dump, "
        "`strace` of the exit): before, the worker's cold shutdown took 5.1 s after the "
        "last post (the embedded broker's 2 s polls and the pool; its beat went on "
        "ringing after the worker had gone); the worker started after the approval and "
        "each of its pool processes imported the LINE SDK (about 1 s of CPU) on its first "
        "LINE post; one post a 0.1 s broker poll per process (prefetch 1 with late acks: "
        "40 posts in 3.5 s); posts due 2-3 s after the approval; and after the last line "
        "2-3 s of the interpreter collecting about 400,000 objects on its way out. "
        "*Changed* (`marketing/demo/`): the worker's process starts once the database "
        "exists and imports Celery, the tasks, every channel and the LINE SDK while the "
        "demo seeds and connects, then starts on a word when the campaign is approved "
        "(not earlier: its beat writes heartbeats at once, and a SQLite transaction that "
        'read before another connection\'s write fails at once with "database is locked" '
        "when it then writes -- the connect flows met that); `--prefetch-multiplier 10` "
        "(40 posts in 1.1-1.7 s); posts due 1-2 s after the campaign is written; the "
        "worker and its beat ended at once (their process group) when every post is "
        "final; the admin's argon2 hash on a thread while the web app imports; the "
        "engagement and report modules imported while the worker publishes; `gc.freeze()` "
        "before exit. *Remaining* (pyinstrument of this branch at load 20, shares of the "
        "demo process's 50 s): connecting 38 % (the web app's import -- FastAPI, every "
        "page module, googleapiclient through `marketing.creators` -- the LINE form's "
        "check importing `linebot.v3.messaging` in this process too, the sign-in's "
        "argon2), waiting for publishing 19 %, the engagement rounds 18 % (YouTube builds "
        "its discovery resources on every connection: `Resource.methodResource`; token "
        "bookkeeping), reports 6 %. *Then* (#19): YouTube's client is built once per "
        "adapter from the discovery document and each of its collections once "
        "(`channels/youtube.py`; "
        "`fetch_metrics` against the sandbox 2.6-3.2 -> 0.6 ms of CPU a call at load 4.6); "
        "the production worker imports the LINE SDK on `worker_init`, before its pool forks "
        "(`tasks/app.py`; `import tasks` 4.8 s and the SDK 3.4 s more at load 9.6, now paid "
        "once, not by each pool process); the CLI's consoles are made on first use, so "
        "`--help` imports no `rich.console`: median of 10 beside `python -c pass`, main's "
        "build and this one alternating at load 6.4-6.7, 0.097-0.183 -> 0.054-0.062 s "
        "(`pass` 0.02-0.05 s)."
    )

    def __init__(self, *, quick: bool) -> None:
        super().__init__(quick=quick)
        self.demo = Figure(
            self.name,
            "`marketing demo`, fresh folder, start to exit",
            "s",
            higher_is_better=False,
            baseline_name="import web app + tasks",
            target=Target("at_most", 15.0, "< 15 s"),
        )
        self.help = Figure(
            self.name,
            "`marketing --help`, start to exit (median of 5)",
            "s",
            higher_is_better=False,
            baseline_name="python -c pass",
            target=Target("at_most", 0.3, "<= 0.3 s"),
        )

    def figures(self) -> list[Figure]:
        return [self.demo, self.help]

    def run_once(self, run: int) -> None:
        baseline = timed([sys.executable, "-c", IMPORTS])
        with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
            self.demo.add(timed([MARKETING, "demo"], cwd=Path(folder)), baseline)
        helps = [timed([MARKETING, "--help"]) for _ in range(HELP_TIMES)]
        bare = [timed([sys.executable, "-c", "pass"]) for _ in range(HELP_TIMES)]
        self.help.add(statistics.median(helps), statistics.median(bare))
