"""Pages reached only through a business (#13): ``/me/accounts`` leaves them out, so the
connect flow also lists ``/me/businesses`` -> ``owned_pages`` / ``client_pages`` when
``business_management`` was granted, and stores such a Page's own Page token."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from fastapi import FastAPI
from sqlalchemy import Engine, select

from channels.sandbox.graph import GraphSandbox
from marketing.db import session_scope
from marketing.models import AccountToken, ChannelAccount, Role
from marketing.reference import import_reference
from marketing.settings import reset_settings
from marketing.token_store import load_tokens
from marketing.web import create_app
from tests.support.web import WebClient, add_user
from tests.test_delegated_connect import APP_ID, APP_SECRET, BASE, facebook_consent

DIRECT, THROUGH_BUSINESS = "6660001", "6660002"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphSandbox]:
    from cryptography.fernet import Fernet

    sandbox = GraphSandbox().start()
    sandbox.register_app(APP_ID, APP_SECRET)
    sandbox.register_page(DIRECT, "unused-preset-direct", "เพจที่ดูแลเอง")
    sandbox.register_page(THROUGH_BUSINESS, "unused-preset-business", "เพจของวิสาหกิจชุมชน")
    sandbox.register_user(
        "officer",
        "เจ้าหน้าที่",
        [DIRECT],
        businesses={"9100001": ("วิสาหกิจชุมชนบ้านดอยเงิน", [THROUGH_BUSINESS])},
    )
    for name, value in {
        "PUBLIC_BASE_URL": BASE,
        "GRAPH_API_URL": sandbox.url,
        "FACEBOOK_DIALOG_URL": sandbox.url,
        "FACEBOOK_APP_ID": APP_ID,
        "FACEBOOK_APP_SECRET": APP_SECRET,
        "TOKEN_KEYS": Fernet.generate_key().decode(),
    }.items():
        monkeypatch.setenv(f"MARKETING_{name}", value)
    reset_settings()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def app(engine: Engine, graph: GraphSandbox) -> FastAPI:
    from marketing.cli.communities import SAMPLE

    with session_scope(engine) as session:
        import_reference(session=session, path=SAMPLE)
    add_user(engine, "admin", Role.ADMIN)
    return create_app(engine=engine)


def picker(admin: WebClient, graph: GraphSandbox, *, refuse: str | None = None) -> str:
    """Through the Login dialog with both Pages ticked (``refuse``: one permission unticked);
    the picker page."""
    page = admin.get("/accounts/connect")
    csrf = CSRF.search(page.text)
    assert csrf, page.text[:300]
    started = admin.post("/accounts/connect/facebook", data={"csrf_token": csrf[1]})
    dialog = started.headers["location"]
    assert "business_management" in dialog  # asked for, not required
    if refuse:
        dialog = dialog.replace(refuse, "").replace("%2C%2C", "%2C").replace(",,", ",")
    back = admin.get(facebook_consent(graph, dialog, [DIRECT, THROUGH_BUSINESS]))
    assert back.status_code == 303, back.text[:300]
    return admin.get(back.headers["location"]).text


def test_a_page_reached_through_a_business_is_listed_and_stored_with_its_own_token(
    app: FastAPI, engine: Engine, graph: GraphSandbox
) -> None:
    admin = WebClient(app).sign_in("admin")
    shown = picker(admin, graph)
    assert f'name="tie-{DIRECT}"' in shown and f'name="tie-{THROUGH_BUSINESS}"' in shown
    assert shown.count(f'name="tie-{THROUGH_BUSINESS}"') == 1
    csrf = CSRF.search(shown)
    assert csrf
    done = admin.post(
        "/accounts/connect/pick",
        data={
            "csrf_token": csrf[1],
            f"tie-{DIRECT}": "skip",
            f"tie-{THROUGH_BUSINESS}": "programme",
        },
    )
    assert done.status_code in (200, 303), done.text[:300]
    with session_scope(engine) as session:
        account = session.scalars(
            select(ChannelAccount).where(ChannelAccount.external_id == THROUGH_BUSINESS)
        ).one()
        stored = load_tokens(session=session, account_id=account.id)
        assert stored is not None
        token = stored.access_token.get_secret_value()
        assert session.scalar(select(AccountToken.id).where(AccountToken.account_id == account.id))
    # The stored token is that Page's own Page token, as Graph's /debug_token tells it.
    issued = requests.get(
        f"{graph.url}/v25.0/debug_token",
        params={"input_token": token, "access_token": f"{APP_ID}|{APP_SECRET}"},
        timeout=10,
    ).json()["data"]
    assert issued["type"] == "PAGE" and issued["profile_id"] == THROUGH_BUSINESS
    admin.close()


def test_without_business_management_only_the_pages_of_me_accounts_are_offered(
    app: FastAPI, graph: GraphSandbox
) -> None:
    admin = WebClient(app).sign_in("admin")
    shown = picker(admin, graph, refuse="business_management")
    assert f'name="tie-{DIRECT}"' in shown and f'name="tie-{THROUGH_BUSINESS}"' not in shown
    admin.close()
