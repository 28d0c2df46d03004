"""Subscriber CSV files streamed into the database (marketing/subscriber_import.py): the
same outcome as the reference importer -- counts, an unsubscribe that stands, consent
evidence, problems naming file, line, column and field, nothing changed by a bad file --
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketing import subscriber_import
from marketing.models import Community, Subscriber
from marketing.problems import InvalidInput
from marketing.reference import SubscriberIn, import_reference
from marketing.subscriber_import import fast_email, fast_time, import_subscriber_csv

HEADER = "community,email,name,consent_source,consent_at,tags\n"
AT = "2026-05-01T09:00:00+07:00"


def _communities(session: Session, *slugs: str) -> None:
    for slug in slugs:
        session.add(Community(slug=slug, name_th=slug, name_en=slug, province="น่าน"))
    session.flush()


def _write(tmp_path: Path, body: str, name: str = "subs.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def _subscribers(session: Session) -> dict[str, Subscriber]:
    return {s.email: s for s in session.scalars(select(Subscriber))}


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Subscriber)) or 0


def _model_email(value: str) -> str | None:
    try:
        return SubscriberIn.model_validate(
            {"email": value, "consent_source": "x", "consent_at": AT}
        ).email
    except ValidationError:
        return None


@pytest.mark.parametrize(
    "address",
    [
        "somchai@example.org",
        "Som.Chai+news@Mail.Example.ORG",
        "a_b-c@sub-domain.example.co.th",
        "x@localhost.localdomain",
        "user@foo.test",
        "user@printer.local",
        "user@1.2.3.4",
        "user@example.123",
        "user@xn--72c1a1bt4awk9o.xn--o3cw4h",
        "user@ab--cd.org",
        "user@-bad.org",
        "a" * 65 + "@example.org",
        "a..b@example.org",
        ".a@example.org",
        "user@example",
    ],
)
def test_the_quick_address_check_agrees_with_the_model_when_it_answers(address: str) -> None:
    quick = fast_email(address)
    if quick is not None:
        assert quick == _model_email(address)
    # What it does not answer goes to the model; the plain ones it must answer.
    if address in ("somchai@example.org", "Som.Chai+news@Mail.Example.ORG"):
        assert quick is not None


@pytest.mark.parametrize(
    "value",
    [
        AT,
        "2026-05-01T02:00:00Z",
        "2026-05-01T09:00+07:00",
        "2026-05-01T09:00:00.123456-03:30",
        "2026-02-30T09:00:00+07:00",
        "2026-05-01T09:00:00",
        "2026-05-01",
        "yesterday",
    ],
)
def test_the_quick_time_check_agrees_with_the_model_when_it_answers(value: str) -> None:
    quick = fast_time(value)
    if quick is not None:
        from pydantic import AwareDatetime

        assert quick == TypeAdapter(AwareDatetime).validate_python(value)
    if value == AT:
        assert quick is not None


def test_import_counts_and_a_second_import_changes_nothing(
    session: Session, tmp_path: Path
) -> None:
    _communities(session, "ban-a", "ban-b")
    rows = "".join(
        f"ban-{'ab'[n % 2]},member{n}@example.org,สมาชิก {n},บูธ,{AT},{'ตลาด|ผ้า' if n % 3 else ''}\n"
        for n in range(12_000)  # more than one batch
    )
    path = _write(tmp_path, HEADER + rows)
    first = import_reference(session=session, path=path)
    assert first.counts["subscribers"] == {"created": 12_000, "updated": 0, "unchanged": 0}
    session.commit()
    second = import_reference(session=session, path=path)
    assert not second.changed
    assert second.counts["subscribers"]["unchanged"] == 12_000
    stored = _subscribers(session)
    assert stored["member1@example.org"].tags == ["ตลาด", "ผ้า"]
    assert stored["member3@example.org"].tags == []
    assert stored["member1@example.org"].consent_at == datetime(2026, 5, 1, 2, tzinfo=UTC)
    assert stored["member1@example.org"].name == "สมาชิก 1"


def test_changed_rows_are_updated_matching_addresses_without_regard_to_case(
    session: Session, tmp_path: Path
) -> None:
    _communities(session, "ban-a")
    path = _write(
        tmp_path,
        HEADER + f"ban-a,somchai@example.org,สมชาย,บูธ,{AT},\n"
        f"ban-a,somsri@example.org,สมศรี,บูธ,{AT},\n",
    )
    import_reference(session=session, path=path)
    session.commit()
    path.write_text(
        HEADER + f"ban-a,SomChai@Example.org,สมชาย ใจดี,บูธ,{AT},\n"
        f"ban-a,somsri@example.org,สมศรี,บูธ,{AT},\n"
        f"ban-a,new@example.org,ใหม่,บูธ,{AT},\n",
        encoding="utf-8",
    )
    summary = import_reference(session=session, path=path)
    assert summary.counts["subscribers"] == {"created": 1, "updated": 1, "unchanged": 1}
    session.commit()
    stored = _subscribers(session)
    assert set(stored) == {"SomChai@example.org", "somsri@example.org", "new@example.org"}
    assert stored["SomChai@example.org"].name == "สมชาย ใจดี"


def test_a_recorded_unsubscribe_stands_and_a_new_one_is_recorded(
    session: Session, tmp_path: Path
) -> None:
    _communities(session, "ban-a")
    gone = datetime(2026, 6, 1, tzinfo=UTC)
    session.add_all(
        [
            Subscriber(
                email="left@example.org",
                name="ออก",
                community_id=session.scalars(select(Community.id)).one(),
                consent_source="บูธ",
                consent_at=datetime(2026, 5, 1, 2, tzinfo=UTC),
                unsubscribed_at=gone,
            ),
        ]
    )
    session.commit()
    path = _write(
        tmp_path,
        "community,email,name,consent_source,consent_at,unsubscribed_at\n"
        f"ban-a,left@example.org,ออก,บูธ,{AT},\n"
        f"ban-a,leaving@example.org,กำลังออก,บูธ,{AT},2026-07-01T00:00:00+07:00\n",
    )
    import_reference(session=session, path=path)
    session.commit()
    stored = _subscribers(session)
    assert stored["left@example.org"].unsubscribed_at == gone
    assert stored["leaving@example.org"].unsubscribed_at == datetime(2026, 6, 30, 17, tzinfo=UTC)


def test_consent_evidence_and_unusual_addresses_are_kept(session: Session, tmp_path: Path) -> None:
    _communities(session, "ban-a")
    path = _write(
        tmp_path,
        "community,email,name,consent_source,consent_at,consent_form,consent_address\n"
        f"ban-a,plain@example.org,ก,เว็บ,{AT},https://example.org/signup,203.0.113.7\n"
        # Not plain: checked by the model, stored as the model normalises it.
        f"ban-a,สมชาย@ตัวอย่าง.ไทย,ข,เว็บ,2026-05-01 09:00:00+07:00,,\n",
    )
    summary = import_reference(session=session, path=path)
    assert summary.counts["subscribers"]["created"] == 2
    stored = _subscribers(session)
    plain = stored["plain@example.org"]
    assert (plain.consent_source, plain.consent_form, plain.consent_address) == (
        "เว็บ",
        "https://example.org/signup",
        "203.0.113.7",
    )
    assert _model_email("สมชาย@ตัวอย่าง.ไทย") in stored


BAD = {
    "address": (
        f"ban-a,ok@example.org,ก,บูธ,{AT},\nban-a,broken-address,ข,บูธ,{AT},\n",
        [(3, 2, "subscribers[1].email")],
        "valid email",
    ),
    "time": (
        "ban-a,ok@example.org,ก,บูธ,2026-13-01T00:00:00+07:00,\n",
        [(2, 5, "subscribers[0].consent_at")],
        "datetime",
    ),
    "community": (
        f"ban-zzz,ok@example.org,ก,บูธ,{AT},\n",
        [(2, 1, "subscribers[0].community")],
        "unknown community 'ban-zzz'",
    ),
    "duplicate": (
        f"ban-a,one@example.org,ก,บูธ,{AT},\nban-a,two@example.org,ข,บูธ,{AT},\n"
        f"ban-a,ONE@example.org,ค,บูธ,{AT},\n",
        [(4, None, "subscribers[2].email")],
        "duplicate subscriber ('ban-a', 'one@example.org')",
    ),
    "extra cell": (
        f"ban-a,ok@example.org,ก,บูธ,{AT},,extra\n",
        [(2, 7, "subscribers[0]")],
        "more cells than the header",
    ),
    "control character": (
        f"ban-a,ok@example.org,ก\x00ข,บูธ,{AT},\n",
        [(2, 3, "subscribers[0].name")],
        "control character (U+0000)",
    ),
    "long name": (
        f"ban-a,ok@example.org,{'ก' * 201},บูธ,{AT},\n",
        [(2, 3, "subscribers[0].name")],
        "longer than 200",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_names_file_line_column_and_field_and_changes_nothing(
    case: str, session: Session, tmp_path: Path
) -> None:
    _communities(session, "ban-a")
    session.add(
        Subscriber(
            email="ok@example.org",
            name="เดิม",
            community_id=session.scalars(select(Community.id)).one(),
            consent_source="บูธ",
            consent_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    session.commit()
    body, where, message = BAD[case]
    path = _write(tmp_path, HEADER + body)
    with pytest.raises(InvalidInput) as info:
        import_reference(session=session, path=path)
    session.rollback()
    problems = info.value.problems
    assert [(p.line, p.column, p.field) for p in problems] == where
    assert all(p.file == str(path) for p in problems)
    assert message.lower() in str(problems[0]).lower()
    assert "\x00" not in str(problems[0])
    assert _count(session) == 1
    assert _subscribers(session)["ok@example.org"].name == "เดิม"


def test_many_problems_are_kept_up_to_a_bound_and_the_rest_counted(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriber_import, "PROBLEMS_KEPT", 5)
    _communities(session, "ban-a")
    path = _write(tmp_path, HEADER + "".join(f"ban-a,bad{n},ก,บูธ,{AT},\n" for n in range(12)))
    with pytest.raises(InvalidInput) as info:
        import_reference(session=session, path=path)
    problems = info.value.problems
    assert [p.line for p in problems if p.line is not None] == [2, 3, 4, 5, 6]
    (rest,) = [p for p in problems if p.line is None]
    assert "7 more problems" in rest.message
    session.rollback()
    assert _count(session) == 0


def test_a_web_upload_takes_the_community_and_the_forms_consent(
    session: Session, tmp_path: Path
) -> None:
    _communities(session, "ban-a", "ban-b")
    consent = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=-7)
    path = _write(
        tmp_path,
        " email , name ,community,consent_source\n"
        "one@example.org,หนึ่ง,ban-b,\n"
        "two@example.org,สอง,,งานวัด\n",
        name="upload.bin",
    )
    summary = import_subscriber_csv(
        session=session,
        path=path,
        name="members.csv",
        community="ban-a",
        defaults={"consent_source": "แบบฟอร์ม", "consent_at": consent.isoformat()},
        strip_header=True,
    )
    assert summary.counts["subscribers"]["created"] == 2
    stored = _subscribers(session)
    ban_a = session.scalars(select(Community.id).where(Community.slug == "ban-a")).one()
    assert {s.community_id for s in stored.values()} == {ban_a}
    assert stored["one@example.org"].consent_source == "แบบฟอร์ม"
    assert stored["two@example.org"].consent_source == "งานวัด"
    assert stored["one@example.org"].consent_at == consent
    path.write_text("email,name\nfine@example.org,ก\nnot-an-address,ข\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        import_subscriber_csv(
            session=session,
            path=path,
            name="members.csv",
            community="ban-a",
            defaults={"consent_source": "แบบฟอร์ม", "consent_at": consent.isoformat()},
        )
    ((problem),) = info.value.problems
    assert (problem.file, problem.line, problem.field) == ("members.csv", 3, "subscribers[1].email")
