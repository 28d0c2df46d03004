"""The JSON API fuzzed from its own OpenAPI description (schemathesis): whatever a script sends,
signed in as an admin, the app never answers with a server error.  Bounded: a fixed number of
examples per operation, derandomized so that a run is repeatable."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine

from marketing.db import session_scope
from marketing.models import Role
from marketing.settings import get_settings
from marketing.web import create_app
from marketing.web.campaign_files import apply_campaign_text
from marketing.web.staff import find_user
from tests.support.web import NOW, add_user, clock_at, email_post, import_sample, token_for
from tests.test_web_auth import CAMPAIGN

EXAMPLES_PER_OPERATION = 25


def test_the_api_never_answers_with_a_server_error(engine: Engine) -> None:
    import_sample(engine)
    add_user(engine, "admin", Role.ADMIN)
    add_user(engine, "editor", Role.EDITOR)
    with session_scope(engine) as session:
        editor = find_user(session=session, username="editor")
        apply_campaign_text(
            session=session, text=CAMPAIGN, user=editor, settings=get_settings(), now=NOW
        )
    email_post(engine)
    headers = {"Authorization": f"Bearer {token_for(engine, 'admin')}"}
    app = create_app(engine=engine, clock=clock_at(NOW))
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 19  # the whole API is described
    calls: list[tuple[str, int]] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(headers=headers)
            calls.append((f"{case.method} {case.path}", response.status_code))
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:500]}"
            )

        call()
    statuses = {status for _label, status in calls}
    assert len(calls) > 5 * len(operations)  # it really ran
    assert 200 in statuses and 404 in statuses and 422 in statuses  # and went off the path
