"""Caching and transport headers (#12, item 11): private answers -- pages, API answers, CSV
and media downloads, error pages -- carry ``Cache-Control: no-store`` (static files do not),
and HSTS is sent when the public URL is https."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from marketing.settings import Settings
from marketing.web import create_app
from tests.support.web import WebClient, token_for


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/posts",
        "/calendar",
        "/account",
        "/communities/nan-ban-doi-ngoen",
        "/reports/overview?format=csv",
        "/reports/overview?format=json",
        "/media/highlight/1/0",
        "/no-such-page",
    ],
)
def test_private_answers_are_never_stored(viewer: WebClient, path: str) -> None:
    answer = viewer.get(path)
    assert answer.status_code in (200, 404), answer.status_code
    assert answer.headers.get_list("cache-control") == ["no-store"]


def test_api_answers_are_never_stored(app: FastAPI, engine: Engine) -> None:
    token = token_for(engine, "viewer")
    with TestClient(app) as client:
        answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        refused = client.get("/api/v1/me")
        assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"


def test_the_sign_in_page_and_a_redirect_to_it_are_never_stored(app: FastAPI) -> None:
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/login").headers["cache-control"] == "no-store"
        assert client.get("/posts").headers["cache-control"] == "no-store"


def test_static_files_may_be_cached(app: FastAPI) -> None:
    with TestClient(app) as client:
        for path in ("/static/style.css", "/favicon.ico"):
            answer = client.get(path)
            assert answer.status_code == 200
            assert "no-store" not in answer.headers.get("cache-control", "")


def settings_for(url: str) -> Settings:
    return Settings(
        public_base_url=url,
        web_secret=SecretStr("a-web-secret-for-this-test-only-3f9d"),
        tracking_secret=SecretStr("a-tracking-secret-for-this-test-only-7c1a"),
    )


def test_hsts_is_sent_when_the_public_url_is_https(engine: Engine) -> None:
    app = create_app(engine=engine, settings=settings_for("https://marketing.example.org"))
    with TestClient(app, base_url="https://marketing.example.org") as client:
        answer = client.get("/login")
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
        static = client.get("/static/style.css")
        assert static.headers["strict-transport-security"] == "max-age=31536000"


def test_no_hsts_on_a_plain_http_address(engine: Engine) -> None:
    app = create_app(engine=engine, settings=settings_for("http://127.0.0.1:8000"))
    with TestClient(app) as client:
        assert "strict-transport-security" not in client.get("/login").headers
