"""The pages' own behaviour (through the app, on both databases): campaign upload as a file,
subscriber import with its consent source, the people's actions on posts and accounts, reports
as CSV and HTML, the interface in English and Common-era years, and user management."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select, update

from marketing.db import session_scope
from marketing.models import (
    AccountHealth,
    AuditLog,
    Campaign,
    ChannelAccount,
    Community,
    Post,
    PostState,
    Role,
    Subscriber,
    User,
)
from marketing.web import create_app
from tests.support.web import (
    NOW,
    WebClient,
    add_user,
    clock_at,
    email_post,
    import_sample,
    imported,
)
from tests.test_web_auth import CAMPAIGN

COMMUNITY = "nan-ban-doi-ngoen"


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    add_user(engine, "admin", Role.ADMIN)
    add_user(engine, "reader", Role.VIEWER, language="en")
    return create_app(engine=engine, clock=clock_at(NOW))  # CAMPAIGN (2031) is ahead of it


@pytest.fixture
def editor(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("editor")
    yield client
    client.close()


def actions(engine: Engine) -> list[tuple[str, str, str]]:
    with session_scope(engine) as session:
        return [
            (a.actor, a.action, a.object_id)
            for a in session.scalars(
                select(AuditLog).where(AuditLog.action != "user.sign_in").order_by(AuditLog.id)
            )
        ]


def test_a_campaign_uploaded_as_a_file_is_checked_and_applied(
    editor: WebClient, engine: Engine
) -> None:
    answer = editor.post(
        "/campaigns/check",
        files={"file": ("songkran.yaml", ("\ufeff" + CAMPAIGN).encode("utf-8"), "text/yaml")},
    )
    assert answer.status_code == 200, answer.text[:800]
    assert "สุขสันต์วันสงกรานต์จากชุมชนผ้าทอบ้านดอยเงิน" in answer.text  # rendered preview
    answer = editor.post("/campaigns/apply", {"yaml": CAMPAIGN})
    assert answer.status_code == 303 and answer.headers["location"] == "/campaigns/songkran-web"
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.created_by == "editor"
        # The web keeps the file where `marketing campaign apply` would read it.
        assert (
            campaign.source_path
            and Path(campaign.source_path).read_text(encoding="utf-8") == CAMPAIGN
        )
    assert actions(engine) == [("editor", "campaign.apply", "songkran-web")]
    # Not UTF-8: a problem, not a crash.
    answer = editor.post(
        "/campaigns/check", files={"file": ("bad.yaml", b"\xff\xfe\x00x", "text/yaml")}
    )
    assert answer.status_code == 422 and "is not UTF-8 text" in answer.text
    # The stored text opens for editing.
    page = editor.get("/campaigns/songkran-web/edit")
    assert "สุขสันต์วันสงกรานต์จาก" in page.text


def test_subscribers_import_with_their_consent_source(editor: WebClient, engine: Engine) -> None:
    rows = "email,name,tags\nnew.one@example.org,คุณใหม่,ผ้าทอ\nmalee.nan1@example.org,คุณมาลี,\n"
    answer = editor.post(
        f"/communities/{COMMUNITY}/subscribers",
        {"consent_source": "ใบสมัครที่งาน OTOP น่าน", "consent_date": "2026-11-01"},
        files={"file": ("list.csv", rows.encode("utf-8"), "text/csv")},
    )
    page = imported(editor, answer)  # the import runs in the background; its page reports
    assert "นำเข้ารายชื่อแล้ว: ใหม่ 1 คน ปรับปรุง 1 คน" in page.text
    with session_scope(engine) as session:
        new = session.scalars(
            select(Subscriber).where(Subscriber.email == "new.one@example.org")
        ).one()
        assert new.consent_source == "ใบสมัครที่งาน OTOP น่าน"
        assert new.consent_at == datetime(2026, 10, 31, 17, 0, tzinfo=UTC)  # midnight in Bangkok
        assert new.tags == ["ผ้าทอ"] and new.name == "คุณใหม่"
    page = editor.get(f"/communities/{COMMUNITY}")
    assert "ใบสมัครที่งาน OTOP น่าน" in page.text
    assert [a[1] for a in actions(engine)] == ["community.import_subscribers"]

    # A bad address: refused as a whole, at the line of the person's file.
    rows = "email,name\nok@example.org,ก\nnot-an-address,ข\n"
    answer = editor.post(
        f"/communities/{COMMUNITY}/subscribers",
        {"consent_source": "แบบฟอร์ม", "consent_date": "2026-11-01"},
        files={"file": ("list2.csv", rows.encode("utf-8"), "text/csv")},
    )
    page = imported(editor, answer)
    assert "ไม่ได้นำเข้ารายชื่อผู้รับข่าวสาร" in page.text
    assert "บรรทัด 3" in page.text and "list2.csv" in page.text
    with session_scope(engine) as session:
        assert (
            session.scalars(select(Subscriber).where(Subscriber.email == "ok@example.org")).first()
            is None
        )


def test_people_act_on_problem_posts_and_accounts(editor: WebClient, engine: Engine) -> None:
    post_id = email_post(engine)
    with session_scope(engine) as session:
        session.execute(
            update(Post)
            .where(Post.id == post_id)
            .values(
                state=PostState.FAILED, last_error="SMTP 554 relay refused", action_hint="ตรวจสอบ"
            )
        )
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == "nan-ban-doi-ngoen-facebook")
        ).one()
        account.health = AccountHealth.NEEDS_RECONNECT
        account.health_message = "token expired"
    page = editor.get("/problems")
    # The problem in words (the channel's own English stays on the post's page, for the
    # administrator), and a retry that can help.
    assert "ช่องทางไม่รับโพสต์นี้" in page.text and "SMTP 554" not in page.text
    assert f"/posts/{post_id}/retry" in page.text
    assert editor.get("/").text.count("card alert") == 2  # problems and accounts stand out

    assert editor.post(f"/posts/{post_id}/retry").status_code == 303
    assert editor.post(f"/posts/{post_id}/retry").status_code == 303  # refused: flashed
    page = editor.get(f"/posts/{post_id}")
    assert "ลองใหม่ได้เฉพาะโพสต์ที่ล้มเหลว" in page.text  # the refusal in Thai (#15)
    assert editor.post(f"/posts/{post_id}/cancel").status_code == 303
    answer = editor.post("/accounts/nan-ban-doi-ngoen-facebook/reconnected")
    assert answer.headers["location"] == f"/communities/{COMMUNITY}"
    with session_scope(engine) as session:
        assert session.get(Post, post_id).state == PostState.CANCELLED  # type: ignore[union-attr]
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.slug == "nan-ban-doi-ngoen-facebook")
        ).one()
        assert account.health == AccountHealth.OK
    assert actions(engine) == [
        ("editor", "post.retry", str(post_id)),
        ("editor", "post.cancel", str(post_id)),
        ("editor", "account.reconnected", "nan-ban-doi-ngoen-facebook"),
    ]


def test_reports_download_as_csv_and_html(editor: WebClient) -> None:
    answer = editor.get(f"/reports/community/{COMMUNITY}?format=csv")
    assert answer.status_code == 200
    assert answer.content.startswith("\ufeff".encode())  # spreadsheets read Thai
    assert "attachment" in answer.headers["content-disposition"]
    assert "ชุมชนผ้าทอบ้านดอยเงิน" in answer.content.decode("utf-8-sig")
    answer = editor.get(f"/reports/community/{COMMUNITY}?download=1")
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.text.startswith("<!DOCTYPE html>") and "<script" not in answer.text
    answer = editor.get("/reports/overview?from=2026-10-01&to=2026-10-28&sort=name")
    assert "1 ต.ค. 2569 – 28 ต.ค. 2569" in answer.text  # Buddhist era by default
    assert editor.get("/reports/overview?from=2026-10-28&to=2026-10-01").status_code == 400
    assert editor.get("/reports/community/nowhere").status_code == 404


def test_english_and_common_era_for_a_user_who_wants_them(app: FastAPI, engine: Engine) -> None:
    reader = WebClient(app).sign_in("reader")
    page = reader.get("/calendar?day=2026-12-10")
    assert "Calendar" in page.text and "December 2569" in page.text
    assert reader.post("/account", {"language": "en", "display_name": "Reader"}).status_code == 303
    page = reader.get("/calendar?day=2026-12-10")
    assert "December 2026" in page.text and 'lang="en"' in page.text
    assert reader.post("/account", {"language": "th", "buddhist_era": "true"}).status_code == 303
    page = reader.get("/calendar?day=2026-12-10")
    assert "ปฏิทิน" in page.text and "ธันวาคม 2569" in page.text and 'lang="th"' in page.text
    reader.close()


def test_an_admin_manages_users(app: FastAPI, engine: Engine) -> None:
    admin = WebClient(app).sign_in("admin")
    answer = admin.post(
        "/admin/users",
        {
            "username": "Somsri",
            "password": "long-enough-pw",
            "role": "approver",
            "display_name": "สมศรี",
        },
    )
    assert answer.status_code == 303
    assert (
        admin.post(
            "/admin/users", {"username": "x y", "password": "long-enough-pw", "role": "viewer"}
        ).status_code
        == 400
    )
    assert (
        admin.post("/admin/users/editor", {"role": "viewer"}).status_code == 303
    )  # active unticked
    assert admin.post("/admin/users/admin", {"role": "viewer", "active": "true"}).status_code == 303
    with session_scope(engine) as session:
        users = {u.username: (u.role, u.active) for u in session.scalars(select(User))}
    assert users["somsri"] == (Role.APPROVER, True)
    assert users["editor"] == (Role.VIEWER, False)
    assert users["admin"] == (Role.ADMIN, True)  # an admin cannot demote themselves
    page = admin.get("/admin/audit")
    assert "สร้างผู้ใช้ สมศรี" in page.text and "แก้ไขผู้ใช้ editor" in page.text  # sentences
    admin.close()
    assert actions(engine)[0] == ("admin", "user.create", actions(engine)[0][2])


def test_pages_show_what_the_database_has(editor: WebClient, engine: Engine) -> None:
    page = editor.get("/communities")
    with session_scope(engine) as session:
        names = session.scalars(select(Community.name_th)).all()
    assert len(names) == 10 and all(name in page.text for name in names)
    page = editor.get(f"/communities/{COMMUNITY}")
    assert "ผ้าซิ่นลายน้ำไหลรุ่นใหม่" in page.text  # a highlight
    assert "บุคคลในภาพให้ความยินยอมแล้ว" in page.text and "ยังไม่มีบันทึกความยินยอม" in page.text
    media = editor.get("/media/highlight/1/0")
    assert media.status_code == 200 and media.headers["content-type"] == "image/png"
    assert editor.get("/media/highlight/1/7").status_code == 404
    assert editor.get("/campaigns/nothing-here").status_code == 404
    assert editor.get("/posts/999").status_code == 404
