"""Issue #12, item 3: the development tracking and web secrets are public (they are in the
source), so every entry point refuses them unless both the public URL and the address the
server listens on are this machine: the web factory (also as `uvicorn --factory` runs it),
`marketing serve`, the worker's start-up (`celery -A tasks worker`, `marketing worker`) and
the e-mail adapter that signs tracking links."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from channels.tracking import TrackingLinks
from marketing.cli import main
from marketing.db import session_scope, utcnow
from marketing.models import Delivery, Post, PostState
from marketing.publishing import Policy, claim_due
from marketing.settings import (
    DEVELOPMENT_TRACKING_SECRET,
    DevelopmentSecretRefused,
    Settings,
    check_development_secrets,
    reset_settings,
)
from marketing.web import create_app
from marketing.web.app import reached_from_elsewhere
from tests.support.services import ROOT, free_port
from tests.support.web import email_post, import_sample

PUBLIC = "https://community.example.org"
BOTH = ["MARKETING_WEB_SECRET", "MARKETING_TRACKING_SECRET"]
REAL_SECRETS = {"web_secret": "w" * 48, "tracking_secret": "t" * 48}


def public_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_PUBLIC_BASE_URL", PUBLIC)
    reset_settings()


def test_the_one_check_needs_a_loopback_public_url_and_a_loopback_listening_address() -> None:
    local = Settings(public_base_url="http://127.0.0.1:8000")
    check_development_secrets(local, bound_host="127.0.0.1")
    check_development_secrets(local, bound_host="::1")
    check_development_secrets(local, bound_host="localhost")
    for everywhere in ("0.0.0.0", "::", "192.0.2.10", "community.example.org"):
        with pytest.raises(DevelopmentSecretRefused, match=everywhere) as refused:
            check_development_secrets(local, bound_host=everywhere)
        assert refused.value.variables == BOTH
    with pytest.raises(DevelopmentSecretRefused, match="MARKETING_PUBLIC_BASE_URL") as refused:
        check_development_secrets(Settings(public_base_url=PUBLIC), bound_host="127.0.0.1")
    assert "change-me" not in str(refused.value)  # says what to set, never the value
    assert "secrets.token_urlsafe" in str(refused.value)
    # The worker only signs links: it is asked about the tracking secret alone.
    with pytest.raises(DevelopmentSecretRefused) as refused:
        check_development_secrets(
            Settings(public_base_url=PUBLIC, web_secret="w" * 48),  # type: ignore[arg-type]
            uses=("tracking",),
        )
    assert refused.value.variables == ["MARKETING_TRACKING_SECRET"]
    check_development_secrets(Settings(public_base_url=PUBLIC, **REAL_SECRETS))  # type: ignore[arg-type]
    check_development_secrets(
        Settings(public_base_url="http://127.0.0.1:8000", **REAL_SECRETS),  # type: ignore[arg-type]
        bound_host="0.0.0.0",
    )


def test_create_app_refuses_the_development_secrets_with_a_public_url(engine: Engine) -> None:
    with pytest.raises(DevelopmentSecretRefused) as refused:
        create_app(engine=engine, settings=Settings(public_base_url=PUBLIC))
    assert refused.value.variables == BOTH
    app = create_app(engine=engine, settings=Settings(public_base_url=PUBLIC, **REAL_SECRETS))  # type: ignore[arg-type]
    assert app.state.links.base_url == PUBLIC


def test_so_a_forged_click_to_an_outside_site_has_no_app_to_go_through(engine: Engine) -> None:
    # The attack of the report: the development key is public, so anyone could sign a click
    # to any site with it.  Such an app no longer starts.
    import_sample(engine)
    post_id = email_post(engine)
    forged = TrackingLinks(PUBLIC, Settings().tracking_secret).click_url(
        post_id=post_id, subscriber_id=1, url="https://evil.example/login"
    )
    assert Settings().tracking_secret.get_secret_value() == DEVELOPMENT_TRACKING_SECRET
    with pytest.raises(DevelopmentSecretRefused):
        create_app(engine=engine, settings=Settings(public_base_url=PUBLIC))
    assert forged.startswith(PUBLIC + "/e/click/")


def test_uvicorn_factory_with_a_public_url_and_the_development_secrets_does_not_start(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env |= {
        "MARKETING_PUBLIC_BASE_URL": PUBLIC,
        "MARKETING_DATA_DIR": str(tmp_path),
        "MARKETING_DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}",
    }
    run = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "marketing.web:create_app"]
        + ["--host", "127.0.0.1", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "MARKETING_WEB_SECRET, MARKETING_TRACKING_SECRET" in run.stderr
    assert "Application startup complete" not in run.stderr
    assert "change-me" not in run.stdout + run.stderr


def test_serve_on_every_address_with_a_loopback_url_and_the_development_secrets_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server must not start")

    monkeypatch.setattr(uvicorn, "run", never)
    reset_settings()  # the default public URL: http://127.0.0.1:8000
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "8000"])
    assert result.exit_code == 2, result.output
    assert "listens on 0.0.0.0" in result.output
    assert "MARKETING_WEB_SECRET" in result.output and "change-me" not in result.output


def test_an_app_on_development_secrets_answers_only_what_arrived_through_loopback(
    engine: Engine,
) -> None:
    # `uvicorn --factory --host 0.0.0.0` with a loopback public URL: the factory cannot know
    # the listening address, so each request's own local address is checked.
    app = create_app(engine=engine)
    with TestClient(app, base_url="http://192.0.2.10:8000") as outside:
        answer = outside.get("/login")
        assert answer.status_code == 503
        assert "รหัสลับสำหรับการพัฒนา" in answer.text and "MARKETING_WEB_SECRET" in answer.text
        assert "change-me" not in answer.text
        assert outside.get("/e/open/anything").status_code == 503
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.get("/login").status_code == 200
    real = create_app(engine=engine, settings=Settings(**REAL_SECRETS))  # type: ignore[arg-type]
    with TestClient(real, base_url="http://192.0.2.10:8000") as outside:
        assert outside.get("/login").status_code == 200
    assert reached_from_elsewhere(("/run/glo.sock", None))  # a proxy may serve a Unix socket
    assert reached_from_elsewhere(None)
    assert reached_from_elsewhere(("::", 8000))
    assert not reached_from_elsewhere(("::ffff:127.0.0.1", 8000))


def test_the_worker_does_not_start_with_a_public_url_and_the_development_tracking_secret(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env |= {
        "MARKETING_PUBLIC_BASE_URL": PUBLIC,
        "MARKETING_WEB_SECRET": "w" * 48,  # the worker never uses it
        "MARKETING_DATA_DIR": str(tmp_path),
        "MARKETING_DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}",
    }
    run = subprocess.run(
        [str(Path(sys.executable).with_name("celery")), "-A", "tasks", "worker"]
        + ["-c", "1", "--pool", "solo", "--loglevel", "INFO"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "Refused to start the worker: MARKETING_TRACKING_SECRET" in run.stderr
    assert "MARKETING_WEB_SECRET" not in run.stderr
    assert "change-me" not in run.stdout + run.stderr


def test_marketing_worker_refuses_before_starting_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks import app

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the worker must not start")

    monkeypatch.setattr(app, "worker_main", never)
    public_env(monkeypatch)
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code == 2, result.output
    assert "MARKETING_TRACKING_SECRET" in result.output
    assert "MARKETING_PUBLIC_BASE_URL" in result.output


def test_an_email_post_fails_unsent_when_its_links_would_carry_the_development_secret(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker started some other way (or before the settings changed) still signs nothing.
    from tasks import wiring
    from tasks.publishing import publish_post

    import_sample(engine)
    post_id = email_post(engine, sent=False)
    public_env(monkeypatch)
    wiring.reset()
    try:
        claimed = claim_due(
            engine=engine, policy=Policy.from_settings(), now=utcnow() + timedelta(minutes=1)
        )
        assert [p for p, _channel in claimed.queued] == [post_id]
        assert publish_post(post_id) == "failed"
    finally:
        wiring.reset()
    with session_scope(engine) as session:
        post = session.get(Post, post_id)
        assert post is not None and post.state == PostState.FAILED
        assert post.last_error_code == "email:development-secret"
        assert "MARKETING_TRACKING_SECRET" in (post.action_hint or "")
        assert "change-me" not in (post.last_error or "")
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0  # none made
