"""Issue #12, item 4: an approval approves what the approver was shown.  An approver opens
version 1 of a campaign; an editor applies version 2 with a scam link; the approver's click
(or API call, or CLI answer) is refused, saying who changed what; a fresh look then approves
version 2.  On both databases (the ``engine`` fixture)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from campaigns import approval_hash
from marketing.cli import main
from marketing.db import session_scope
from marketing.models import AuditLog, Campaign, CampaignStatus, Post, Role
from marketing.settings import get_settings
from marketing.web import create_app
from marketing.web.campaign_files import apply_campaign_text
from marketing.web.staff import find_user
from tests.support.web import WebClient, add_user, import_sample, token_for
from tests.test_web_auth import CAMPAIGN

SLUG = "songkran-web"
V1 = CAMPAIGN  # the web tests' Songkran campaign, as the approver first sees it
SCAM = "https://scam.example/รับรางวัล"
V2 = V1.replace("สุขสันต์วันสงกรานต์", f"รับรางวัลสงกรานต์ที่ {SCAM} ")
HIDDEN = re.compile(r'name="approval_hash" value="([0-9a-f]{64})"')


@pytest.fixture
def people(engine: Engine) -> Engine:
    import_sample(engine)
    add_user(engine, "somchai", Role.EDITOR)
    add_user(engine, "malee", Role.APPROVER)
    return engine


def apply_as(engine: Engine, username: str, text: str) -> None:
    """What the editor's browser does: apply a campaign file (audited, as the page does)."""
    app = create_app(engine=engine)
    editor = WebClient(app).sign_in(username)
    try:
        answer = editor.post("/campaigns/apply", data={"yaml": text})
        assert answer.status_code == 303, answer.text[:500]
    finally:
        editor.close()


def status_and_messages(engine: Engine) -> tuple[CampaignStatus, list[str]]:
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.slug == SLUG)).one()
        messages = session.scalars(
            select(Post.content).where(Post.campaign_id == campaign.id)
        ).all()
        return campaign.status, [str(m.get("message")) for m in messages]


@pytest.fixture
def approver(people: Engine) -> Iterator[WebClient]:
    client = WebClient(create_app(engine=people)).sign_in("malee")
    yield client
    client.close()


def test_an_approval_of_the_page_as_it_was_is_refused_after_an_edit(
    people: Engine, approver: WebClient
) -> None:
    apply_as(people, "somchai", V1)
    page = approver.get(f"/campaigns/{SLUG}")
    shown = HIDDEN.search(page.text)
    assert shown, "the approve form carries what the page shows"
    assert "สุขสันต์วันสงกรานต์" in page.text and SCAM not in page.text

    apply_as(people, "somchai", V2)  # while the approver reads version 1

    answer = approver.post(f"/campaigns/{SLUG}/approve", data={"approval_hash": shown[1]})
    assert answer.status_code == 303
    status, messages = status_and_messages(people)
    assert status == CampaignStatus.DRAFT  # nothing approved
    refused = html.unescape(approver.get(f"/campaigns/{SLUG}").text)
    assert "ยังไม่อนุมัติ" in refused  # Thai, and says who changed what
    assert "somchai บันทึกฉบับใหม่" in refused and "แก้ไข 1" in refused
    assert any(SCAM in m for m in messages)
    # Without the field at all: refused the same way.
    approver.post(f"/campaigns/{SLUG}/approve")
    assert status_and_messages(people)[0] == CampaignStatus.DRAFT

    # A fresh look shows version 2 (the link too), and approving that works.
    page = approver.get(f"/campaigns/{SLUG}")
    assert SCAM in html.unescape(page.text)
    fresh = HIDDEN.search(page.text)
    assert fresh and fresh[1] != shown[1]
    assert (
        approver.post(f"/campaigns/{SLUG}/approve", data={"approval_hash": fresh[1]}).status_code
        == 303
    )
    assert status_and_messages(people)[0] == CampaignStatus.APPROVED
    with session_scope(people) as session:
        actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions.count("campaign.approve") == 1


def test_the_api_approves_only_the_approval_hash_it_was_given(people: Engine) -> None:
    apply_as(people, "somchai", V1)
    bearer = {"Authorization": f"Bearer {token_for(people, 'malee')}"}
    with TestClient(create_app(engine=people)) as api:
        seen = api.get(f"/api/v1/campaigns/{SLUG}", headers=bearer).json()["approval_hash"]
        apply_as(people, "somchai", V2)
        answer = api.post(
            f"/api/v1/campaigns/{SLUG}/approve", json={"approval_hash": seen}, headers=bearer
        )
        assert answer.status_code == 409
        detail = answer.json()["detail"]
        assert "changed after it was shown" in detail and "somchai" in detail
        assert "1 changed" in detail
        assert status_and_messages(people)[0] == CampaignStatus.DRAFT
        # The hash is required, and described in the API's own description.
        missing = api.post(f"/api/v1/campaigns/{SLUG}/approve", json={}, headers=bearer)
        assert missing.status_code == 422
        schema = api.get("/api/openapi.json").json()
        body = schema["components"]["schemas"]["ApprovalIn"]
        assert body["required"] == ["approval_hash"]
        assert "GET /campaigns/{slug}" in body["properties"]["approval_hash"]["description"]

        fresh = api.get(f"/api/v1/campaigns/{SLUG}", headers=bearer).json()["approval_hash"]
        answer = api.post(
            f"/api/v1/campaigns/{SLUG}/approve", json={"approval_hash": fresh}, headers=bearer
        )
        assert answer.status_code == 200 and answer.json()["status"] == "approved"


def test_the_hash_covers_the_source_and_every_rendered_post(people: Engine) -> None:
    apply_as(people, "somchai", V1)
    with session_scope(people) as session:
        before = approval_hash(session=session, slug=SLUG)
        assert approval_hash(session=session, slug=SLUG) == before  # stable
        post = session.scalars(select(Post)).first()
        assert post is not None
        post.content_hash = "x" * 64  # a post's rendered text changed, the file did not
        session.flush()
        assert approval_hash(session=session, slug=SLUG) != before
        session.rollback()
        campaign = session.scalars(select(Campaign)).one()
        campaign.source_hash = "y" * 64
        session.flush()
        assert approval_hash(session=session, slug=SLUG) != before
        session.rollback()


def test_the_cli_approves_only_the_version_it_printed(
    people: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(people) as session:
        editor = find_user(session=session, username="somchai")
        apply_campaign_text(session=session, text=V1, user=editor, settings=get_settings())
        v1 = approval_hash(session=session, slug=SLUG)
    runner = CliRunner()
    EN = ("--language", "en")  # the test reads the English lines (Thai is the default)

    # The editor applies version 2 while the approver reads the printed plan.
    def editor_applies_then_yes(*args: object, **kwargs: object) -> bool:
        with session_scope(people) as session:
            editor = find_user(session=session, username="somchai")
            apply_campaign_text(session=session, text=V2, user=editor, settings=get_settings())
        return True

    monkeypatch.setattr(click, "confirm", editor_applies_then_yes)
    asked = runner.invoke(main, [*EN, "campaign", "approve", SLUG, "--by", "malee"])
    assert f"approval hash: {v1}" in asked.stdout and "สุขสันต์วันสงกรานต์" in asked.stdout
    assert asked.exit_code == 2 and "changed after it was shown" in asked.stderr
    assert status_and_messages(people)[0] == CampaignStatus.DRAFT
    monkeypatch.undo()

    stale = runner.invoke(main, [*EN, "campaign", "approve", SLUG, "--expect-hash", v1])
    assert stale.exit_code == 2 and "changed after it was shown" in stale.stderr
    status = runner.invoke(main, [*EN, "campaign", "status", SLUG])
    v2 = re.search(r"approval hash: ([0-9a-f]{64})", status.stdout)
    assert v2 and v2[1] != v1
    no = runner.invoke(main, [*EN, "campaign", "approve", SLUG], input="n\n")
    assert no.exit_code == 1 and SCAM in no.stdout  # shown, then not approved
    assert status_and_messages(people)[0] == CampaignStatus.DRAFT
    done = runner.invoke(main, [*EN, "campaign", "approve", SLUG, "--expect-hash", v2[1]])
    assert done.exit_code == 0, done.output
    assert status_and_messages(people)[0] == CampaignStatus.APPROVED
