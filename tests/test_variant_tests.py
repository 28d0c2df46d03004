"""E-mail variant tests: the plan (one post per variant, one for the rest after the wait),
who gets which, and the decision -- made once, after the wait, by the rule that controls
false winners (SQLite and PostgreSQL); then the whole run through a real Celery worker, the
beat and the SMTP sandbox (PostgreSQL, Redis)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns import apply_campaign, approval_hash, approve_campaign
from marketing.cli.communities import SAMPLE
from marketing.db import session_scope
from marketing.models import (
    Community,
    Delivery,
    DeliveryState,
    EmailEvent,
    EmailEventKind,
    Post,
    PostState,
    Subscriber,
    VariantDecision,
)
from marketing.reference import import_reference
from marketing.variant_tests import (
    STILL_SENDING_WAIT,
    campaign_tests,
    chosen_content,
    decide_rest,
    receives,
)
from tests.support.pipeline import PipelineStack, stack_on_fresh_services
from tests.support.services import running

PLANNED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LAUNCH = datetime(2027, 3, 5, 3, 0, tzinfo=UTC)  # 10:00 in Bangkok
NAN = "nan-ban-doi-ngoen"

CAMPAIGN = """\
slug: subject-test
name: ทดลองหัวเรื่อง
window: {{start: {start}, end: {end}}}
communities: [{communities}]
channels:
  email:
    account: glo-email
    subject: "ข่าว{{{{ community.name_th }}}}"
    preheader: "เรื่องเล่าประจำเดือน"
    html: "<p>เรียน {{{{ subscriber.name }}}}</p>"
    variants:
      - {{subject: "เชิญเที่ยว{{{{ community.name_th }}}}", preheader: "สงกรานต์นี้"}}
    test: {{share: 40, wait: {wait}, min_sample: {min_sample}}}
schedule:
  at: [{{key: launch, time: {at}}}]
"""


def _text(
    *,
    at: datetime = LAUNCH,
    wait: str = "6h",
    min_sample: int = 100,
    communities: str = NAN,
) -> str:
    start = (at - timedelta(days=1)).date().isoformat()
    end = (at + timedelta(days=2)).date().isoformat()
    return CAMPAIGN.format(
        start=start,
        end=end,
        at=at.isoformat(),
        wait=wait,
        min_sample=min_sample,
        communities=communities,
    )


def _add_subscribers(
    session: Session,
    slug: str,
    count: int,
    *,
    prefix: str = "reader",
    name: str = "ผู้อ่าน",
    consent_at: datetime = PLANNED_AT - timedelta(days=30),
) -> list[int]:
    """``count`` consenting subscribers of community ``slug``: ``<prefix><n>@example.org``."""
    community = session.scalars(select(Community).where(Community.slug == slug)).one()
    people = [
        Subscriber(
            email=f"{prefix}{n}@example.org",
            name=f"{name} {n}",
            community_id=community.id,
            consent_source="งานประชุมหมู่บ้าน",
            consent_at=consent_at,
        )
        for n in range(count)
    ]
    session.add_all(people)
    session.commit()
    return [p.id for p in people]


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


def _apply(session: Session, tmp_path: Path, text: str, now: datetime = PLANNED_AT) -> None:
    path = tmp_path / "subject-test.yaml"
    path.write_text(text, encoding="utf-8")
    apply_campaign(session=session, path=path, actor="staff", now=now)
    session.commit()


def _posts(session: Session) -> dict[str, Post]:
    return {p.occurrence_key: p for p in session.scalars(select(Post))}


def test_a_variant_email_plans_one_post_per_variant_and_one_for_the_rest(
    sample: Session, tmp_path: Path
) -> None:
    _apply(sample, tmp_path, _text())
    posts = _posts(sample)
    assert sorted(posts) == ["launch~a", "launch~b", "launch~rest"]
    a, b, rest = posts["launch~a"], posts["launch~b"], posts["launch~rest"]
    assert a.scheduled_at == b.scheduled_at == LAUNCH
    assert rest.scheduled_at == LAUNCH + timedelta(hours=6)
    assert a.content["subject"].startswith("ข่าว") and a.content["preheader"] == "เรื่องเล่าประจำเดือน"
    assert b.content["subject"].startswith("เชิญเที่ยว") and b.content["preheader"] == "สงกรานต์นี้"
    assert rest.content["variant"]["choices"]["b"]["subject"] == b.content["subject"]
    assert {p.content["variant"]["arm"] for p in posts.values()} == {"a", "b", "rest"}


def test_each_subscriber_is_in_exactly_one_part_of_the_test(
    sample: Session, tmp_path: Path
) -> None:
    ids = _add_subscribers(sample, NAN, 2000)
    _apply(sample, tmp_path, _text())
    posts = _posts(sample)
    parts: Counter[str] = Counter()
    for subscriber in ids:
        got = [k for k, p in posts.items() if receives(p.content, subscriber)]
        assert len(got) == 1, (subscriber, got)
        parts[got[0]] += 1
    # 40 % share in two equal parts: about 20 %, 20 % and 60 %.
    assert 340 <= parts["launch~a"] <= 460 and 340 <= parts["launch~b"] <= 460
    assert 1100 <= parts["launch~rest"] <= 1300


def _send_arms(
    session: Session, ids: list[int], clicks: dict[str, float], rng: random.Random
) -> dict[str, Post]:
    """The variant posts sent to their parts at LAUNCH; ``clicks``: each arm's click rate."""
    posts = _posts(session)
    for arm, rate in clicks.items():
        post = posts[f"launch~{arm}"]
        post.state = PostState.PUBLISHED
        post.published_at = LAUNCH
        for subscriber in ids:
            if not receives(post.content, subscriber):
                continue
            session.add(
                Delivery(
                    post_id=post.id,
                    subscriber_id=subscriber,
                    state=DeliveryState.SENT,
                    sent_at=LAUNCH,
                )
            )
            if rng.random() < rate:
                session.add(_click(post.id, subscriber, LAUNCH + timedelta(hours=1)))
    session.commit()
    return posts


def _click(post_id: int, subscriber: int, at: datetime) -> EmailEvent:
    return EmailEvent(
        post_id=post_id,
        subscriber_id=subscriber,
        kind=EmailEventKind.CLICK,
        occurred_at=at,
        day=at.date(),
    )


def test_the_rest_is_decided_after_the_wait_once_and_for_good(
    sample: Session, engine: Engine, tmp_path: Path
) -> None:
    ids = _add_subscribers(sample, NAN, 2000)
    _apply(sample, tmp_path, _text())
    rest = _posts(sample)["launch~rest"]
    # The variants have not gone out yet: nothing is decided.
    assert decide_rest(engine=engine, post_id=rest.id, now=LAUNCH) == STILL_SENDING_WAIT
    posts = _send_arms(sample, ids, {"a": 0.05, "b": 0.15}, random.Random(4))
    # Sent, but the wait is not over: asked again in the time left.
    assert decide_rest(engine=engine, post_id=rest.id, now=LAUNCH + timedelta(hours=2)) == (
        timedelta(hours=4)
    )
    decision = decide_rest(engine=engine, post_id=rest.id, now=LAUNCH + timedelta(hours=6))
    assert not isinstance(decision, timedelta)
    assert (decision.outcome, decision.winner, decision.chosen) == ("winner", "b", "b")
    assert decision.needed == 0.975
    trials = {arm["key"]: arm["trials"] for arm in decision.arms}
    assert trials["a"] > 300 and trials["b"] > 300
    # Later clicks (variant a catches up) change nothing: the decision is stored.
    for subscriber in ids:
        if receives(posts["launch~a"].content, subscriber):
            sample.add(_click(posts["launch~a"].id, subscriber, LAUNCH + timedelta(hours=7)))
    sample.commit()
    again = decide_rest(engine=engine, post_id=rest.id, now=LAUNCH + timedelta(hours=8))
    assert not isinstance(again, timedelta) and again.id == decision.id and again.winner == "b"
    assert len(sample.scalars(select(VariantDecision)).all()) == 1
    content = chosen_content(rest.content, decision)
    assert content["subject"] == posts["launch~b"].content["subject"]
    assert content["preheader"] == "สงกรานต์นี้"
    shown = campaign_tests(
        session=sample, campaign_id=rest.campaign_id, now=LAUNCH + timedelta(hours=9)
    )
    assert [(t.community_slug, t.outcome, t.chosen) for t in shown] == [(NAN, "winner", "b")]
    for arm in shown[0].arms:
        assert arm.low < arm.rate < arm.high and arm.probability_best is not None


def test_alike_variants_give_no_clear_winner_and_the_rest_gets_the_campaigns_own(
    sample: Session, engine: Engine, tmp_path: Path
) -> None:
    ids = _add_subscribers(sample, NAN, 2000)
    _apply(sample, tmp_path, _text())
    rest = _posts(sample)["launch~rest"]
    _send_arms(sample, ids, {"a": 0.08, "b": 0.08}, random.Random(11))
    decision = decide_rest(engine=engine, post_id=rest.id, now=LAUNCH + timedelta(hours=6))
    assert not isinstance(decision, timedelta)
    assert (decision.outcome, decision.winner, decision.chosen) == ("no_clear_winner", None, "a")
    assert chosen_content(rest.content, decision)["subject"] == rest.content["subject"]


def test_too_few_sent_decides_nothing_about_the_variants(
    sample: Session, engine: Engine, tmp_path: Path
) -> None:
    ids = _add_subscribers(sample, NAN, 100)  # about 20 a variant, 100 needed
    _apply(sample, tmp_path, _text())
    rest = _posts(sample)["launch~rest"]
    _send_arms(sample, ids, {"a": 0.0, "b": 0.9}, random.Random(2))
    decision = decide_rest(engine=engine, post_id=rest.id, now=LAUNCH + timedelta(hours=6))
    assert not isinstance(decision, timedelta)
    assert (decision.outcome, decision.chosen) == ("too_few", "a")


# -- the whole run ----------------------------------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[PipelineStack]:
    with stack_on_fresh_services(tmp_path) as stack:
        yield stack


def _subject(raw: Any) -> str:
    return str(make_header(decode_header(str(raw))))


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_sends_each_subscriber_one_variant_then_the_rest_once(
    stack: PipelineStack, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    at = now + timedelta(seconds=20)
    with session_scope(stack.engine) as session:
        ids = _add_subscribers(session, NAN, 60)
    path = tmp_path / "subject-test.yaml"
    path.write_text(_text(at=at, wait="1m", min_sample=30), encoding="utf-8")
    with session_scope(stack.engine) as session:
        apply_campaign(session=session, path=path, actor="staff", now=now)
    with session_scope(stack.engine) as session:
        shown = approval_hash(session=session, slug="subject-test")
        approve_campaign(session=session, slug="subject-test", actor="approver", shown_hash=shown)
    with running(stack.worker("v")):
        states = stack.wait_all_final(3, timeout=240)
    assert states == {PostState.PUBLISHED: 3}
    with session_scope(stack.engine) as session:
        posts = {p.occurrence_key: p for p in session.scalars(select(Post))}
        decisions = session.scalars(select(VariantDecision)).all()
        a_subject = posts["launch~a"].content["subject"]
        rest_sent_at = posts["launch~rest"].published_at
        b_sent_at = posts["launch~b"].published_at
    # Decided once, after the wait since the variants went out; with about 12 e-mails a
    # variant (30 needed) nothing is claimed about them, and the rest got the campaign's own.
    assert [(d.outcome, d.chosen) for d in decisions] == [("too_few", "a")]
    assert rest_sent_at is not None and b_sent_at is not None
    assert rest_sent_at >= b_sent_at + timedelta(minutes=1)
    # Every subscriber of the community (the sample's three and ours) got exactly one e-mail.
    received = Counter(m.subscriber_id for m in stack.smtp.messages)
    assert set(ids) <= set(received) and set(received.values()) == {1}
    markers = {p.idempotency_key: k for k, p in posts.items()}
    for message in stack.smtp.messages:
        part = markers[message.marker or ""]
        subject = _subject(message.message["Subject"])
        if part == "launch~b":
            assert subject.startswith("เชิญเที่ยว")
        else:
            assert subject == a_subject
