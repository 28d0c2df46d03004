"""One post at a time (#14), on both databases: an editor rewrites the text of one waiting
post, skips one occurrence, moves one; each is audited, survives applying the campaign again,
and -- for the text -- is what the Graph API sandbox receives when the post is published
through the real adapter.  A post already taken for publishing is refused with a Thai
reason and left as it was."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from campaigns.lifecycle import approval_hash, approve_campaign, four_eyes_refusal
from channels.sandbox.graph import GraphSandbox
from marketing.db import session_scope
from marketing.models import (
    AuditLog,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Post,
    PostState,
    Role,
)
from marketing.post_edits import override_of, reschedule
from marketing.publishing import Policy, claim_due
from marketing.settings import reset_settings
from marketing.web import create_app
from tests.support.web import (
    NOW,
    WebClient,
    add_user,
    clock_at,
    email_post,
    import_sample,
    token_for,
)
from tests.test_web_browser import publish_everything

SLUG = "songkran-one-post"


def campaign(message: str) -> str:
    return f"""\
slug: {SLUG}
name: สงกรานต์ทีละโพสต์
window:
  start: 2031-04-10
  end: 2031-04-16
communities: [nan-ban-doi-ngoen]
channels:
  facebook:
    account: community
    message: "{message}{{{{ community.name_th }}}}"
schedule:
  at: [2031-04-13T09:00:00+07:00, 2031-04-14T09:00:00+07:00, 2031-04-15T09:00:00+07:00]
"""


@pytest.fixture
def graph(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphSandbox]:
    """The sample communities, and the Graph API sandbox with their Pages' tokens."""
    import_sample(engine)
    sandbox = GraphSandbox().start()
    monkeypatch.setenv("MARKETING_GRAPH_API_URL", sandbox.url)
    with session_scope(engine) as session:
        for account in session.scalars(select(ChannelAccount)):
            if account.kind == ChannelKind.FACEBOOK and account.secret_name:
                token = f"sandbox-{account.secret_name.lower()}"
                monkeypatch.setenv(f"MARKETING_SECRET_{account.secret_name}", token)
                sandbox.register_page(account.external_id, token)
    reset_settings()
    from tasks import wiring

    wiring.reset()
    try:
        yield sandbox
    finally:
        wiring.reset()
        sandbox.stop()


@pytest.fixture
def app(graph: GraphSandbox, engine: Engine) -> FastAPI:
    add_user(engine, "editor", Role.EDITOR)
    add_user(engine, "reader", Role.VIEWER)
    return create_app(engine=engine, clock=clock_at(NOW))


@pytest.fixture
def editor(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("editor")
    yield client
    client.close()


def apply(editor: WebClient, message: str) -> None:
    answer = editor.post("/campaigns/apply", {"yaml": campaign(message)})
    assert answer.status_code == 303, answer.text[:800]


def posts(engine: Engine) -> list[Post]:
    with session_scope(engine) as session:
        found = list(session.scalars(select(Post).order_by(Post.scheduled_at)))
        session.expunge_all()
        return found


def audited(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    with session_scope(engine) as session:
        return [
            (a.action, a.object_id, a.detail)
            for a in session.scalars(
                select(AuditLog).where(AuditLog.action.like("post.%")).order_by(AuditLog.id)
            )
        ]


def approve(engine: Engine) -> None:
    with session_scope(engine) as session:
        shown = approval_hash(session=session, slug=SLUG)
        approve_campaign(session=session, slug=SLUG, actor="approver", shown_hash=shown, now=NOW)


OWN_TEXT = "โพสต์นี้พิเศษ: ชวนชมผ้าซิ่นลายน้ำไหลก่อนใคร"


def test_a_rewritten_text_survives_applying_again_and_is_what_facebook_receives(
    editor: WebClient, engine: Engine, graph: GraphSandbox
) -> None:
    apply(editor, "สุขสันต์วันสงกรานต์จาก")
    first, second, third = (p.id for p in posts(engine))
    answer = editor.post(f"/posts/{first}/edit", {"message": OWN_TEXT})
    assert answer.status_code == 303 and answer.headers["location"] == f"/posts/{first}"
    page = editor.get(f"/posts/{first}")
    assert "เปลี่ยนข้อความของโพสต์" in page.text  # the flash
    assert "แก้ไขเฉพาะโพสต์นี้แล้ว" in page.text and "คงไว้แม้นำแคมเปญไปใช้ใหม่" in page.text
    # The same text again changes nothing, and says so.
    editor.post(f"/posts/{first}/edit", {"message": OWN_TEXT})
    assert "ข้อความเหมือนเดิม" in editor.get(f"/posts/{first}").text
    # Beyond the channel's limit: refused, nothing changed.
    editor.post(f"/posts/{first}/edit", {"message": "ผ้า" * 21_100})  # 63,300 characters
    assert "ผิดกฎของช่องทาง" in editor.get(f"/posts/{first}").text

    # The campaign is applied again with a new text: the rewritten post keeps its own.
    apply(editor, "สวัสดีปีใหม่ไทยจาก")
    stored = {p.id: p for p in posts(engine)}
    assert stored[first].content["message"] == OWN_TEXT
    assert stored[second].content["message"] == "สวัสดีปีใหม่ไทยจากชุมชนผ้าทอบ้านดอยเงิน"
    # Approving checks the plan again: the override is part of it, so it is not "changed".
    approve(engine)
    editor.post(f"/posts/{third}/skip")
    published = publish_everything(engine, after=datetime(2031, 4, 16, tzinfo=UTC))
    assert published == 2
    messages = sorted(p.message for p in graph.published())
    assert len(messages) == 2
    assert any(m.startswith(OWN_TEXT) for m in messages)
    assert any(m.startswith("สวัสดีปีใหม่ไทยจาก") for m in messages)
    assert graph.count_by_marker() and all(n == 1 for n in graph.count_by_marker().values())
    # Published now: no more changes.
    editor.post(f"/posts/{first}/edit", {"message": "สายไปแล้ว"})
    assert "แก้ไข ข้าม หรือย้ายไม่ได้อีก" in editor.get(f"/posts/{first}").text
    assert [(a, o, sorted(d)) for a, o, d in audited(engine)] == [
        ("post.edit", str(first), ["before", "keys"]),
        ("post.skip", str(third), []),
    ]
    assert audited(engine)[0][2]["before"] == {"message": "สุขสันต์วันสงกรานต์จากชุมชนผ้าทอบ้านดอยเงิน"}


def test_a_skipped_occurrence_stays_skipped_when_the_campaign_is_applied_again(
    editor: WebClient, engine: Engine
) -> None:
    apply(editor, "สุขสันต์วันสงกรานต์จาก")
    first, second, _third = (p.id for p in posts(engine))
    assert editor.post(f"/posts/{second}/skip").status_code == 303
    assert "รอบนี้จะไม่เผยแพร่" in editor.get(f"/posts/{second}").text
    apply(editor, "สวัสดีปีใหม่ไทยจาก")
    states = {p.id: p.state for p in posts(engine)}
    assert states[second] == PostState.CANCELLED and states[first] == PostState.SCHEDULED
    assert "ข้ามรอบนี้แล้ว" in editor.get(f"/posts/{second}").text
    # Skipping twice: refused, as it is no longer waiting.
    editor.post(f"/posts/{second}/skip")
    assert "แก้ไข ข้าม หรือย้ายไม่ได้อีก" in editor.get(f"/posts/{second}").text
    assert [a for a, _o, _d in audited(engine)] == ["post.skip"]


def test_a_post_moved_to_a_typed_buddhist_era_day_keeps_its_time_when_applied_again(
    editor: WebClient, engine: Engine
) -> None:
    apply(editor, "สุขสันต์วันสงกรานต์จาก")
    first = posts(engine)[0].id
    # 20/04/2574 is 20 April 2031 (Buddhist era); 18:30 in Bangkok is 11:30 UTC.
    answer = editor.post(f"/posts/{first}/reschedule", {"day": "20/04/2574", "at": "18:30"})
    assert answer.status_code == 303
    moved = datetime(2031, 4, 20, 11, 30, tzinfo=UTC)
    page = editor.get(f"/posts/{first}")
    assert "ย้ายโพสต์" in page.text and "20 เม.ย. 2574 18:30" in page.text
    apply(editor, "สวัสดีปีใหม่ไทยจาก")
    stored = {p.id: p for p in posts(engine)}
    assert stored[first].scheduled_at == moved and stored[first].next_try_at == moved
    assert stored[first].content["message"] == "สวัสดีปีใหม่ไทยจากชุมชนผ้าทอบ้านดอยเงิน"
    # A time already past, and a day that is not one: refused, nothing moved.
    editor.post(f"/posts/{first}/reschedule", {"day": "01/01/2560", "at": "09:00"})
    assert "ผ่านไปแล้ว" in editor.get(f"/posts/{first}").text
    editor.post(f"/posts/{first}/reschedule", {"day": "31/02/2574", "at": "09:00"})
    assert "อ่านเป็นวันที่ไม่ได้" in editor.get(f"/posts/{first}").text
    assert {p.id: p.scheduled_at for p in posts(engine)}[first] == moved
    detail = audited(engine)[0]
    assert detail[0] == "post.reschedule"
    assert detail[2]["to"] == moved.isoformat()
    assert detail[2]["before"] == datetime(2031, 4, 13, 2, 0, tzinfo=UTC).isoformat()


def test_a_post_taken_for_publishing_cannot_be_changed(
    app: FastAPI, editor: WebClient, engine: Engine
) -> None:
    apply(editor, "สุขสันต์วันสงกรานต์จาก")
    approve(engine)
    first = posts(engine)[0]
    # The dispatcher claims it (queued): every change is refused, and the row is untouched.
    claimed = claim_due(engine=engine, policy=Policy.from_settings(), now=first.scheduled_at)
    assert [post_id for post_id, _ in claimed.queued] == [first.id]
    for path, data in (
        ("edit", {"message": "สายไปแล้ว"}),
        ("skip", {}),
        ("reschedule", {"day": "20/04/2574", "at": "18:30"}),
    ):
        editor.post(f"/posts/{first.id}/{path}", data)
        page = editor.get(f"/posts/{first.id}").text
        assert "แก้ไข ข้าม หรือย้ายไม่ได้อีก" in page, path
    after = posts(engine)[0]
    assert after.state == PostState.QUEUED and after.content == first.content
    assert after.scheduled_at == first.scheduled_at
    assert audited(engine) == []
    # A viewer may not change a post at all.
    reader = WebClient(app).sign_in("reader")
    assert reader.post(f"/posts/{posts(engine)[1].id}/skip").status_code == 403
    reader.close()


def test_new_text_on_an_approved_campaign_needs_another_persons_approval(
    app: FastAPI, engine: Engine, graph: GraphSandbox
) -> None:
    add_user(engine, "somsri", Role.APPROVER)
    somsri = WebClient(app).sign_in("somsri")  # an approver may edit too
    apply(somsri, "สุขสันต์วันสงกรานต์จาก")
    approve(engine)  # by "approver", another person
    first = posts(engine)[0]
    somsri.post(f"/posts/{first.id}/edit", {"message": OWN_TEXT})
    page = somsri.get(f"/posts/{first.id}").text
    assert "ต้องอนุมัติอีกครั้งก่อนเผยแพร่" in page
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.slug == SLUG)).one()
        assert campaign.status == CampaignStatus.DRAFT
        # Four eyes: who rewrote it may not approve it.
        assert four_eyes_refusal(session=session, campaign=campaign, actor="somsri")
    # Nothing goes out unapproved: the dispatcher takes no post of a draft.
    after = datetime(2031, 4, 16, tzinfo=UTC)
    assert claim_due(engine=engine, policy=Policy.from_settings(), now=after).queued == []
    approve(engine)  # "approver" looked at it again
    assert publish_everything(engine, after=after) == 3
    assert sum(p.message.startswith(OWN_TEXT) for p in graph.published()) == 1
    somsri.close()


def test_the_json_api_rewrites_skips_and_moves_one_post(
    app: FastAPI, editor: WebClient, engine: Engine
) -> None:
    apply(editor, "สุขสันต์วันสงกรานต์จาก")
    first, second, third = (p.id for p in posts(engine))
    bearer = {"Authorization": f"Bearer {token_for(engine, 'editor')}"}
    http = editor.http
    answer = http.post(
        f"/api/v1/posts/{first}/edit", json={"text": {"message": OWN_TEXT}}, headers=bearer
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"]["message"] == OWN_TEXT
    answer = http.post(f"/api/v1/posts/{second}/skip", headers=bearer)
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    answer = http.post(
        f"/api/v1/posts/{third}/reschedule",
        json={"at": "2031-04-20T18:00:00+07:00"},
        headers=bearer,
    )
    assert answer.status_code == 200, answer.text
    # Refused: a key the channel has not, a naive time, a post no longer waiting.
    answer = http.post(
        f"/api/v1/posts/{first}/edit", json={"text": {"subject": "x"}}, headers=bearer
    )
    assert answer.status_code == 409
    answer = http.post(
        f"/api/v1/posts/{third}/reschedule", json={"at": "2031-04-20T18:00:00"}, headers=bearer
    )
    assert answer.status_code == 422
    answer = http.post(f"/api/v1/posts/{second}/skip", headers=bearer)
    assert answer.status_code == 409 and "cancelled" in answer.json()["detail"]
    apply(editor, "สวัสดีปีใหม่ไทยจาก")
    stored = {p.id: p for p in posts(engine)}
    assert stored[first].content["message"] == OWN_TEXT
    assert stored[second].state == PostState.CANCELLED
    assert stored[third].scheduled_at == datetime(2031, 4, 20, 11, 0, tzinfo=UTC)
    assert [a for a, _o, _d in audited(engine)] == ["post.edit", "post.skip", "post.reschedule"]


def test_moving_a_post_that_names_its_publication_time_moves_that_too(
    engine: Engine,
) -> None:
    import_sample(engine)
    post_id = email_post(engine, sent=False)
    with session_scope(engine) as session:
        post = session.get(Post, post_id)
        assert post is not None
        # A YouTube upload two hours ahead of the time YouTube makes it public.
        post.channel = ChannelKind.YOUTUBE
        post.state = PostState.SCHEDULED
        post.scheduled_at = datetime(2031, 4, 13, 0, 0, tzinfo=UTC)
        post.content = {"title": "ชมหม้อห้อม", "publish_at": "2031-04-13T02:00:00+00:00"}
    with session_scope(engine) as session:
        reschedule(
            session=session,
            post_id=post_id,
            when=datetime(2031, 4, 14, 0, 0, tzinfo=UTC),
            actor="editor",
            now=NOW,
        )
    with session_scope(engine) as session:
        post = session.get(Post, post_id)
        assert post is not None
        assert post.scheduled_at == datetime(2031, 4, 14, 0, 0, tzinfo=UTC)
        assert post.content["publish_at"] == "2031-04-14T02:00:00+00:00"
        override = override_of(session, post_id)
        assert override is not None and override.content == {
            "publish_at": "2031-04-14T02:00:00+00:00"
        }
