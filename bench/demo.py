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
        "**Demo and `marketing --help`** (#19). Each run starts `marketing demo` in a new "
        "temporary folder without `MARKETING_` settings (README's first command, after the "
        "install) and times it to its exit; it must succeed. Baseline in the same run: "
        "`python -c 'import marketing.web.app, tasks'`, the imports every demo pays, so the "
        "ratio follows the machine's load. `marketing --help`: the median of 5 starts a run, "
        "beside `python -c pass`."
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
