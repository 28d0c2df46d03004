"""Who may do what in the web app: nothing without signing in (except the email endpoints), a
viewer changes nothing, a form without its CSRF token is refused, roles and four-eyes approval
hold, and every change is in the audit log.  Routes are enumerated from the app itself, so a
route added later is covered without touching these tests."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from marketing.db import session_scope
from marketing.models import ApiToken, AuditLog, Campaign, CampaignStatus, Role, User
from marketing.web import create_app
from marketing.web.app import ROUTERS
from tests.support.web import (
    NOW,
    PASSWORD,
    WebClient,
    add_user,
    clock_at,
    import_sample,
    token_for,
)

PUBLIC = ("/e/", "/go/", "/login", "/static", "/healthz", "/readyz", "/reconnect/")
# The probes say only ok / not ok; /reconnect/: delegated links (docs/notifications.md).
# For Prometheus: the scrape network or an admin's token, else 403 (tests/test_observability.py).
SCRAPE_ONLY = "/metrics"
# What a person may change about themselves whatever their role.
SELF_SERVICE = {
    "/logout",
    "/account",
    "/account/password",
    "/account/notifications",
    "/account/tokens/1/revoke",
}
SAMPLES = {
    "slug": "nan-ban-doi-ngoen",
    "post_id": "1",
    "username": "viewer",
    "key": "photo",
    "highlight_id": "1",
    "index": "0",
    "token_id": "1",
    "item_id": "1",
    "year": "2570",
    "kind": "shop",
}

CAMPAIGN = """\
slug: songkran-web
name: สงกรานต์ที่น่าน
window:
  start: 2031-04-10
  end: 2031-04-16
communities: [nan-ban-doi-ngoen]
channels:
  facebook:
    account: community
    message: "สุขสันต์วันสงกรานต์จาก{{ community.name_th }}"
schedule:
  at: [2031-04-13T09:00:00+07:00]
"""


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the app's routers with sample values for path parameters."""
    found = []
    for route in (r for router in ROUTERS for r in router.routes):
        if not isinstance(route, APIRoute) or route.path.startswith(PUBLIC):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m[1]], route.path)
        found += [(method, path) for method in sorted(route.methods)]
    return found


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    import_sample(engine)
    for name, role in (
        ("viewer", Role.VIEWER),
        ("editor", Role.EDITOR),
        ("approver", Role.APPROVER),
        ("approver2", Role.APPROVER),
        ("admin", Role.ADMIN),
    ):
        add_user(engine, name, role)
    return create_app(engine=engine, clock=clock_at(NOW))  # CAMPAIGN (2031) is ahead of it


@pytest.fixture
def anonymous(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        yield client


def signed_in(app: FastAPI, username: str) -> WebClient:
    return WebClient(app).sign_in(username)


def audit_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(AuditLog)) or 0)


def test_every_page_and_api_call_needs_sign_in(app: FastAPI, anonymous: TestClient) -> None:
    checked = routes(app)
    assert len(checked) > 40  # the enumeration found the app's routes
    for method, path in checked:
        answer = anonymous.request(method, path)
        if path.startswith("/api/"):
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.headers["www-authenticate"] == "Bearer"
        elif path == SCRAPE_ONLY:
            assert answer.status_code == 403, (method, path, answer.status_code)
        else:
            assert answer.status_code == 303, (method, path, answer.status_code)
            assert answer.headers["location"].startswith("/login?next="), (method, path)


def test_the_openapi_description_and_static_files_are_public(anonymous: TestClient) -> None:
    spec = anonymous.get("/api/openapi.json").json()
    assert "/api/v1/campaigns" in spec["paths"]
    assert anonymous.get("/static/style.css").status_code == 200


def test_a_wrong_or_revoked_token_is_refused(
    app: FastAPI, anonymous: TestClient, engine: Engine
) -> None:
    token = token_for(engine, "viewer")
    assert (
        anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["username"]
        == "viewer"
    )
    for header in (f"Bearer {token}x", "Bearer mkt_nothing", f"Basic {token}", "Bearer"):
        assert anonymous.get("/api/v1/me", headers={"Authorization": header}).status_code == 401
    with session_scope(engine) as session:
        # Only the hash is kept.
        assert session.scalars(select(ApiToken.token_hash)).all() != [token]
        assert token not in {t.token_hash for t in session.scalars(select(ApiToken))}
        session.execute(ApiToken.__table__.update().values(revoked_at=func.now()))
    assert (
        anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


def test_a_viewer_cannot_change_anything(app: FastAPI, engine: Engine) -> None:
    viewer = signed_in(app, "viewer")
    token = {"Authorization": f"Bearer {token_for(engine, 'viewer')}"}
    before = audit_count(engine)
    changes = [(m, p) for m, p in routes(app) if m == "POST" and p not in SELF_SERVICE]
    assert len(changes) > 20
    for _method, path in changes:
        # The role is checked before the form is even read.
        answer = viewer.post(path, data={"yaml": CAMPAIGN, "role": "admin", "active": "true"})
        assert answer.status_code == 403, (path, answer.status_code)
        if path.startswith("/api/"):
            answer = viewer.http.post(path, headers=token, json={"yaml": CAMPAIGN})
            assert answer.status_code == 403, (path, answer.status_code)
        else:
            assert "ต้องมีบทบาท" in answer.text, path  # says which role it needs
    assert audit_count(engine) == before
    with session_scope(engine) as session:
        assert session.scalars(select(Campaign)).all() == []
        role = session.scalars(select(User.role).where(User.username == "viewer")).one()
        assert role == Role.VIEWER
    viewer.close()


def test_posts_without_the_csrf_token_are_refused(app: FastAPI, engine: Engine) -> None:
    admin = signed_in(app, "admin")
    before = audit_count(engine)
    for method, path in routes(app):
        if method != "POST":
            continue
        for data, headers in (
            ({"yaml": CAMPAIGN, "role": "viewer"}, {}),
            ({"yaml": CAMPAIGN, "role": "viewer", "csrf_token": "forged"}, {}),
        ):
            answer = admin.http.post(path, data=data, headers=headers)
            assert answer.status_code == 403, (path, data, answer.status_code)
        if path.startswith("/api/"):
            answer = admin.http.post(path, json={"yaml": CAMPAIGN})
            assert answer.status_code == 403, (path, answer.status_code)
            answer = admin.http.post(path, json={"yaml": CAMPAIGN}, headers={"X-CSRF-Token": "x"})
            assert answer.status_code == 403, (path, answer.status_code)
    assert audit_count(engine) == before
    # The same session with its token works, by header and by form.
    answer = admin.http.get("/api/v1/me", headers={"X-CSRF-Token": admin.csrf})
    assert answer.json()["username"] == "admin"
    answer = admin.http.post(
        "/api/v1/campaigns/check", json={"yaml": CAMPAIGN}, headers={"X-CSRF-Token": admin.csrf}
    )
    assert answer.status_code == 200 and answer.json()["ok"] is True
    assert admin.post("/logout").status_code == 303
    assert admin.get("/").status_code == 303
    admin.close()


def test_login_refuses_wrong_passwords_and_inactive_users(app: FastAPI, engine: Engine) -> None:
    client = WebClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.http.post(
        "/login", data={"username": "editor", "password": "wrong-password!", "csrf_token": token[1]}
    )
    assert answer.status_code == 401 and "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" in answer.text
    answer = client.http.post("/login", data={"username": "editor", "password": PASSWORD})
    assert answer.status_code == 403  # no CSRF token: login CSRF is refused too
    with session_scope(engine) as session:
        session.execute(
            User.__table__.update().where(User.username == "editor").values(active=False)
        )
    answer = client.http.post(
        "/login", data={"username": "editor", "password": PASSWORD, "csrf_token": token[1]}
    )
    assert answer.status_code == 401
    client.close()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/calendar?view=week", "/calendar?view=week"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_a_redirect_after_sign_in_stays_on_this_site(
    app: FastAPI, target: str, expected: str
) -> None:
    client = WebClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.http.post(
        "/login",
        data={"username": "viewer", "password": PASSWORD, "csrf_token": token[1], "next": target},
    )
    assert answer.status_code == 303 and answer.headers["location"] == expected
    client.close()


def test_changing_the_password_ends_other_sessions(app: FastAPI) -> None:
    first, second = signed_in(app, "editor"), signed_in(app, "editor")
    answer = first.post("/account/password", {"current": PASSWORD, "new": "another-long-password"})
    assert answer.status_code == 303
    assert first.get("/").status_code == 200
    assert second.get("/").status_code == 303  # signed out
    first.close()
    second.close()


def test_roles_four_eyes_and_the_audit_log(app: FastAPI, engine: Engine) -> None:
    def bearer(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(engine, name)}"}

    with TestClient(app) as api:
        answer = api.post("/api/v1/campaigns", json={"yaml": CAMPAIGN}, headers=bearer("editor"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["added"] == 1 and answer.json()["status"] == "draft"
        # An editor may not approve at all.
        shown = api.get("/api/v1/campaigns/songkran-web", headers=bearer("editor"))
        approval = {"approval_hash": shown.json()["approval_hash"]}
        answer = api.post(
            "/api/v1/campaigns/songkran-web/approve", json=approval, headers=bearer("editor")
        )
        assert answer.status_code == 403
        # An approver who applied a change may not approve it.
        changed = CAMPAIGN.replace("สุขสันต์", "สวัสดี")
        answer = api.post("/api/v1/campaigns", json={"yaml": changed}, headers=bearer("approver"))
        assert answer.status_code == 200 and answer.json()["updated"] == 1
        shown = api.get("/api/v1/campaigns/songkran-web", headers=bearer("approver"))
        approval = {"approval_hash": shown.json()["approval_hash"]}
        answer = api.post(
            "/api/v1/campaigns/songkran-web/approve", json=approval, headers=bearer("approver")
        )
        assert answer.status_code == 409 and "another approver" in answer.json()["detail"]
        # Another approver may.
        answer = api.post(
            "/api/v1/campaigns/songkran-web/approve", json=approval, headers=bearer("approver2")
        )
        assert answer.status_code == 200 and answer.json()["status"] == "approved"
        assert answer.json()["created_by"] == "editor"
        assert answer.json()["approved_by"] == "approver2"
    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert campaign.status == CampaignStatus.APPROVED
        entries = session.execute(
            select(AuditLog.actor, AuditLog.action, AuditLog.object_type, AuditLog.object_id)
            .where(AuditLog.object_type == "campaign")
            .order_by(AuditLog.id)
        ).all()
        assert [tuple(e) for e in entries] == [
            ("editor", "campaign.apply", "campaign", "songkran-web"),
            ("approver", "campaign.apply", "campaign", "songkran-web"),
            ("approver2", "campaign.approve", "campaign", "songkran-web"),
        ]
        assert all(e.at is not None for e in session.scalars(select(AuditLog)))
