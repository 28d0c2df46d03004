"""Issue #12, item 2: one person's slow work never holds other people's requests.

The app runs under a real uvicorn server.  A slow piece of work (a campaign check, a big
subscriber import) is held in progress at a known point -- a hook in the app signals that it
got there, then waits for the test -- and meanwhile another person's ``GET /login`` must
complete.  Before the fix the check ran on the event loop (``async def``), so the loop, and
every other request, waited with it.  Ordering, not timing: nothing here measures seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, func, select

from marketing.db import session_scope
from marketing.models import Community, Role, Subscriber
from marketing.web import campaign_files, imports
from tests.support.web import CSRF, PASSWORD, ServerThread, add_user, import_sample, served
from tests.test_web_auth import CAMPAIGN

WAIT = 60.0  # the most any step may wait for an event before the test fails
COMMUNITY = "nan-ban-doi-ngoen"


@pytest.fixture
def server(engine: Engine) -> Iterator[ServerThread]:
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    with served(engine) as running:
        yield running


def signed_in(server: ServerThread) -> tuple[httpx.Client, str]:
    """A client of the real server signed in as the editor, and its CSRF token."""
    client = httpx.Client(base_url=server.url, timeout=WAIT, follow_redirects=False)
    token = CSRF.search(client.get("/login").text)
    assert token
    answer = client.post(
        "/login",
        data={"username": "editor", "password": PASSWORD, "csrf_token": token[1], "next": "/"},
    )
    assert answer.status_code == 303, answer.text[:500]
    token = CSRF.search(client.get("/account").text)
    assert token
    return client, token[1]


@contextmanager
def held(hooks: list[Any], started: threading.Event, release: threading.Event) -> Iterator[None]:
    """While inside, the first call of ``hooks`` signals ``started`` and waits for ``release``."""

    def hold(*_args: Any) -> None:
        if not started.is_set():
            started.set()
            release.wait(WAIT)

    hooks.append(hold)
    try:
        yield
    finally:
        release.set()
        hooks.remove(hold)


def in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["answer"] = call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_sign_in_page_answers_while_a_campaign_check_is_in_progress(
    server: ServerThread,
) -> None:
    editor, token = signed_in(server)
    bomb = CAMPAIGN.replace("{{ community.name_th }}", "{{ 'a' * 300000000 }}")
    started, release = threading.Event(), threading.Event()
    with held(campaign_files.check_started, started, release):
        thread, outcome = in_background(
            lambda: editor.post("/campaigns/check", data={"yaml": bomb, "csrf_token": token})
        )
        assert started.wait(WAIT), "the check never started"
        # The check is in progress (held in the hook) while another person signs in.
        with httpx.Client(base_url=server.url, timeout=WAIT) as other:
            assert other.get("/login").status_code == 200
        assert thread.is_alive() and "answer" not in outcome
    thread.join(WAIT)
    assert outcome["answer"].status_code == 422
    assert "ข้อความหรือรายการที่สร้างยาวเกินไป" in outcome["answer"].text
    editor.close()


def subscriber_rows(count: int, *, bad_line: int | None = None) -> bytes:
    lines = ["email,name"]
    for n in range(2, count + 2):
        email = "not-an-address" if n == bad_line else f"person{n}@example.org"
        lines.append(f"{email},สมาชิก {n}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def subscribers(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.scalar(
            select(func.count())
            .select_from(Subscriber)
            .join(Community, Community.id == Subscriber.community_id)
            .where(Community.slug == COMMUNITY)
        )


def upload(editor: httpx.Client, token: str, rows: bytes) -> httpx.Response:
    return editor.post(
        f"/communities/{COMMUNITY}/subscribers",
        data={
            "consent_source": "แบบฟอร์มงานประจำปี",
            "consent_date": "2026-11-01",
            "csrf_token": token,
        },
        files={"file": ("members.csv", rows, "text/csv")},
    )


def test_a_big_import_is_a_job_with_progress_and_sign_in_answers_meanwhile(
    server: ServerThread, engine: Engine
) -> None:
    editor, token = signed_in(server)
    before = subscribers(engine)
    started, release = threading.Event(), threading.Event()
    saving: list[imports.Progress] = []

    def saw(_key: str, progress: imports.Progress) -> None:
        saving.append(progress)

    imports.progress_reported.append(saw)
    try:
        with held(imports.progress_reported, started, release):
            answer = upload(editor, token, subscriber_rows(3_000))
            # The upload answers at once with the job's page; the import goes on.
            assert answer.status_code == 303
            job = answer.headers["location"]
            assert started.wait(WAIT), "the import never reported progress"
            with httpx.Client(base_url=server.url, timeout=WAIT) as other:
                assert other.get("/login").status_code == 200
            page = editor.get(job)
            assert page.status_code == 200 and 'http-equiv="refresh"' in page.text
            assert "กำลัง" in page.text  # checking or saving, in Thai
            assert subscribers(engine) == before  # nothing saved while in progress
        assert imports.wait_for(job.removeprefix("/imports/"), WAIT)
    finally:
        imports.progress_reported.remove(saw)
    page = editor.get(job)
    assert "นำเข้ารายชื่อแล้ว: ใหม่ 3000 คน" in page.text
    assert 'http-equiv="refresh"' not in page.text
    assert subscribers(engine) == before + 3_000
    assert saving[-1].done == saving[-1].total == 3_000
    editor.close()


def test_a_big_import_with_one_bad_row_saves_nothing_and_names_the_line(
    server: ServerThread, engine: Engine
) -> None:
    editor, token = signed_in(server)
    before = subscribers(engine)
    answer = upload(editor, token, subscriber_rows(3_000, bad_line=2_500))
    assert answer.status_code == 303
    job = answer.headers["location"]
    assert imports.wait_for(job.removeprefix("/imports/"), WAIT)
    page = editor.get(job).text
    assert "ไม่ได้นำเข้ารายชื่อผู้รับข่าวสาร" in page
    assert "บรรทัด 2500" in page and "members.csv" in page
    assert subscribers(engine) == before
    editor.close()
