"""LINE multicast to our consenting subscribers who linked their LINE user id (#16): the id
set through the subscriber CSV import (fast path and the model's checks, a bad id named by
file, line, column and field), kept by a later file without it, read by the worker's
``subscribers`` callable (tasks/wiring.py) for the account's community, multicast through the
real SDK to the LINE sandbox, and included in the privacy export and erased with the rest.
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from channels.base import Account, OutgoingPost
from channels.sandbox.line import LineSandbox
from marketing.models import ChannelAccount, ChannelKind, Community, Subscriber
from marketing.privacy import erase_subscriber, export_subscriber
from marketing.problems import InvalidInput
from marketing.reference import import_reference

HEADER = "community,email,name,consent_source,consent_at,unsubscribed_at,line_user_id\n"
AT = "2026-05-01T09:00:00+07:00"
LATER = "2026-06-01T09:00:00+07:00"
TOKEN = "line-subscribers-token-NAN-0b1d"


def uid(n: int) -> str:
    return "U" + f"{n:032x}"


def write(tmp_path: Path, body: str, name: str = "subs.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def by_email(session: Session) -> dict[str, Subscriber]:
    return {s.email: s for s in session.scalars(select(Subscriber))}


@pytest.fixture
def line() -> Iterator[LineSandbox]:
    server = LineSandbox(seed=13)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def communities(session: Session) -> None:
    for slug in ("ban-a", "ban-b"):
        session.add(Community(slug=slug, name_th=slug, name_en=slug, province="น่าน"))
    session.commit()


def test_the_csv_import_sets_and_keeps_a_linked_line_id(session: Session, tmp_path: Path) -> None:
    communities(session)
    body = (
        f"ban-a,a1@example.org,เอ,บูธ,{AT},,{uid(1)}\n"
        f"ban-a,a2@example.org,บี,บูธ,{AT},,\n"
        # Through the model's path (a quoted display name), the id is still kept.
        f'ban-a,"Chai <a3@example.org>",ชัย,บูธ,{AT},,{uid(3)}\n'
    )
    import_reference(session=session, path=write(tmp_path, HEADER + body))
    session.commit()
    found = by_email(session)
    assert found["a1@example.org"].line_user_id == uid(1)
    assert found["a2@example.org"].line_user_id is None
    assert found["a3@example.org"].line_user_id == uid(3)
    # A later list without the column keeps the id; one with a new id changes it.
    plain = "community,email,name,consent_source,consent_at\n"
    import_reference(
        session=session, path=write(tmp_path, plain + f"ban-a,a1@example.org,เอ,บูธ,{AT}\n", "b.csv")
    )
    import_reference(
        session=session,
        path=write(tmp_path, HEADER + f"ban-a,a2@example.org,บี,บูธ,{AT},,{uid(2)}\n", "c.csv"),
    )
    session.commit()
    session.expire_all()
    found = by_email(session)
    assert found["a1@example.org"].line_user_id == uid(1)
    assert found["a2@example.org"].line_user_id == uid(2)


def test_a_bad_line_id_is_named_and_changes_nothing(session: Session, tmp_path: Path) -> None:
    communities(session)
    body = f"ban-a,ok@example.org,เอ,บูธ,{AT},,{uid(1)}\nban-a,b@example.org,บี,บูธ,{AT},,U123\n"
    path = write(tmp_path, HEADER + body)
    with pytest.raises(InvalidInput) as info:
        import_reference(session=session, path=path)
    session.rollback()
    problems = info.value.problems
    assert [(p.file, p.line, p.column) for p in problems] == [(str(path), 3, 7)]
    assert "line_user_id" in problems[0].field
    assert by_email(session) == {}


def test_multicast_reaches_the_consenting_linked_subscribers_of_the_community(
    session: Session, engine: Engine, tmp_path: Path, line: LineSandbox
) -> None:
    from tasks.wiring import linked_subscribers

    communities(session)
    friends = [uid(n) for n in range(1, 6)]
    channel = line.register_channel(TOKEN, display_name="บ้านเอ", friends=friends)
    body = (
        f"ban-a,a1@example.org,เอ,บูธ,{AT},,{uid(1)}\n"
        f"ban-a,a2@example.org,บี,บูธ,{AT},{LATER},{uid(2)}\n"  # unsubscribed: never
        f"ban-a,a3@example.org,ซี,บูธ,{AT},,\n"  # no LINE id
        f"ban-b,b4@example.org,ดี,บูธ,{AT},,{uid(4)}\n"  # another community
        f"ban-a,a5@example.org,อี,บูธ,{AT},,{uid(5)}\n"
    )
    import_reference(session=session, path=write(tmp_path, HEADER + body))
    ban_a = session.scalars(select(Community.id).where(Community.slug == "ban-a")).one()
    session.add_all(
        [
            ChannelAccount(
                slug="ban-a-line",
                kind=ChannelKind.LINE,
                external_id=channel.user_id,
                display_name="บ้านเอ",
                community_id=ban_a,
            ),
            ChannelAccount(
                slug="glo-line-x",
                kind=ChannelKind.LINE,
                external_id="@glo-x",
                display_name="โครงการ",
            ),
        ]
    )
    session.commit()
    account = Account("line", channel.user_id, "บ้านเอ", SecretStr(TOKEN))
    assert linked_subscribers(account, engine=engine) == [uid(1), uid(5)]
    programme = Account("line", "@glo-x", "โครงการ", SecretStr(TOKEN))
    assert linked_subscribers(programme, engine=engine) == [uid(1), uid(4), uid(5)]

    from channels.line import LineAdapter

    adapter = LineAdapter(
        api_url=line.url,
        timeout=5.0,
        subscribers=lambda a: linked_subscribers(a, engine=engine),
    )
    adapter.publish(
        OutgoingPost(
            marker="post-ban-a-line-0001",
            account=account,
            content={"text": "สวัสดีสมาชิก", "target": "subscribers"},
        )
    )
    sent = line.accepted(kind="multicast")
    assert len(sent) == 1 and sorted(sent[0].recipients) == [uid(1), uid(5)]


def test_privacy_export_includes_and_erase_removes_the_line_id(
    session: Session, tmp_path: Path
) -> None:
    communities(session)
    import_reference(
        session=session,
        path=write(tmp_path, HEADER + f"ban-a,a1@example.org,เอ,บูธ,{AT},,{uid(1)}\n"),
    )
    session.commit()
    exported = export_subscriber(session=session, address="A1@example.org")
    assert [s["line_user_id"] for s in exported["subscribers"]] == [uid(1)]
    erase_subscriber(session=session, address="a1@example.org", reason="asked", actor="test")
    session.commit()
    assert [s.line_user_id for s in session.scalars(select(Subscriber))] == [None]
