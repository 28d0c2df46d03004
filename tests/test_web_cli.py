"""``marketing users`` and ``marketing serve``, and the Thai catalog covering every message."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from marketing.cli import main
from marketing.db import session_scope
from marketing.models import ApiToken, AuditLog, Role, User
from marketing.settings import Settings
from marketing.web import create_app
from marketing.web.i18n import CATALOGS, translations
from tests.support.services import ROOT, free_port, wait_until

WEB = ROOT / "marketing" / "web"


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.output


def test_users_add_list_role_password_and_token(engine: Engine) -> None:
    code, out = run(
        "users", "add", "Somchai", "--role", "admin", "--password-stdin", stdin="a-long-password\n"
    )
    assert code == 0, out
    code, out = run("users", "add", "nok", "--password-stdin", stdin="short\n")
    assert code == 2 and "at least 10 characters" in out
    code, out = run("users", "add", "somchai", "--password-stdin", stdin="a-long-password\n")
    assert code == 2 and "exists already" in out
    assert run("users", "role", "somchai", "approver")[0] == 0
    assert (
        run("users", "password", "somchai", "--password-stdin", stdin="another-password\n")[0] == 0
    )
    code, out = run("users", "list")
    assert code == 0 and "somchai" in out and "approver" in out
    code, token = run("users", "token", "somchai", "--name", "nightly export")
    token = token.strip()
    assert code == 0 and token.startswith("mkt_") and len(token) > 40
    assert run("users", "token", "nobody")[0] == 2

    with session_scope(engine) as session:
        user = session.scalars(select(User)).one()
        assert user.role == Role.APPROVER
        assert user.password_hash.startswith("$argon2id$")
        assert "another-password" not in user.password_hash
        assert session.scalars(select(ApiToken.token_hash)).one() != token
        log = session.execute(select(AuditLog.actor, AuditLog.action).order_by(AuditLog.id)).all()
        assert [tuple(r) for r in log] == [
            ("command line", "user.create"),
            ("command line", "user.change"),
            ("command line", "user.password"),
            ("command line", "user.token"),
        ]
    with TestClient(create_app(engine=engine)) as api:
        me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["username"] == "somchai" and me["role"] == "approver"


@pytest.mark.parametrize(
    ("base_url", "refused"),
    [
        ("http://127.0.0.1:8000", []),
        ("http://localhost:8000", []),
        ("http://[::1]:8000", []),
        ("https://community.example.org", ["MARKETING_WEB_SECRET", "MARKETING_TRACKING_SECRET"]),
        ("http://10.0.0.5:8000", ["MARKETING_WEB_SECRET", "MARKETING_TRACKING_SECRET"]),
    ],
)
def test_development_secrets_are_refused_when_the_app_is_public(
    base_url: str, refused: list[str]
) -> None:
    from marketing.settings import DevelopmentSecretRefused, check_development_secrets

    if refused:
        with pytest.raises(DevelopmentSecretRefused) as found:
            check_development_secrets(Settings(public_base_url=base_url))
        assert found.value.variables == refused
    else:
        check_development_secrets(Settings(public_base_url=base_url))
    check_development_secrets(
        Settings(public_base_url=base_url, web_secret="x" * 40, tracking_secret="y" * 40)  # type: ignore[arg-type]
    )


def test_serve_refuses_to_start_with_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(uvicorn, "run", never)
    monkeypatch.setenv("MARKETING_PUBLIC_BASE_URL", "https://community.example.org")
    from marketing.settings import reset_settings

    reset_settings()
    code, out = run("serve", "--port", str(free_port()))
    assert code == 2
    assert "MARKETING_WEB_SECRET" in out and "MARKETING_TRACKING_SECRET" in out
    assert "change-me" not in out  # the refusal never prints a secret


def test_marketing_serve_answers_in_thai(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MARKETING_DATABASE_URL": db_url, "MARKETING_DATA_DIR": str(tmp_path)}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("marketing")), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def answering() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                return False

        wait_until(answering, timeout=30, interval=0.2, what="marketing serve")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as answer:
            page = answer.read().decode("utf-8")
            headers = answer.headers
        assert "เข้าสู่ระบบ" in page and 'lang="th"' in page
        # scripts only from the app's own static files (the composer's), never inline
        policy = dict(
            d.strip().split(" ", 1) for d in headers["Content-Security-Policy"].split(";")
        )
        assert policy["script-src"] == "'self'"
        cookie = headers["Set-Cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()


def test_every_message_has_a_thai_translation() -> None:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB), method_map=method_map, options_map=options
        )
    }
    assert len(found) > 200
    # The HTML reports speak through the web app's catalog too.
    reports = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB.parent / "reports"),
            method_map=[("html.py", "python"), ("templates/**.j2", "jinja2")],
            options_map={"templates/**.j2": {"extensions": "jinja2.ext.i18n"}},
        )
    }
    assert len(reports) > 50
    found |= reports
    thai = translations("th")

    def translated(message: str | tuple[str, ...]) -> tuple[str, str]:
        if isinstance(message, str):
            return message, thai.gettext(message)
        return message[0], thai.ngettext(message[0], message[1], 1)

    missing = [m for m in found if translated(m)[1] == translated(m)[0]]
    assert missing == [], "add them to translations/th/LC_MESSAGES/messages.po (docs/web.md)"
    placeholders = re.compile(r"%\((\w+)\)s")
    for message in found:
        english, thai_text = translated(message)
        assert set(placeholders.findall(thai_text)) == set(placeholders.findall(english)), english
    assert (CATALOGS / "th" / "LC_MESSAGES" / "messages.po").exists()


def test_users_and_tokens_speak_thai_by_default_and_fit_80_columns(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Success lines, refusals and both tables in Thai (English by ``--lang en``); at 80
    columns no line is wider than the terminal and the user name is never cut."""
    import time_machine
    from rich.cells import cell_len

    from marketing.cli.base import console

    monkeypatch.setattr(console, "width", 80)
    name = "ผู้ประสานงานโครงการชุมชนภาคตะวันออกเฉียงเหนือ ผู้ดูแลหลายจังหวัด"
    with time_machine.travel(datetime(2026, 12, 1, 3, 0, tzinfo=UTC), tick=False):
        code, out = run(
            "users", "add", "malee-somsri", "--name", name, "--password-stdin",
            stdin="a-long-password\n",
        )  # fmt: skip
        assert code == 0 and "สร้างแล้ว ผู้ใช้ malee-somsri (viewer)" in out
        code, out = run("--lang", "en", "users", "role", "malee-somsri", "editor")
        assert code == 0 and "User malee-somsri is now editor." in out
        code, out = run("users", "role", "malee-somsri", "approver")
        assert code == 0 and "ผู้ใช้ malee-somsri มีบทบาทเป็น approver แล้ว" in out
        assert run("users", "token", "malee-somsri", "--name", name)[0] == 0
        code, users = run("users", "list")
        code_t, tokens = run("users", "tokens")
        code_en, tokens_en = run("--lang", "en", "users", "tokens")
        code_r, refused = run("users", "token-revoke")
    assert code == code_t == code_en == 0
    assert "ผู้ใช้" in users and "เข้าระบบล่าสุด" in users and "ใช่" in users
    assert "โทเค็น API" in tokens and "ใช้งานอยู่" in tokens and "1 ธ.ค. 2569" in tokens
    assert "API tokens" in tokens_en and "in use" in tokens_en and "1 Dec 2026" in tokens_en
    for shown in (users, tokens, tokens_en):
        assert "malee-somsri" in shown
        assert max(cell_len(line) for line in shown.splitlines()) <= 80, shown
    assert code_r == 2 and "ทำไม่ได้: ระบุรหัสโทเค็น หรือ --user ชื่อผู้ใช้" in refused
