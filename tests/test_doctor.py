"""`marketing doctor`: every problem of a misconfigured deployment, and nothing on a sound one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, text, update

from bench.services import free_port
from channels.sandbox.suite import SandboxAccount, SandboxSuite, sandbox_token
from marketing.cli import main
from marketing.db import make_engine, session_scope
from marketing.doctor import Severity, diagnose
from marketing.migrate import head_revision
from marketing.models import AccountHealth, ChannelAccount
from marketing.settings import Settings, reset_settings
from tests.support.services import RedisServer
from tests.test_demo import run_demo
from tests.test_publishing_states import make_posts

# Rich wraps at the terminal's width; the JSON output is what is read here.
RUNNER = CliRunner()


def doctor_json(*args: str) -> tuple[int, dict[str, object]]:
    reset_settings()
    result = RUNNER.invoke(main, ["doctor", "--format", "json", *args])
    return result.exit_code, json.loads(result.output)


def codes(report: dict[str, object], severity: str | None = None) -> set[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {f["code"] for f in findings if severity is None or f["severity"] == severity}


@pytest.fixture
def sandboxed(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxSuite]:
    """The sample communities with their accounts, served by the sandboxes, secrets set."""
    with SandboxSuite() as suite:
        make_posts(engine, 1)
        with session_scope(engine) as s:
            accounts = [a for a in s.scalars(select(ChannelAccount)) if a.secret_name]
            for a in accounts:
                monkeypatch.setenv(
                    f"MARKETING_SECRET_{a.secret_name}", sandbox_token(a.secret_name or "")
                )
            suite.register(
                SandboxAccount(a.kind.value, a.external_id, sandbox_token(a.secret_name or ""))
                for a in accounts
            )
        for name, value in suite.settings_env().items():
            monkeypatch.setenv(name, value)
        reset_settings()
        yield suite


def previous(revision: str) -> str:
    """The revision before ``revision`` among the shipped migrations."""
    from alembic.script import ScriptDirectory

    from marketing.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    down = script.get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


@pytest.fixture
def one_revision_behind(engine: Engine) -> Iterator[None]:
    """The database says it is at the revision before the newest (put back afterwards)."""
    with engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": previous(head)})
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_a_sound_deployment_is_clean(
    sandboxed: SandboxSuite, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETING_BROKER_URL", redis_server.url)
    exit_code, report = doctor_json("--language", "en")
    assert codes(report) - codes(report, "ok") == set(), report
    assert exit_code == 0
    assert {"secrets:ok", "database:ok", "smtp:ok", "account:ok", "redis:ok"} <= codes(report)


def test_a_misconfigured_deployment_lists_every_problem_and_fails(
    engine: Engine,
    sandboxed: SandboxSuite,
    one_revision_behind: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('FB_SPARE = "x"\n', encoding="utf-8")
    secrets.chmod(0o644)
    monkeypatch.setenv("MARKETING_SECRETS_FILE", str(secrets))
    # Exposed (https, so the URL itself is fine) with the development secrets.
    monkeypatch.setenv("MARKETING_PUBLIC_BASE_URL", "https://marketing.example.org")
    monkeypatch.setenv("MARKETING_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    with session_scope(engine) as s:
        slug = s.scalars(select(ChannelAccount.slug).order_by(ChannelAccount.id)).first()
        s.execute(
            update(ChannelAccount)
            .where(ChannelAccount.slug == slug)
            .values(health=AccountHealth.NEEDS_RECONNECT)
        )

    exit_code, report = doctor_json("--language", "en")

    assert exit_code == 1
    assert codes(report, "error") == {
        "secrets:development",
        "files:readable-by-others",
        "redis:unreachable",
        "database:migrations-behind",
        "account:needs-reconnect",
    }
    by_code = {f["code"]: f for f in report["findings"]}  # type: ignore[attr-defined]
    assert slug in by_code["account:needs-reconnect"]["message"]
    assert f"chmod 600 {secrets}" in by_code["files:readable-by-others"]["fix"]
    behind = by_code["database:migrations-behind"]["message"]
    assert previous(head_revision() or "") in behind and str(head_revision()) in behind

    # Thai by default, with the same codes.
    exit_code, thai = doctor_json()
    assert exit_code == 1 and codes(thai, "error") == codes(report, "error")
    assert "ค่าสำหรับการพัฒนา" in by_code_of(thai)["secrets:development"]["message"]


def by_code_of(report: dict[str, object]) -> dict[str, dict[str, str]]:
    return {f["code"]: f for f in report["findings"]}  # type: ignore[attr-defined]


def test_a_plain_http_public_url_and_a_missing_secret_are_errors(
    sandboxed: SandboxSuite, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETING_PUBLIC_BASE_URL", "http://marketing.example.org")
    monkeypatch.setenv("MARKETING_WEB_SECRET", "w" * 48)
    monkeypatch.setenv("MARKETING_TRACKING_SECRET", "t" * 48)
    monkeypatch.setenv("MARKETING_TOKEN_KEYS", "k" * 43 + "=")  # not the development key
    with session_scope(engine) as s:
        secret = s.scalars(
            select(ChannelAccount.secret_name).where(ChannelAccount.secret_name.is_not(None))
        ).first()
    assert secret is not None
    monkeypatch.delenv(f"MARKETING_SECRET_{secret}")
    exit_code, report = doctor_json("--language", "en")
    assert exit_code == 1
    assert codes(report, "error") == {"url:not-https", "account:secret-missing"}
    assert "secrets:ok" in codes(report)


def test_a_silent_smtp_relay_is_reported_within_the_timeout(
    sandboxed: SandboxSuite, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("MARKETING_SMTP_PORT", str(silent.getsockname()[1]))
        exit_code, report = doctor_json("--language", "en", "--timeout", "1")
    assert exit_code == 1
    smtp = by_code_of(report)["smtp:unreachable"]
    assert "timeout" in smtp["message"] or "timed out" in smtp["message"]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no clock of its own
def test_a_clock_far_from_the_database_servers_is_an_error(
    db_url: str, sandboxed: SandboxSuite
) -> None:
    ahead = diagnose(
        settings=Settings(),
        language="en",
        clock=lambda: datetime.now(UTC) + timedelta(seconds=120),
    )
    skew = [f for f in ahead.findings if f.code == "clock:skew"]
    assert [f.severity for f in skew] == [Severity.ERROR]
    assert "+120" in skew[0].message or "+119" in skew[0].message
    now = diagnose(settings=Settings(), language="en")
    assert "clock:ok" in {f.code for f in now.findings}


@pytest.mark.slow
def test_the_demos_setup_is_clean(tmp_path: Path) -> None:
    done = run_demo(tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    folder = tmp_path / "data" / "demo"
    engine = make_engine(f"sqlite:///{folder / 'marketing.sqlite3'}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env |= {
        "MARKETING_DATA_DIR": str(folder),
        "MARKETING_MEDIA_DIR": str(folder / "media"),
        "MARKETING_DATABASE_URL": f"sqlite:///{folder / 'marketing.sqlite3'}",
        "MARKETING_BROKER_URL": f"sqla+sqlite:///{folder / 'broker.sqlite3'}",
    }
    with SandboxSuite() as suite, session_scope(engine) as s:
        accounts = [a for a in s.scalars(select(ChannelAccount)) if a.secret_name]
        suite.register(
            SandboxAccount(a.kind.value, a.external_id, sandbox_token(a.secret_name or ""))
            for a in accounts
        )
        env |= suite.settings_env()
        env |= {
            f"MARKETING_SECRET_{a.secret_name}": sandbox_token(a.secret_name or "")
            for a in accounts
        }
        from tests.test_cli import MARKETING

        checked = subprocess.run(
            [MARKETING, "doctor", "--format", "json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    engine.dispose()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert codes(report) == codes(report, "ok")
    assert {"database:ok", "smtp:ok", "account:ok"} <= codes(report)
