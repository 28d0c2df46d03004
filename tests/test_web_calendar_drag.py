"""Moving a post on the calendar (#14) in a real headless Chromium: an editor drags a waiting
post to the next day (the app's own ``/static/calendar.js`` under ``script-src 'self'``, the
reschedule sent with the session's CSRF token); it is moved, audited, and published on that
day -- not before -- through the real adapter against the Graph API sandbox.  The same move
with JavaScript switched off, through the post page's form with a typed Buddhist-era day.
And the search box in the header finds a Thai word from the middle of one post's text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from channels.sandbox.graph import GraphSandbox
from marketing.db import session_scope
from marketing.models import AuditLog, Post, PostState
from tests.support.web import NOW, PASSWORD, WebClient, clock_at, served
from tests.test_post_edits import app, apply, approve, graph, posts  # noqa: F401
from tests.test_web_browser import browser, publish_everything  # noqa: F401

FIRST, NEXT = "2031-04-13", "2031-04-14"


@pytest.fixture
def campaign(app: Any, engine: Engine) -> Iterator[None]:  # noqa: F811
    """The three-day campaign of tests/test_post_edits.py, applied and approved."""
    editor = WebClient(app).sign_in("editor")
    apply(editor, "สุขสันต์วันสงกรานต์จาก")
    editor.close()
    approve(engine)
    yield


def _tab(browser: Any, base: str, *, javascript: bool = True) -> tuple[Any, Any, list[str]]:  # noqa: F811
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=javascript
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/login")
    page.fill("#username", "editor")
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state("load")
    return context, page, errors


def test_a_post_dragged_to_the_next_day_moves_and_publishes_then(
    browser: Any,  # noqa: F811
    engine: Engine,
    graph: GraphSandbox,  # noqa: F811
    campaign: None,
) -> None:
    first = posts(engine)[0]
    with served(engine, clock=clock_at(NOW)) as server:
        context, page, errors = _tab(browser, server.url)
        page.goto(f"{server.url}/calendar?day={FIRST}")
        assert page.locator("script[src='/static/calendar.js']").count() == 1
        item = page.locator(f"li.post[data-post='{first.id}']")
        assert item.get_attribute("draggable") == "true"
        assert page.locator(f"td#d{FIRST} li.post").count() == 1
        with page.expect_navigation():
            item.drag_to(page.locator(f"td#d{NEXT}"))
        page.wait_for_load_state("load")
        assert page.locator(f"td#d{FIRST} li.post").count() == 0
        assert page.locator(f"td#d{NEXT} li.post[data-post='{first.id}']").count() == 1
        assert "ย้ายโพสต์" in page.inner_text("p.flash")
        assert errors == []
        context.close()
    moved = datetime(2031, 4, 14, 2, 0, tzinfo=UTC)  # 09:00 in Bangkok, the next day
    assert {p.id: p.scheduled_at for p in posts(engine)}[first.id] == moved
    with session_scope(engine) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "post.reschedule")).one()
        assert (entry.actor, entry.object_id) == ("editor", str(first.id))
    # Its first day passes without it; it goes out on the day it was dragged to.
    assert publish_everything(engine, after=datetime(2031, 4, 13, 20, 0, tzinfo=UTC)) == 0
    assert graph.published() == []
    assert publish_everything(engine, after=datetime(2031, 4, 14, 3, 0, tzinfo=UTC)) == 2
    with session_scope(engine) as session:
        post = session.get(Post, first.id)
        assert post is not None and post.state == PostState.PUBLISHED
    assert len(graph.published()) == 2


def test_without_javascript_a_post_is_moved_by_its_form(
    browser: Any,  # noqa: F811
    engine: Engine,
    campaign: None,
) -> None:
    first = posts(engine)[0]
    with served(engine, clock=clock_at(NOW)) as server:
        context, page, errors = _tab(browser, server.url, javascript=False)
        page.goto(f"{server.url}/calendar?day={FIRST}")
        page.click(f"li.post[data-post='{first.id}'] a[href='/posts/{first.id}']")
        page.wait_for_load_state("load")
        page.fill("#move-day", "14/04/2574")  # Buddhist era
        page.fill("#move-at", "18:00")
        page.click("#reschedule button[type=submit]")
        page.wait_for_load_state("load")
        assert page.url.endswith(f"/posts/{first.id}")
        assert "ย้ายโพสต์" in page.inner_text("p.flash")
        page.goto(f"{server.url}/calendar?day={FIRST}")
        assert page.locator(f"td#d{NEXT} li.post[data-post='{first.id}']").count() == 1
        assert "18:00" in page.inner_text(f"li.post[data-post='{first.id}']")
        # The search box in the header, without script too: a word from the middle.
        page.fill("#search-q", "วันสงกรานต์")
        page.press("#search-q", "Enter")
        page.wait_for_load_state("load")
        assert page.url.startswith(f"{server.url}/search?q=")
        assert page.locator("#found-posts li").count() == 3
        assert page.locator(f"#found-posts a[href='/posts/{first.id}']").count() == 1
        assert errors == []
        context.close()
    assert {p.id: p.scheduled_at for p in posts(engine)}[first.id] == datetime(
        2031, 4, 14, 11, 0, tzinfo=UTC
    )
