"""E-mail merge fields are never shown raw: every page, report, CSV and CLI output that shows
a post's subject or text shows "[ชื่อผู้รับ]" (English: "[recipient's name]") where the
stored content holds the private-use marker the adapter fills per recipient (#15).  Both
databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from sqlalchemy import Engine, select, update

from channels.email import display_text, merge_slot
from marketing.cli import main
from marketing.db import session_scope
from marketing.models import Post, PostState, Role
from marketing.placeholders import MERGE_FIELD_LABELS, readable, readable_content
from marketing.web import create_app
from tests.support.web import NOW, WebClient, add_user, clock_at, email_post, import_sample

COMMUNITY = "nan-ban-doi-ngoen"
PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
THAI_NAME = "[ชื่อผู้รับ]"
ENGLISH_NAME = "[recipient&#39;s name]"  # as the autoescaped page writes it
PERIOD = "from=2026-11-01&to=2026-11-28"

#: A draft campaign whose e-mail greets each subscriber by name (a merge field).
MERGE_CAMPAIGN = """\
slug: merge-web
name: ข่าวถึงสมาชิก
window:
  start: 2031-04-10
  end: 2031-04-16
communities: [nan-ban-doi-ngoen]
channels:
  email:
    account: glo-email
    subject: "{{ subscriber.name }} ข่าวจากชุมชน"
    html: "<p>สวัสดี {{ subscriber.name }}</p>"
schedule:
  at: [2031-04-13T09:00:00+07:00]
"""


def no_private_use(text: str, where: str) -> None:
    found = PRIVATE_USE.search(text)
    if found is not None:
        around = text[max(0, found.start() - 60) : found.end() + 60]
        pytest.fail(f"{where}: U+{ord(found.group()):04X} shown raw in ...{around!r}...")


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    add_user(engine, "reader", Role.VIEWER, language="en")
    # A published e-mail (in the reports' best posts, on today's dashboard) whose subject and
    # html greet the recipient by name.
    post_id = email_post(engine, slug="news", community=COMMUNITY)
    with session_scope(engine) as session:
        session.execute(
            update(Post)
            .where(Post.id == post_id)
            .values(
                state=PostState.PUBLISHED,
                scheduled_at=NOW - timedelta(hours=1),
                published_at=NOW - timedelta(hours=1),
                content={
                    "subject": f"{merge_slot('name')} ข่าวจากชุมชน",
                    "html": f"<p>สวัสดี {merge_slot('name')}</p>",
                    "text": f"สวัสดี {merge_slot('name')}\nยกเลิก: {merge_slot('unsubscribe_url')}",
                },
            )
        )
    return create_app(engine=engine, clock=clock_at(NOW))


@pytest.fixture
def editor(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("editor")
    yield client
    client.close()


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_display_text_turns_each_merge_field_into_its_label() -> None:
    stored = f"{merge_slot('name')} <{merge_slot('email')}> {merge_slot('unsubscribe_url')}"
    assert display_text(stored, {"name": "N"}) == "N <email> unsubscribe_url"
    assert readable(stored) == "[ชื่อผู้รับ] <[อีเมลผู้รับ]> [ลิงก์ยกเลิกรับข่าวสาร]"
    assert readable(stored, "en").startswith("[recipient's name] <[recipient's e-mail]>")
    # A marker cut off by a caller's truncation leaves no box behind.
    assert not PRIVATE_USE.search(readable(stored[:3]))
    assert readable_content({"subject": stored, "tags": [stored], "n": 1})["tags"] == [
        readable(stored)
    ]
    assert set(MERGE_FIELD_LABELS["th"]) == set(MERGE_FIELD_LABELS["en"])


def test_every_page_shows_the_recipient_label_never_the_marker(
    editor: WebClient, app: FastAPI, engine: Engine
) -> None:
    answer = editor.post("/campaigns/check", {"yaml": MERGE_CAMPAIGN})
    assert answer.status_code == 200, answer.text[:800]
    no_private_use(answer.text, "campaign preview")
    assert THAI_NAME in answer.text
    answer = editor.post("/campaigns/apply", {"yaml": MERGE_CAMPAIGN})
    assert answer.status_code == 303, answer.text[:800]
    with session_scope(engine) as session:
        post_id = session.scalars(select(Post.id).where(Post.state == PostState.PUBLISHED)).one()
    labelled = [
        "/",
        "/posts",
        f"/posts/{post_id}",
        "/campaigns/news",
        "/campaigns/merge-web",
        "/calendar?day=2026-11-28",
        f"/communities/{COMMUNITY}",
        f"/reports/community/{COMMUNITY}?{PERIOD}",
        f"/reports/community/{COMMUNITY}?{PERIOD}&download=1",
        "/reports/campaign/news",
        "/reports/campaign/news?download=1",
        "/reports/campaign/news?format=csv",
    ]
    others = [  # no post's text on these, but no marker either
        f"/reports/community/{COMMUNITY}?{PERIOD}&format=csv",
        "/calendar?day=2031-04-13",
        "/calendar?view=week&day=2031-04-13",
        f"/reports/overview?{PERIOD}",
        "/reports",
        "/campaigns",
    ]
    for path in labelled + others:
        answer = editor.get(path)
        assert answer.status_code == 200, (path, answer.text[:800])
        text = answer.content.decode("utf-8-sig")
        no_private_use(text, path)
        if path in labelled:
            assert THAI_NAME in text, path

    reader = WebClient(app).sign_in("reader")
    for path in ("/", "/posts", f"/posts/{post_id}", "/campaigns/merge-web"):
        text = reader.get(path).text
        no_private_use(text, f"{path} in English")
        assert ENGLISH_NAME in text, path
    reader.close()


def test_cli_reports_and_campaign_previews_show_the_label(
    app: FastAPI, engine: Engine, tmp_path: Path
) -> None:
    period = ["--from", "2026-11-01", "--to", "2026-11-28"]
    for args in (
        ["report", "community", COMMUNITY, *period],
        ["report", "community", COMMUNITY, *period, "--format", "csv"],
        ["report", "community", COMMUNITY, *period, "--format", "json"],
        ["report", "campaign", "news"],
        ["report", "campaign", "news", "--format", "csv"],
        ["report", "overview", *period],
        ["posts", "list"],
    ):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
        no_private_use(result.output, " ".join(args))
        if args[:2] == ["report", "campaign"] and "csv" in args:
            assert THAI_NAME in result.output, args
    html = tmp_path / "news.html"
    result = run("report", "campaign", "news", "--format", "html", "-o", str(html))
    assert result.exit_code == 0, result.output
    no_private_use(html.read_text(encoding="utf-8"), "campaign report html")
    assert THAI_NAME in html.read_text(encoding="utf-8")

    source = tmp_path / "merge.yaml"
    source.write_text(MERGE_CAMPAIGN, encoding="utf-8")
    result = run("campaign", "plan", str(source), "--preview")
    assert result.exit_code == 0, result.output
    no_private_use(result.output, "campaign plan --preview")
    assert "[ชื่อผู้รับ]" in result.output.replace("\n", "")
    assert run("campaign", "apply", str(source)).exit_code == 0
    # Approval shows the posts' text before asking; answering no approves nothing.
    result = run("campaign", "approve", "merge-web", "--by", "someone", input="n\n")
    no_private_use(result.output, "campaign approve")
    assert "ชื่อผู้รับ" in result.output.replace("\n", "")
