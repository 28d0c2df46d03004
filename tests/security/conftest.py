"""Fixtures the security tests share: the web app on the sample data with one editor and one
viewer, and each of them signed in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from marketing.models import Role
from marketing.web import create_app
from tests.support.web import WebClient, add_user, import_sample


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    add_user(engine, "viewer", Role.VIEWER)
    return create_app(engine=engine)


@pytest.fixture
def editor(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("editor")
    yield client
    client.close()


@pytest.fixture
def viewer(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("viewer")
    yield client
    client.close()
