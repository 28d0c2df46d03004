"""PDPA requests on both databases: the export holds every row about a person; after the
erasure no row names them, the programme's totals are unchanged and the erasure is audited
without the address; old tracking events are purged with their counts kept."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from marketing.cli import main
from marketing.cli.communities import SAMPLE
from marketing.db import session_scope, utcnow
from marketing.models import (
    AuditLog,
    Base,
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ChannelKind,
    Community,
    CommunityPerformance,
    Delivery,
    DeliveryState,
    EmailEvent,
    EmailEventKind,
    ImportJob,
    Post,
    PostState,
    Subscriber,
)
from marketing.performance import rebuild, record_email_event
from marketing.privacy import (
    address_hash,
    erase_subscriber,
    export_subscriber,
    purge_tracking_events,
    wipe_free_space,
)
from marketing.reference import import_reference
from marketing.settings import reset_settings

ADDRESS = "Som.Chai+pdpa@example.net"
NAME = "สมชายทดสอบ ลบได้"


def _email_post(session: Session, *, key: str, published_at: datetime) -> Post:
    community = session.scalars(select(Community).order_by(Community.id)).first()
    assert community is not None
    account = session.scalars(
        select(ChannelAccount).where(ChannelAccount.kind == ChannelKind.EMAIL)
    ).first()
    assert account is not None
    campaign = session.scalars(select(Campaign).where(Campaign.slug == "pdpa")).one_or_none()
    if campaign is None:
        campaign = Campaign(
            slug="pdpa",
            name="ข่าวชุมชน",
            source_text="-",
            source_hash="-",
            status=CampaignStatus.APPROVED,
        )
        session.add(campaign)
    post = Post(
        campaign=campaign,
        community_id=community.id,
        channel_account_id=account.id,
        channel=ChannelKind.EMAIL,
        idempotency_key=key,
        occurrence_key=key,
        scheduled_at=published_at,
        next_try_at=published_at,
        content={"subject": "ข่าวเดือนนี้", "html": "<p>สวัสดี</p>"},
        content_hash="-",
        state=PostState.PUBLISHED,
        published_at=published_at,
    )
    session.add(post)
    session.flush()
    return post


def _programme(engine: Engine, *, published_at: datetime | None = None) -> dict[str, int]:
    """The sample communities plus our person (in two communities), one e-mail post sent to
    everyone of the first community, opens, clicks and an unsubscribe; returns ids."""
    published_at = published_at or utcnow() - timedelta(days=2)
    with session_scope(engine) as session:
        import_reference(session=session, path=SAMPLE)
        communities = session.scalars(select(Community).order_by(Community.id)).all()
        people = [
            Subscriber(
                email=ADDRESS,
                name=NAME,
                community_id=c.id,
                consent_source="แบบฟอร์มสมัครรับข่าวสาร",
                consent_at=published_at - timedelta(days=30),
                consent_form="https://example.org/signup",
                consent_address="203.0.113.7",
                tags=["ตลาดนัด"],
            )
            for c in communities[:2]
        ]
        session.add_all(people)
        post = _email_post(session, key="pdpa-email-1", published_at=published_at)
        recipients = session.scalars(
            select(Subscriber).where(Subscriber.community_id == communities[0].id)
        ).all()
        for n, person in enumerate(recipients):
            session.add(
                Delivery(
                    post_id=post.id,
                    subscriber_id=person.id,
                    state=DeliveryState.SENT,
                    message_id=f"<pdpa-email-1.{person.id}@example.org>",
                    sent_at=published_at + timedelta(seconds=n),
                    # a relay's answer quoting the address, kept with the delivery
                    error=f"452 <{person.email}> mailbox full" if person.email == ADDRESS else None,
                )
            )
        session.flush()
        for person in recipients:
            record_email_event(
                session=session,
                post_id=post.id,
                subscriber_id=person.id,
                kind=EmailEventKind.OPEN,
                occurred_at=published_at + timedelta(hours=1),
            )
        ours = next(p for p in recipients if p.email == ADDRESS)
        for kind in (EmailEventKind.CLICK, EmailEventKind.CLICK, EmailEventKind.UNSUBSCRIBE):
            record_email_event(
                session=session,
                post_id=post.id,
                subscriber_id=ours.id,
                kind=kind,
                url="https://example.org/glo" if kind == EmailEventKind.CLICK else None,
                occurred_at=published_at + timedelta(hours=2),
            )
        session.add(
            AuditLog(
                actor="editor",
                action="subscribers.import",
                object_type="community",
                object_id=str(communities[0].id),
                detail={"added": [ADDRESS.lower()], "names": [NAME]},
            )
        )
        session.add(
            ImportJob(
                key="pdpa-job",
                community_id=communities[0].id,
                file_name="list.csv",
                created_by="editor",
                result={"problems": [f"line 3: {ADDRESS} is already subscribed"], "more": 0},
            )
        )
        return {"post": post.id, "ours": ours.id}


def _totals(engine: Engine) -> list[tuple[object, ...]]:
    rebuild(engine=engine)
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                CommunityPerformance.community_id,
                CommunityPerformance.channel,
                CommunityPerformance.day,
                CommunityPerformance.posts,
                CommunityPerformance.emails_sent,
                CommunityPerformance.opens,
                CommunityPerformance.clicks,
                CommunityPerformance.unsubscribes,
            ).order_by(CommunityPerformance.id)
        ).all()
    return [tuple(r) for r in rows]


def _every_text(engine: Engine) -> str:
    """Every value of every row of every table, as text."""
    out = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                out.append(" ".join(str(v) for v in row))
    return "\n".join(out)


def test_export_holds_every_row_about_the_person(engine: Engine) -> None:
    ids = _programme(engine)
    with session_scope(engine) as session:
        data = export_subscriber(session=session, address=ADDRESS.upper())
        theirs = select(Subscriber.id).where(func.lower(Subscriber.email) == ADDRESS.lower())
        subscriber_ids = set(session.scalars(theirs))
        delivery_ids = set(
            session.scalars(select(Delivery.id).where(Delivery.subscriber_id.in_(theirs)))
        )
        event_ids = set(
            session.scalars(select(EmailEvent.id).where(EmailEvent.subscriber_id.in_(theirs)))
        )
    json.dumps(data, ensure_ascii=False)  # JSON as it stands
    assert {s["id"] for s in data["subscribers"]} == subscriber_ids and len(subscriber_ids) == 2
    assert {d["id"] for d in data["deliveries"]} == delivery_ids and len(delivery_ids) == 1
    assert {e["id"] for e in data["email_events"]} == event_ids and len(event_ids) == 4
    consent = data["subscribers"][0]["consent"]
    assert consent["form"] == "https://example.org/signup"
    assert consent["address"] == "203.0.113.7"
    assert consent["source"] == "แบบฟอร์มสมัครรับข่าวสาร" and consent["at"]
    assert data["subscribers"][0]["unsubscribed_at"] is not None  # the unsubscribe event
    assert [a["action"] for a in data["audit_log"]] == ["subscribers.import"]
    assert [j["file_name"] for j in data["import_jobs"]] == ["list.csv"]
    assert data["deliveries"][0]["post_id"] == ids["post"]


def test_erase_leaves_no_row_naming_them_and_the_totals_unchanged(
    engine: Engine, db_url: str
) -> None:
    _programme(engine)
    before = _totals(engine)
    assert sum(r[6] for r in before) > 0 and sum(r[7] for r in before) == 1  # clicks, unsubs
    with session_scope(engine) as session:
        counts = erase_subscriber(
            session=session, address=f" {ADDRESS.lower()} ", reason="คำขอ PDPA-0007", actor="dpo"
        )
    wipe_free_space(engine)
    assert counts["subscribers"] == 2 and counts["deliveries"] == 1
    assert counts["email_events"] == 4 and counts["entries_scrubbed"] == 2

    everything = _every_text(engine)
    assert ADDRESS.lower() not in everything.lower()
    assert NAME not in everything and "203.0.113.7" not in everything
    if db_url.startswith("sqlite"):
        raw = Path(db_url.removeprefix("sqlite:///")).read_bytes()
        assert ADDRESS.lower().encode() not in raw.lower()
        assert NAME.encode() not in raw
    assert _totals(engine) == before  # recomputed from the rows that remain

    with session_scope(engine) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "subscriber.erase")).one()
        assert entry.actor == "dpo"
        assert entry.detail["address_sha256"] == address_hash(ADDRESS)
        assert entry.detail["reason"] == "คำขอ PDPA-0007"
        # the stand-ins are never e-mailed again
        stand_ins = session.scalars(
            select(Subscriber).where(Subscriber.email.like("%@erased.invalid"))
        ).all()
        assert len(stand_ins) == 2 and all(s.unsubscribed_at is not None for s in stand_ins)
        others = session.scalar(select(func.count()).select_from(Subscriber)) or 0
        assert others > 2  # nobody else was touched
        with pytest.raises(LookupError):
            export_subscriber(session=session, address=ADDRESS)


def test_purge_counts_old_events_into_the_totals_then_deletes_them(engine: Engine) -> None:
    old = utcnow() - timedelta(days=500)
    ids = _programme(engine, published_at=old)
    with session_scope(engine) as session:
        recent = _email_post(session, key="pdpa-email-2", published_at=utcnow() - timedelta(days=3))
        record_email_event(
            session=session, post_id=recent.id, subscriber_id=ids["ours"], kind=EmailEventKind.OPEN
        )
    before = _totals(engine)
    deleted = purge_tracking_events(engine=engine, older_than=timedelta(days=400))
    with session_scope(engine) as session:
        left = session.execute(select(EmailEvent.post_id)).scalars().all()
    assert deleted > 0 and left == [recent.id]
    assert _totals(engine) == before
    assert purge_tracking_events(engine=engine, older_than=timedelta(days=400)) == 0
    assert _totals(engine) == before  # a second run counts nothing twice


def test_cli_export_then_erase(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _programme(engine)
    reset_settings()
    runner = CliRunner()
    exported = runner.invoke(main, ["subscribers", "export", ADDRESS], catch_exceptions=False)
    assert exported.exit_code == 0, exported.output
    assert len(json.loads(exported.output)["subscribers"]) == 2
    erased = runner.invoke(
        main,
        ["subscribers", "erase", ADDRESS, "--reason", "request 7", "--by", "dpo", "--yes"],
        catch_exceptions=False,
    )
    assert erased.exit_code == 0, erased.output
    assert ADDRESS not in erased.output
    again = runner.invoke(main, ["subscribers", "export", ADDRESS], catch_exceptions=False)
    assert again.exit_code == 1


def test_consent_evidence_of_a_web_sign_up_is_kept_from_an_upload(engine: Engine) -> None:
    from marketing.web.imports import import_subscribers

    with session_scope(engine) as session:
        import_reference(session=session, path=SAMPLE)
        community = session.scalars(select(Community).order_by(Community.id)).first()
        assert community is not None
        data = (
            "email,name,consent_form,consent_address\n"
            f"{ADDRESS},{NAME},https://example.org/signup,203.0.113.7\n"
            "other@example.net,อื่น,,\n"
        ).encode()
        import_subscribers(
            session=session,
            community=community,
            data=data,
            name="signups.csv",
            consent_source="แบบฟอร์มบนเว็บ",
            consent_at=utcnow() - timedelta(days=1),
        )
    with session_scope(engine) as session:
        data_out = export_subscriber(session=session, address=ADDRESS)
        other = export_subscriber(session=session, address="other@example.net")
    consent = data_out["subscribers"][0]["consent"]
    assert consent == {
        "source": "แบบฟอร์มบนเว็บ",
        "at": consent["at"],
        "form": "https://example.org/signup",
        "address": "203.0.113.7",
    }
    assert other["subscribers"][0]["consent"]["form"] is None
