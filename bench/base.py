"""What every benchmark module provides: its figures, a setup, one run, and a cleanup."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from bench.results import Figure


class Benchmark(ABC):
    """One benchmark.  ``run_once`` adds one value (and its baseline) to each figure; the
    runner calls it several times between :meth:`setup` and :meth:`close`."""

    name: ClassVar[str]
    #: What it measures and how, for docs/benchmarks.md (Markdown).
    note: ClassVar[str]
    #: What was profiled, what was fixed and what remains (Markdown; empty: nothing to say).
    findings: ClassVar[str] = ""
    #: Runs in a full run (the long ones run fewer times).
    full_runs: ClassVar[int] = 3

    def __init__(self, *, quick: bool) -> None:
        self.quick = quick

    @abstractmethod
    def figures(self) -> list[Figure]:
        """The figures this benchmark fills."""

    def setup(self) -> None:  # noqa: B027 - optional: not every benchmark starts anything
        """Start what every run needs (databases, servers, workers)."""

    @abstractmethod
    def run_once(self, run: int) -> None:
        """Measure once; ``run`` counts from 0."""

    def close(self) -> None:  # noqa: B027 - optional, like setup
        """Stop and remove everything :meth:`setup` and the runs started."""
