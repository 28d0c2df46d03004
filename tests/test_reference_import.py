"""Importing communities, accounts, subscribers and highlights from YAML and CSV files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketing.cli.communities import SAMPLE
from marketing.models import ChannelAccount, ChannelKind, Community, Highlight, Subscriber
from marketing.problems import InvalidInput
from marketing.reference import import_reference
from marketing.settings import get_settings

GOOD = """\
communities:
  - slug: nan-test
    name_th: ชุมชนทดสอบน่าน
    name_en: Nan Test
    province: น่าน
    accounts:
      - channel: facebook
        external_id: "111"
        display_name: เพจทดสอบ
        secret: FB_TEST
    subscribers:
      - email: somchai@example.org
        name: สมชาย
        consent_source: แบบฟอร์ม
        consent_at: 2026-01-01T10:00:00+07:00
"""


def _counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(m)) or 0
        for m in (Community, ChannelAccount, Subscriber, Highlight)
    )


def test_sample_imports_and_second_import_changes_nothing(session: Session) -> None:
    first = import_reference(session=session, path=SAMPLE)
    session.commit()
    assert first.counts["communities"]["created"] == 10
    assert _counts(session) == (10, 24, 30, 20)
    nan = session.scalars(select(Community).where(Community.slug == "nan-ban-doi-ngoen")).one()
    assert nan.name_th == "ชุมชนผ้าทอบ้านดอยเงิน"
    assert nan.province == "น่าน"
    assert {
        a.kind
        for a in session.scalars(
            select(ChannelAccount).where(ChannelAccount.community_id == nan.id)
        )
    } == {ChannelKind.FACEBOOK, ChannelKind.YOUTUBE}
    highlight = session.scalars(select(Highlight).where(Highlight.community_id == nan.id)).first()
    assert highlight is not None and highlight.media[0] == "sample/nan-ban-doi-ngoen.png"
    assert (get_settings().media_root / highlight.media[0]).is_file()

    second = import_reference(session=session, path=SAMPLE)
    session.commit()
    assert not second.changed
    assert second.counts["subscribers"]["unchanged"] == 30
    assert _counts(session) == (10, 24, 30, 20)


def test_the_sample_is_marked_as_sample_data() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert "SAMPLE DATA" in text and "sample_data: true" in text


def test_changed_field_is_updated(session: Session, tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(GOOD, encoding="utf-8")
    import_reference(session=session, path=f)
    f.write_text(GOOD.replace("Nan Test", "Nan Test 2"), encoding="utf-8")
    summary = import_reference(session=session, path=f)
    assert summary.counts["communities"]["updated"] == 1
    assert session.scalars(select(Community.name_en)).one() == "Nan Test 2"


def test_recorded_unsubscribe_is_not_undone_by_an_old_list(
    session: Session, tmp_path: Path
) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(GOOD, encoding="utf-8")
    import_reference(session=session, path=f)
    sub = session.scalars(select(Subscriber)).one()
    gone = datetime(2026, 2, 1, tzinfo=UTC)
    sub.unsubscribed_at = gone
    session.flush()
    import_reference(session=session, path=f)
    assert session.scalars(select(Subscriber)).one().unsubscribed_at == gone


BAD_CASES = {
    "bad_yaml": ("communities:\n  - slug: a\n    name_th: [unclosed\n", 3, "", "YAML syntax error"),
    "missing_field": (
        "communities:\n  - slug: a\n    name_en: A\n    province: P\n",
        2,
        "communities[0].name_th",
        "required",
    ),
    "duplicate_slug": (
        "communities:\n"
        "  - {slug: a, name_th: ก, name_en: A, province: P}\n"
        "  - {slug: a, name_th: ข, name_en: B, province: P}\n",
        3,
        "communities[1].slug",
        "duplicate community slug",
    ),
    "invalid_email": (
        GOOD.replace("somchai@example.org", "somchai-at-example"),
        12,
        "communities[0].subscribers[0].email",
        "email",
    ),
    "token_in_file": (
        GOOD.replace("secret: FB_TEST", "token: EAABsecret"),
        10,
        "communities[0].accounts[0].token",
        "not a known field",
    ),
    "naive_consent_time": (
        GOOD.replace("2026-01-01T10:00:00+07:00", "2026-01-01 10:00"),
        15,
        "communities[0].subscribers[0].consent_at",
        "timezone",
    ),
    "unknown_community": (
        "subscribers:\n  - {community: nowhere, email: a@example.org, consent_source: x,"
        " consent_at: '2026-01-01T00:00:00+07:00'}\n",
        2,
        "subscribers[0].community",
        "unknown community",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_files_name_file_line_and_field_and_change_nothing(
    case: str, session: Session, tmp_path: Path
) -> None:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    before = _counts(session)
    text, line, field, message = BAD_CASES[case]
    f = tmp_path / f"{case}.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        import_reference(session=session, path=f)
    session.rollback()
    problem = info.value.problems[0]
    assert problem.file == str(f)
    assert problem.line == line
    assert problem.field == field
    assert message.lower() in str(problem).lower()
    assert _counts(session) == before


def test_every_problem_is_reported_at_once(session: Session, tmp_path: Path) -> None:
    f = tmp_path / "many.yaml"
    f.write_text(
        "communities:\n"
        "  - {slug: a, name_th: ก, name_en: A, province: P, timezone: Mars/Base}\n"
        "  - {slug: B!, name_th: ข, name_en: B, province: P}\n"
        "  - {slug: c, name_th: ค, name_en: C}\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as info:
        import_reference(session=session, path=f)
    assert [(p.line, p.field) for p in info.value.problems] == [
        (2, "communities[0].timezone"),
        (3, "communities[1].slug"),
        (4, "communities[2].province"),
    ]


def test_csv_subscribers_with_line_numbers(session: Session, tmp_path: Path) -> None:
    import_reference(session=session, path=SAMPLE)
    f = tmp_path / "subs.csv"
    f.write_text(
        "\ufeffcommunity,email,name,consent_source,consent_at\n"
        "trat-ban-ao-sai,new.one@example.org,คุณใหม่,บูธงานเทศกาล,2026-05-01T09:00:00+07:00\n"
        "trat-ban-ao-sai,broken-address,คุณผิด,บูธงานเทศกาล,2026-05-01T09:00:00+07:00\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as info:
        import_reference(session=session, path=f)
    (problem,) = info.value.problems
    assert (problem.line, problem.column, problem.field) == (3, 2, "subscribers[1].email")

    f.write_text(
        f.read_text(encoding="utf-8").splitlines()[0]
        + "\n"
        + f.read_text(encoding="utf-8").splitlines()[1]
        + "\n",
        encoding="utf-8",
    )
    summary = import_reference(session=session, path=f)
    assert summary.counts["subscribers"]["created"] == 1
    assert (
        session.scalars(
            select(Subscriber.name).where(Subscriber.email == "new.one@example.org")
        ).one()
        == "คุณใหม่"
    )


def test_csv_communities(session: Session, tmp_path: Path) -> None:
    f = tmp_path / "communities.csv"
    f.write_text(
        "slug,name_th,name_en,province,tags\nban-a,บ้านเอ,Ban A,ลำพูน,ผ้าทอ|อาหาร\n",
        encoding="utf-8",
    )
    import_reference(session=session, path=f)
    community = session.scalars(select(Community)).one()
    assert (community.province, community.tags) == ("ลำพูน", ["ผ้าทอ", "อาหาร"])
