"""Control characters and personal data in errors (#12, items 10 and 12): a NUL (or another
control character) in a parameter or form field is a clear 400 naming the field, not a 500,
with or without a session; the CSV import names the file, line and field of one and prints
no traceback and no personal data; database errors never carry the row's values; an
unclosed quote in a CSV is reported as such, at its line."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from marketing.cli import main
from marketing.cli.communities import SAMPLE
from marketing.db import session_scope
from marketing.models import Community, Subscriber, User
from marketing.problems import InvalidInput, control_character
from marketing.reference import import_reference
from tests.support.web import CSRF, WebClient, import_sample, imported, token_for

REFUSED_TH = "มีอักขระควบคุม"
EMAIL = "somchai.secret@example.org"
NAME = "สมชาย ลับมาก"


def test_control_characters_are_named_but_tab_and_line_ends_are_text() -> None:
    assert control_character("a\x00b") == "U+0000"
    assert control_character("ก\x1bข") == "U+001B"
    assert control_character("\x7f") == "U+007F"
    assert control_character("\x85") == "U+0085"
    assert control_character("ผ้าทอ\tบ้าน\r\nดอยเงิน") is None


@pytest.mark.parametrize(
    "path",
    [
        "/posts?campaign=%00",
        "/posts?community=nan%00",
        "/calendar?community=%00",
        "/calendar?day=2026-11%00",
        "/campaigns?x%00=1",
    ],
)
def test_a_nul_in_a_filter_is_a_clear_400(editor: WebClient, path: str) -> None:
    answer = editor.get(path)
    assert answer.status_code == 400
    assert REFUSED_TH in answer.text and "U+0000" in answer.text


def test_a_nul_in_the_sign_in_name_without_a_session_is_a_clear_400(app: FastAPI) -> None:
    with TestClient(app, follow_redirects=False) as client:
        token = CSRF.search(client.get("/login").text)
        assert token
        answer = client.post(
            "/login",
            data={"username": "admin\x00", "password": "x", "csrf_token": token[1]},
        )
        assert answer.status_code == 400
        assert REFUSED_TH in answer.text and "username" in answer.text


def test_a_nul_in_the_account_page_changes_nothing(editor: WebClient, engine: Engine) -> None:
    answer = editor.post("/account", {"language": "th", "display_name": "คุณ\x00บรรณาธิการ"})
    assert answer.status_code == 400
    assert REFUSED_TH in answer.text and "display_name" in answer.text
    with session_scope(engine) as session:
        user = session.scalars(select(User).where(User.username == "editor")).one()
        assert "\x00" not in (user.display_name or "")


def test_the_api_refuses_a_nul_with_json(app: FastAPI, engine: Engine) -> None:
    token = token_for(engine, "editor")
    with TestClient(app) as client:
        answer = client.get(
            "/api/v1/posts?campaign=%00", headers={"Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("campaign: contains the control character U+0000")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_a_nul_in_a_csv_import_names_file_line_and_field_without_the_row(
    db_url: str, tmp_path: Path, engine: Engine
) -> None:
    assert run("communities", "import", "--sample").exit_code == 0
    file = tmp_path / "people.csv"
    file.write_text(
        "community,email,name,consent_source,consent_at\n"
        f"nan-ban-doi-ngoen,{EMAIL},สมชาย\x00 ลับมาก,form,2026-01-01T00:00:00+07:00\n",
        encoding="utf-8",
    )
    result = run("communities", "import", str(file))
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"{file}:2:3: subscribers[0].name: contains a control character (U+0000)" in (
        " ".join(result.output.split())
    )
    assert EMAIL not in result.output and "ลับมาก" not in result.output
    assert "Traceback" not in result.output
    with session_scope(engine) as session:
        assert session.scalars(select(Subscriber).where(Subscriber.email == EMAIL)).all() == []


def test_database_errors_do_not_carry_the_rows_values(engine: Engine) -> None:
    import_sample(engine)
    with pytest.raises(DBAPIError) as failed, session_scope(engine) as session:
        community = session.scalars(select(Community)).first()
        assert community is not None
        for _ in range(2):  # the same address twice in one community
            session.add(
                Subscriber(
                    email=EMAIL,
                    name=NAME,
                    community_id=community.id,
                    consent_source="form",
                    consent_at=community.created_at,
                )
            )
            session.flush()
    # The statement's parameters (the whole row) are hidden.  PostgreSQL's own DETAIL of a
    # unique violation still names the key (the address): the importers check duplicates
    # before writing so that it never comes to this.
    assert NAME not in str(failed.value)
    assert "parameters hidden" in str(failed.value)


def test_an_unclosed_quote_in_a_csv_import_is_reported_at_its_line(
    db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "people.csv"
    file.write_text(
        "community,email,name,consent_source,consent_at\n"
        "nan-ban-doi-ngoen,a@example.org,A,form,2026-01-01T00:00:00+07:00\n"
        'nan-ban-doi-ngoen,b@example.org,"B,form,2026-01-01T00:00:00+07:00\n'
        "nan-ban-doi-ngoen,c@example.org,C,form,2026-01-01T00:00:00+07:00\n",
        encoding="utf-8",
    )
    result = run("communities", "import", str(file))
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert f"{file}:3: (row): a quoted cell begins on this line and is never closed" in output
    assert "is required but missing" not in output


def test_an_unclosed_quote_in_an_uploaded_csv_is_reported_at_its_line(editor: WebClient) -> None:
    answer = editor.post(
        "/communities/nan-ban-doi-ngoen/subscribers",
        {"consent_source": "แบบฟอร์ม", "consent_date": "2026-11-01"},
        files={
            "file": ("list.csv", b'email,name\na@example.org,"A\nb@example.org,B\n', "text/csv")
        },
    )
    page = imported(editor, answer)  # the import runs in the background; its page reports
    assert "never closed" in page.text and "บรรทัด 2" in page.text


def test_a_refused_import_carries_no_row_in_its_traceback(session: Session, tmp_path: Path) -> None:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    file = tmp_path / "people.csv"
    file.write_text(
        "community,email,name,consent_source,consent_at\n"
        f"nan-ban-doi-ngoen,not-an-address,{NAME},form,2026-01-01T00:00:00+07:00\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as refused:
        import_reference(session=session, path=file)
    printed = "".join(traceback.format_exception(refused.value))
    assert "subscribers[0].email" in printed
    assert "not-an-address" not in printed and NAME not in printed
