"""``marketing serve`` runs the app through :func:`marketing.web.serving_app`, which moves
what start-up made out of the garbage collector's sight (#19)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.services import ROOT
from marketing.cli import main


def test_serve_runs_the_serving_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: list[tuple[tuple[object, ...], dict[str, object]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.append((a, k)))
    result = CliRunner().invoke(main, ["serve", "--host", "127.0.0.1", "--port", "8000"])
    assert result.exit_code == 0, result.output
    ((args, kwargs),) = seen
    assert args == ("marketing.web:serving_app",)
    assert kwargs["factory"] is True


def test_the_serving_factory_freezes_what_start_up_made(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env |= {
        "MARKETING_DATA_DIR": str(tmp_path),
        "MARKETING_DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}",
    }
    code = (
        "import gc, marketing.web as web\n"
        "before = gc.get_freeze_count()\n"
        "app = web.serving_app()\n"
        "print(before, gc.get_freeze_count(), type(app).__name__)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    before, after, kind = run.stdout.split()
    assert int(before) == 0
    # The web framework, the ORM's mappers and the templates: tens of thousands of objects.
    assert int(after) > 10_000
    assert kind == "FastAPI"
