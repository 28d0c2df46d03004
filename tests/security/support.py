"""Shared by the security tests: a clock the test moves, and sign-in from a given address."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Three in the morning in Bangkok, on a 5-minute, hour and day boundary in UTC.
START = datetime(2031, 4, 13, 20, 0, tzinfo=UTC)


class MovableClock:
    """The app's now: starts at START and moves only when the test says so."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Browser:
    """One browser at one client address."""

    def __init__(self, app: FastAPI, address: str = "203.0.113.7") -> None:
        self.http = TestClient(app, follow_redirects=False, client=(address, 50000))

    def close(self) -> None:
        self.http.close()

    def csrf(self, path: str = "/login") -> str:
        found = CSRF.search(self.http.get(path).text)
        assert found, f"no CSRF token on {path}"
        return found[1]

    def sign_in(self, username: str, password: str) -> Any:
        """The answer to the sign-in form."""
        return self.http.post(
            "/login",
            data={
                "username": username,
                "password": password,
                "csrf_token": self.csrf(),
                "next": "/",
            },
        )
