"""Figures, their baselines and targets; the table and the Markdown page they end up in.

A :class:`Figure` holds one measurement per run beside the baseline measured in the same run.
Its ratio is taken per run (ours against the baseline of that run, so a busy moment on the
shared machine slows both) and summarised by the median.  The ratio always reads "how close
to the baseline": 1.0 is as fast as the baseline, 0.5 half as fast -- for rates it is
``ours / baseline``, for times ``baseline / ours``.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Literal

TargetKind = Literal["ratio_at_least", "at_most", "at_least"]


@dataclass(frozen=True)
class Target:
    """What a figure should reach: a ratio to its baseline or a bound on its own value."""

    kind: TargetKind
    bound: float
    text: str

    def met(self, figure: Figure) -> bool:
        if self.kind == "ratio_at_least":
            return figure.ratio is not None and figure.ratio >= self.bound
        if self.kind == "at_most":
            return figure.median <= self.bound
        return figure.median >= self.bound


@dataclass
class Figure:
    """One measured figure: a value per run, and the baseline of each run."""

    benchmark: str
    name: str
    unit: str
    higher_is_better: bool
    baseline_name: str = ""
    target: Target | None = None
    note: str = ""
    values: list[float] = field(default_factory=list)
    baselines: list[float] = field(default_factory=list)

    def add(self, value: float, baseline: float | None = None) -> None:
        self.values.append(value)
        if baseline is not None:
            self.baselines.append(baseline)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baselines) if self.baselines else None

    @property
    def ratios(self) -> list[float]:
        pairs = zip(self.values, self.baselines, strict=False)
        if self.higher_is_better:
            return [ours / base for ours, base in pairs if base]
        return [base / ours for ours, base in pairs if ours]

    @property
    def ratio(self) -> float | None:
        ratios = self.ratios
        return statistics.median(ratios) if ratios else None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self)


def as_json(figure: Figure) -> dict[str, object]:
    """A figure as plain data (``python -m bench --json``)."""
    return {
        "benchmark": figure.benchmark,
        "name": figure.name,
        "unit": figure.unit,
        "values": figure.values,
        "baseline": figure.baseline_name,
        "baselines": figure.baselines,
        "ratio": figure.ratio,
        "target": figure.target.text if figure.target else None,
        "met": figure.met,
    }


def number(value: float) -> str:
    """A figure with about three significant digits."""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def spread(values: Sequence[float]) -> str:
    """``median (min-max)`` of several runs; just the value for one run."""
    if not values:
        return "-"
    middle = number(statistics.median(values))
    if len(values) == 1:
        return middle
    return f"{middle} ({number(min(values))}-{number(max(values))})"


def verdict(figure: Figure) -> str:
    met = figure.met
    return "-" if met is None else ("met" if met else "MISSED")


def rows(figures: Sequence[Figure]) -> list[list[str]]:
    """The table rows: benchmark, figure, value, baseline, ratio, target, verdict."""
    out = []
    for f in figures:
        baseline = f"{f.baseline_name}: {spread(f.baselines)} {f.unit}" if f.baselines else "-"
        ratios = f.ratios
        ratio = spread(ratios) if ratios else "-"
        out.append(
            [
                f.benchmark,
                f.name,
                f"{spread(f.values)} {f.unit}",
                baseline,
                ratio,
                f.target.text if f.target else "-",
                verdict(f),
            ]
        )
    return out


HEADERS = ["benchmark", "figure", "ours, median (min-max)", "baseline", "ratio", "target", ""]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _command(*args: str) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout else "?"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "?"


def _postgres_version() -> str:
    import psycopg

    from bench.services import PG_ADMIN_URL

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return "?"
    return f"{row[0]} (server)" if row else "?"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    return {
        "CPU": f"{_cpu()}, {os.cpu_count()} cores",
        "memory": _memory(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "PostgreSQL": _postgres_version(),
        "SQLite": sqlite3.sqlite_version,
        "Redis": _command("redis-server", "--version"),
        "packages": ", ".join(
            f"{name} {_version(name)}"
            for name in ("celery", "kombu", "SQLAlchemy", "psycopg", "Jinja2", "aiosmtpd")
        ),
    }


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "?"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def markdown(
    figures: Sequence[Figure],
    *,
    runs: dict[str, int],
    started: datetime,
    seconds: float,
    loads: tuple[str, str],
    notes: Sequence[str],
) -> str:
    """The page ``docs/benchmarks.md``: how it was measured, the table, and the notes."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (the full run); `python -m bench --quick` is a short smoke",
        "run that writes nothing. Every figure stands beside a baseline measured in the same run",
        "on the same machine, since absolute times vary from run to run here. How each",
        "benchmark works and what was done about each target is in the notes under the table.",
        "",
        "## The run",
        "",
        f"- when: {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} minutes; "
        "runs of each benchmark: "
        + ", ".join(f"{name} {n}" for name, n in runs.items())
        + " (each figure: median, min-max in brackets)",
        "- the machine was **shared** with other engineers running their tests during the run "
        f"(load average at start {loads[0]}, at the end {loads[1]}); a ratio is taken within "
        "one run, so both sides of it saw the same load",
    ]
    lines += [f"- {name}: {value}" for name, value in machine().items()]
    lines += [
        "",
        "## Figures",
        "",
        "ratio: how close to the baseline, per run, then the median (1.0 = as fast as the "
        "baseline; rates: ours / baseline, times: baseline / ours).",
        "",
        "| " + " | ".join(HEADERS[:-1] + ["met?"]) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for row in rows(figures):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines += ["", "## Notes", ""]
    for note in notes:
        lines += [note.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
