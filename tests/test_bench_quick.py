"""``python -m bench --quick`` runs every benchmark once at a small size and prints each
figure beside its baseline and ratio (a smoke test: no thresholds are checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import benchmarks
from bench.services import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_quick_run_prints_every_figure_with_its_baseline_and_ratio(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(figures_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=480,  # a guard against a hung run, not a threshold: the demo adds ~15-60 s
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    figures = json.loads(figures_file.read_text(encoding="utf-8"))
    assert {f["benchmark"] for f in figures} == {b.name for b in benchmarks()}
    for figure in figures:
        assert figure["values"] and figure["baselines"], figure
        assert figure["ratio"] is not None and figure["ratio"] > 0, figure
        # The table names each figure and shows its ratio.
        assert figure["name"][:20] in " ".join(done.stdout.split()), figure["name"]
    assert "All figures" in done.stdout
    assert "wrote" not in done.stdout  # a quick run never writes docs/benchmarks.md
