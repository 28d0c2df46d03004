"""``python -m bench``: run the benchmarks, print the table, write docs/benchmarks.md.

``--quick`` runs each benchmark once at a small size and writes nothing (a smoke run CI may
call; it checks no threshold).  The full run (the default) runs each benchmark ``--runs``
times and writes ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.base import Benchmark
from bench.results import HEADERS, Figure, as_json, load_average, markdown, rows
from bench.services import ROOT

DOC = ROOT / "docs" / "benchmarks.md"


def benchmarks() -> list[type[Benchmark]]:
    """Every benchmark, in the order they run."""
    from bench.besttimes import BestTimeLearning
    from bench.demo import DemoTime
    from bench.email_fanout import EmailFanOut
    from bench.lateness import Lateness
    from bench.metrics_ingest import MetricsIngest
    from bench.pages import PagesUnderLoad
    from bench.planning import CampaignPlanning
    from bench.publish import PublishThroughput
    from bench.reports import ReportsAtScale
    from bench.subscriber_import import SubscriberImport
    from bench.variants import VariantRule

    return [
        PublishThroughput,
        Lateness,
        EmailFanOut,
        MetricsIngest,
        ReportsAtScale,
        CampaignPlanning,
        SubscriberImport,
        VariantRule,
        BestTimeLearning,
        PagesUnderLoad,
        DemoTime,
    ]


def table(figures: Sequence[Figure], title: str) -> Table:
    out = Table(title=title, show_lines=False)
    for header in HEADERS:
        out.add_column(header, overflow="fold")
    for row in rows(figures):
        style = "red" if row[-1] == "MISSED" else None
        out.add_row(*row, style=style)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run, no doc")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs of each (full: 3, email and metrics 2)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated benchmark names (the doc is not written)"
    )
    parser.add_argument(
        "--output", type=Path, default=DOC, help="where the full run writes its page"
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write every figure to this JSON file"
    )
    args = parser.parse_args(argv)
    chosen = [c for c in benchmarks() if not args.only or c.name in args.only.split(",")]
    if not chosen:
        names = ", ".join(c.name for c in benchmarks())
        parser.error(f"no benchmark called {args.only!r}; there are: {names}")

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console() if sys.stdout.isatty() else Console(width=200)
    started, clock, load_before = datetime.now(UTC), time.monotonic(), load_average()
    figures: list[Figure] = []
    notes: list[str] = []
    failed: list[str] = []
    runs_of: dict[str, int] = {}
    for cls in chosen:
        bench = cls(quick=args.quick)
        runs = runs_of[bench.name] = args.runs or (1 if args.quick else cls.full_runs)
        console.print(f"[bold]{bench.name}[/bold]: setting up")
        try:
            bench.setup()
            for run in range(runs):
                began = time.monotonic()
                bench.run_once(run)
                console.print(
                    f"  {bench.name}: run {run + 1}/{runs} ({time.monotonic() - began:.0f} s)"
                )
        except Exception:
            failed.append(bench.name)
            console.print(f"[red]{bench.name} failed[/red]\n{traceback.format_exc()}")
        finally:
            bench.close()
        done = [f for f in bench.figures() if f.values]
        figures += done
        notes.append(bench.note + ("\n\n" + bench.findings if bench.findings else ""))
        if done:
            console.print(table(done, bench.name))
    seconds = time.monotonic() - clock
    console.print(table(figures, "All figures"))
    if args.json:
        args.json.write_text(json.dumps([as_json(f) for f in figures], indent=2), encoding="utf-8")
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
        return 1
    if not args.quick and not args.only:
        args.output.write_text(
            markdown(
                figures,
                runs=runs_of,
                started=started,
                seconds=seconds,
                loads=(load_before, load_average()),
                notes=notes,
            ),
            encoding="utf-8",
        )
        console.print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
