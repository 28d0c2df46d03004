"""Facebook variant tests, over a campaign's posts: the campaign file's ``variants`` (checked
with file, line and field), the plan (the first share of posts carry the variants in balanced
turns, the rest hold variant a), and the decision -- once, after the wait and the metrics
collected after it, by the same rule as e-mail's -- that rewrites every rest post to the
chosen variant exactly once, a post already claimed by a worker included (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import campaigns
from campaigns import apply_campaign, approval_hash, approve_campaign
from campaigns.loader import read_campaign
from marketing.cli.communities import SAMPLE
from marketing.db import session_scope
from marketing.models import MetricSnapshot, Post, PostState, VariantDecision
from marketing.post_variants import (
    MEASURE_WAIT,
    campaign_post_tests,
    is_rest,
    prepare,
)
from marketing.publishing import Claim, Policy, begin_attempt, claim_due
from marketing.reference import import_reference
from tests.support.markers import facebook_tag
from tests.support.pipeline import PipelineStack, stack_on_fresh_services
from tests.support.services import running, wait_until

EXAMPLES = Path(campaigns.__file__).parent / "examples"
PLANNED_AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FIRST = datetime(2027, 3, 5, 3, 0, tzinfo=UTC)  # 10:00 in Bangkok
SECOND = FIRST + timedelta(days=7)

CAMPAIGN = """\
slug: post-test
name: ทดลองข้อความโพสต์
window: {{start: 2027-03-01, end: 2027-03-31}}
communities: all
channels:
  facebook:
    message: "เที่ยว{{{{ community.name_th }}}} หน้าร้อนนี้"
    variants:
      - {{message: "ชวนมาพัก{{{{ community.name_th }}}} สัมผัสวิถีชุมชน"}}
    test: {{share: 40, wait: 24h, min_sample: {min_sample}}}
schedule:
  at: [{{key: first, time: {first}}}, {{key: second, time: {second}}}]
"""


def _text(min_sample: int = 1000) -> str:
    return CAMPAIGN.format(
        min_sample=min_sample, first=FIRST.isoformat(), second=SECOND.isoformat()
    )


# -- the campaign file --------------------------------------------------------------------------


def _problems(text: str) -> list[tuple[int | None, str, str]]:
    definition = read_campaign(text, file="c.yaml", base_dir=EXAMPLES)
    return [(p.line, p.field, p.message) for p in definition.problems]


def test_facebook_variants_load_with_the_post_test_defaults() -> None:
    text = _text().replace("    test: {share: 40, wait: 24h, min_sample: 1000}\n", "")
    definition = read_campaign(text, file="c.yaml", base_dir=EXAMPLES)
    assert definition.problems == []
    (channel,) = definition.channels
    assert len(channel.variants) == 1 and set(channel.variants[0]) == {"message"}
    test = channel.variant_test
    assert test is not None
    assert (test.unit, test.share, test.wait, test.min_sample) == (
        "posts",
        40,
        timedelta(hours=24),
        1000,
    )


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ('      - {message: "ชวนมาพัก{{ community.name_th }} สัมผัสวิถีชุมชน"}', "      - {}"),
            [
                (
                    9,
                    "channels.facebook.variants[0]",
                    "a variant changes the message, the photo or both",
                )
            ],
        ),
        (
            ('      - {message: "ชวนมาพัก', '      - {title: x, message: "ชวนมาพัก'),
            [(9, "channels.facebook.variants[0].title", "is not a known field")],
        ),
        (
            ("share: 40", "share: 95"),
            [(10, "channels.facebook.test.share", "less than or equal to 90")],
        ),
        (
            ('"ชวนมาพัก{{ community.name_th }} สัมผัสวิถีชุมชน"}', '"{{ community.name_th "}'),
            [(9, "channels.facebook.variants[0].message", "")],
        ),
        (
            (
                '{message: "ชวนมาพัก{{ community.name_th }} สัมผัสวิถีชุมชน"}',
                "{photo: no-such-photo.jpg}",
            ),
            [(9, "channels.facebook.variants[0].photo", "no-such-photo.jpg")],
        ),
    ],
)
def test_facebook_variant_mistakes_are_named_by_line_and_field(
    edit: tuple[str, str], expected: list[tuple[int, str, str]]
) -> None:
    old, new = edit
    text = _text()
    assert old in text
    found = _problems(text.replace(old, new))
    assert [(line, field) for line, field, _ in found] == [(e[0], e[1]) for e in expected]
    for (_, _, message), (_, _, part) in zip(found, expected, strict=True):
        assert part in message, message


# -- the plan and the decision ------------------------------------------------------------------


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


def _apply(session: Session, tmp_path: Path, text: str) -> list[Post]:
    path = tmp_path / "post-test.yaml"
    path.write_text(text, encoding="utf-8")
    apply_campaign(session=session, path=path, actor="staff", now=PLANNED_AT)
    session.commit()
    return list(session.scalars(select(Post).order_by(Post.scheduled_at, Post.id)))


def test_the_first_share_of_posts_carry_the_variants_in_balanced_turns(
    sample: Session, tmp_path: Path
) -> None:
    posts = _apply(sample, tmp_path, _text())
    assert len(posts) == 20  # ten communities' Pages, two occurrences
    arms = Counter(p.content["variant"]["arm"] for p in posts)
    assert arms == {"a": 4, "b": 4, "rest": 12}  # 40 % of 20 in two equal parts
    tested = [p for p in posts if not is_rest(p.content)]
    assert all(p.scheduled_at == FIRST for p in tested)  # the earliest posts
    assert all(p.scheduled_at == SECOND for p in posts if p.occurrence_key == "second")
    for post in tested:
        wanted = "เที่ยว" if post.content["variant"]["arm"] == "a" else "ชวนมาพัก"
        assert post.content["message"].startswith(wanted)
    rest = next(p for p in posts if is_rest(p.content))
    assert rest.content["message"].startswith("เที่ยว")  # variant a until the decision
    assert rest.content["variant"]["choices"]["b"]["message"].startswith("ชวนมาพัก")
    # Planning again gives the same turns.
    before = {p.idempotency_key: p.content["variant"]["arm"] for p in posts}
    again = _apply(sample, tmp_path, _text())
    assert {p.idempotency_key: p.content["variant"]["arm"] for p in again} == before


def test_too_few_posts_for_a_test_are_posted_as_variant_a_and_said_so(
    sample: Session, tmp_path: Path
) -> None:
    text = _text().replace("communities: all", "communities: [nan-ban-doi-ngoen]")
    path = tmp_path / "post-test.yaml"
    path.write_text(text, encoding="utf-8")
    from campaigns.lifecycle import plan_file

    plan = plan_file(session=sample, path=path, now=PLANNED_AT)
    assert len(plan.posts) == 2
    assert all("variant" not in p.content for p in plan.posts)
    assert all(p.content["message"].startswith("เที่ยว") for p in plan.posts)
    assert any("too few for a variant test" in note for note in plan.notes)


def _publish_tests(
    session: Session, posts: list[Post], rates: dict[str, float], views: int = 3000
) -> dict[str, tuple[int, int, int]]:
    """The test posts published at FIRST, with a snapshot a day later: ``views`` views (more
    on every other post) and interactions at the arm's rate; per arm, the views,
    interactions and posts."""
    totals: dict[str, tuple[int, int, int]] = {}
    for i, post in enumerate(p for p in posts if not is_rest(p.content)):
        post.state = PostState.PUBLISHED
        post.published_at = FIRST
        seen = views + 500 * (i % 2)
        arm = post.content["variant"]["arm"]
        acts = round(seen * rates[arm])
        v, a, n = totals.get(arm, (0, 0, 0))
        totals[arm] = (v + seen, a + acts, n + 1)
        session.add(
            MetricSnapshot(
                post_id=post.id,
                collected_at=FIRST + timedelta(hours=24, minutes=5),
                day=FIRST.date(),
                views=seen,
                reactions=acts // 2,
                comments=acts // 4,
                shares=acts // 8,
                clicks=acts - acts // 2 - acts // 4 - acts // 8,
            )
        )
    session.commit()
    return totals


def _claim_rest(engine: Engine, post: Post, now: datetime) -> Claim:
    """Queue and claim one rest post as the publish task does (the claim committed)."""
    with session_scope(engine) as session:
        row = session.get(Post, post.id)
        assert row is not None
        row.state, row.next_try_at = PostState.QUEUED, now
    claim = begin_attempt(engine=engine, post_id=post.id, worker="test", now=now)
    assert claim is not None
    return claim


def _approve(session: Session) -> None:
    shown = approval_hash(session=session, slug="post-test")
    approve_campaign(session=session, slug="post-test", actor="approver", shown_hash=shown)
    session.commit()


def test_the_rest_waits_then_gets_the_winner_once_claimed_posts_included(
    sample: Session, engine: Engine, tmp_path: Path
) -> None:
    posts = _apply(sample, tmp_path, _text())
    _approve(sample)
    rests = [p for p in posts if is_rest(p.content)]
    held = next(p for p in rests if p.scheduled_at == FIRST)  # due with the test posts
    claim = _claim_rest(engine, held, FIRST)
    # The test posts have not gone out: nothing is decided, nothing may be sent.
    assert prepare(engine=engine, claim=claim, now=FIRST) == timedelta(hours=24)
    totals = _publish_tests(sample, posts, {"a": 0.04, "b": 0.06})
    # Out, but the wait is not over: asked again in the time left.
    wait = prepare(engine=engine, claim=claim, now=FIRST + timedelta(hours=20))
    assert wait == timedelta(hours=4)
    # The wait is over, the metrics after it not yet collected: a little longer.
    assert prepare(engine=engine, claim=claim, now=FIRST + timedelta(hours=24)) == MEASURE_WAIT
    decided_at = FIRST + timedelta(hours=25)
    prepared = prepare(engine=engine, claim=claim, now=decided_at)
    assert isinstance(prepared, Claim)
    assert prepared.content["message"].startswith("ชวนมาพัก")
    assert prepared.content["variant"]["applied"] == "b"
    sample.expire_all()
    (decision,) = sample.scalars(select(VariantDecision)).all()
    assert (decision.test, decision.outcome, decision.winner, decision.chosen) == (
        "post-test/facebook",
        "winner",
        "b",
        "b",
    )
    figures = {arm["key"]: (arm["trials"], arm["successes"], arm["posts"]) for arm in decision.arms}
    assert figures == totals
    assert {key: n for key, (_, _, n) in figures.items()} == {"a": 4, "b": 4}
    # Every rest post not held by a worker was rewritten by the decision, stored.
    for post in sample.scalars(select(Post)):
        if is_rest(post.content):
            assert post.content["message"].startswith("ชวนมาพัก"), post.occurrence_key
            assert post.content["variant"]["applied"] == "b"
    # Later figures (variant a catches up) change nothing: the decision is stored, and the
    # next rest post's claim is the winner already.
    sample.add(
        MetricSnapshot(
            post_id=next(p for p in posts if p.content["variant"]["arm"] == "a").id,
            collected_at=FIRST + timedelta(days=2),
            day=FIRST.date(),
            views=3000,
            reactions=3000,
        )
    )
    sample.commit()
    later = next(p for p in rests if p.scheduled_at == SECOND)
    other = _claim_rest(engine, later, SECOND)
    assert other.content["message"].startswith("ชวนมาพัก")
    again = prepare(engine=engine, claim=other, now=SECOND)
    assert isinstance(again, Claim) and again.content == other.content
    sample.expire_all()
    assert len(sample.scalars(select(VariantDecision)).all()) == 1
    shown = campaign_post_tests(session=sample, campaign_id=held.campaign_id)
    assert [(t.channel, t.outcome, t.chosen, t.rest_posts) for t in shown] == [
        ("facebook", "winner", "b", 12)
    ]
    for arm in shown[0].arms:
        assert arm.low < arm.rate < arm.high and arm.probability_best is not None
        assert arm.posts == 4


def test_alike_variants_give_no_clear_winner_and_the_rest_keeps_variant_a(
    sample: Session, engine: Engine, tmp_path: Path
) -> None:
    posts = _apply(sample, tmp_path, _text())
    _approve(sample)
    _publish_tests(sample, posts, {"a": 0.05, "b": 0.05})
    held = next(p for p in posts if is_rest(p.content))
    claim = _claim_rest(engine, held, FIRST + timedelta(hours=25))
    prepared = prepare(engine=engine, claim=claim, now=FIRST + timedelta(hours=25))
    assert isinstance(prepared, Claim)
    assert prepared.content["message"].startswith("เที่ยว")
    sample.expire_all()
    (decision,) = sample.scalars(select(VariantDecision)).all()
    assert (decision.outcome, decision.winner, decision.chosen) == ("no_clear_winner", None, "a")


def test_a_text_a_person_rewrote_on_a_later_post_stays_after_the_decision(
    sample: Session, engine: Engine, tmp_path: Path
) -> None:
    from marketing.models import PostOverride

    posts = _apply(sample, tmp_path, _text())
    _approve(sample)
    rests = [p for p in posts if is_rest(p.content)]
    edited, held = rests[-1], rests[0]
    edited.content = {**edited.content, "message": "ข้อความที่เจ้าหน้าที่เขียนเอง"}
    sample.add(
        PostOverride(
            post_id=edited.id, content={"message": "ข้อความที่เจ้าหน้าที่เขียนเอง"}, changed_by="staff"
        )
    )
    sample.commit()
    _publish_tests(sample, posts, {"a": 0.04, "b": 0.06})
    claim = _claim_rest(engine, held, FIRST + timedelta(hours=25))
    prepared = prepare(engine=engine, claim=claim, now=FIRST + timedelta(hours=25))
    assert isinstance(prepared, Claim) and prepared.content["message"].startswith("ชวนมาพัก")
    sample.expire_all()
    after = sample.get(Post, edited.id)
    assert after is not None and after.content["message"] == "ข้อความที่เจ้าหน้าที่เขียนเอง"
    assert after.content["variant"]["applied"] == "b"


def test_too_few_views_names_no_winner(sample: Session, engine: Engine, tmp_path: Path) -> None:
    posts = _apply(sample, tmp_path, _text(min_sample=50_000))
    _approve(sample)
    _publish_tests(sample, posts, {"a": 0.01, "b": 0.2})
    held = next(p for p in posts if is_rest(p.content))
    claim = _claim_rest(engine, held, FIRST + timedelta(hours=25))
    prepared = prepare(engine=engine, claim=claim, now=FIRST + timedelta(hours=25))
    assert isinstance(prepared, Claim) and prepared.content["message"].startswith("เที่ยว")
    sample.expire_all()
    (decision,) = sample.scalars(select(VariantDecision)).all()
    assert (decision.outcome, decision.chosen) == ("too_few", "a")


def test_the_dispatcher_does_not_send_a_rest_post_before_the_decision(
    sample: Session, engine: Engine, tmp_path: Path
) -> None:
    """Due rest posts are claimed like any other; the task's prepare() keeps them back."""
    posts = _apply(sample, tmp_path, _text())
    _approve(sample)
    result = claim_due(engine=engine, policy=Policy(), now=FIRST)
    assert len(result.queued) == 10  # the first occurrence's posts, test and rest alike
    sample.expire_all()
    rest = next(
        p
        for p in sample.scalars(select(Post))
        if is_rest(p.content) and p.state == PostState.QUEUED
    )
    claim = begin_attempt(engine=engine, post_id=rest.id, worker="w", now=FIRST)
    assert claim is not None
    assert isinstance(prepare(engine=engine, claim=claim, now=FIRST), timedelta)
    assert len(posts) == 20


# -- the composer ---------------------------------------------------------------------------------

COMPOSED = """\
slug: post-test
name: ทดลองข้อความโพสต์
window: {start: 2027-03-01, end: 2027-03-31}
communities: all
channels:
  facebook:
    message: "เที่ยว{{ community.name_th }} หน้าร้อนนี้"
    variants:
      - {message: "ชวนมาพัก{{ community.name_th }}", photo: sample/nan-ban-doi-ngoen.png}
      - message: บรรยากาศยามเช้า
    test: {share: 40, wait: 24h}
schedule:
  at: [{key: first, time: 2027-03-05T10:00}]
"""


def test_the_composer_shows_the_variants_and_writes_them_back_unchanged() -> None:
    from campaigns.yamledit import CampaignDocument
    from marketing.web.composer_form import apply_form, form_values

    doc = CampaignDocument(COMPOSED)
    values = form_values(doc)
    assert values["channels.facebook.variants"] == (
        "ชวนมาพัก{{ community.name_th }}\n---\nบรรยากาศยามเช้า"
    )
    assert values["channels.facebook.test.share"] == "40"
    assert values["channels.facebook.test.wait"] == "24h"
    apply_form(doc, {k: v for k, v in values.items() if v != ""})
    assert doc.changed == []
    doc.changed.append(("forced",))
    assert doc.text() == COMPOSED


def test_editing_the_variants_in_the_composer_keeps_each_variant_s_photo() -> None:
    from campaigns.yamledit import CampaignDocument
    from marketing.web.composer_form import apply_form, form_values

    doc = CampaignDocument(COMPOSED)
    values = form_values(doc)
    values["channels.facebook.variants"] = (
        "พักโฮมสเตย์{{ community.name_th }}\n---\nตลาดเช้า\n---\nงานบุญ"
    )
    values["channels.facebook.test.min_sample"] = "2000"
    apply_form(doc, {k: v for k, v in values.items() if v != ""})
    text = doc.text()
    definition = read_campaign(text, file="c.yaml", base_dir=EXAMPLES)
    (channel,) = definition.channels
    assert [sorted(v) for v in channel.variants] == [["message", "photo"], ["message"], ["message"]]
    assert channel.variant_test is not None and channel.variant_test.min_sample == 2000
    again = form_values(CampaignDocument(text))
    assert again["channels.facebook.variants"].split("\n---\n") == [
        "พักโฮมสเตย์{{ community.name_th }}",
        "ตลาดเช้า",
        "งานบุญ",
    ]
    # Emptied: the texts go; the variant with a photo stays, as a photo variant.
    values = form_values(CampaignDocument(text))
    values["channels.facebook.variants"] = ""
    doc = CampaignDocument(text)
    apply_form(doc, {k: v for k, v in values.items() if v != ""})
    (channel,) = read_campaign(doc.text(), file="c.yaml", base_dir=EXAMPLES).channels
    assert [sorted(v) for v in channel.variants] == [["photo"]]


def test_a_variant_problem_is_shown_at_the_variants_field() -> None:
    from marketing.web.composer_form import field_for

    text = _text().replace('"ชวนมาพัก{{ community.name_th }} สัมผัสวิถีชุมชน"}', '"{{ x "}')
    (problem,) = read_campaign(text, file="c.yaml", base_dir=EXAMPLES).problems
    assert problem.field == "channels.facebook.variants[0].message"
    assert field_for(problem) == "channels.facebook.variants"


# -- the whole run ----------------------------------------------------------------------------


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[PipelineStack]:
    with stack_on_fresh_services(tmp_path) as stack:
        yield stack


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_posts_each_facebook_post_once_and_the_later_ones_with_the_chosen_variant(
    stack: PipelineStack, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    first = (now + timedelta(seconds=20)).replace(microsecond=0)
    second = first + timedelta(minutes=2, seconds=30)
    text = (
        CAMPAIGN.format(min_sample=30, first=first.isoformat(), second=second.isoformat())
        .replace("share: 40, wait: 24h", "share: 50, wait: 1m")
        .replace("2027-03-01", (first - timedelta(days=1)).date().isoformat())
        .replace("2027-03-31", (second + timedelta(days=1)).date().isoformat())
    )
    path = tmp_path / "post-test.yaml"
    path.write_text(text, encoding="utf-8")
    with session_scope(stack.engine) as session:
        apply_campaign(session=session, path=path, actor="staff", now=now)
    with session_scope(stack.engine) as session:
        _approve(session)
    with running(stack.worker("fbv")):

        def tested() -> list[Post]:
            with session_scope(stack.engine) as session:
                return [
                    p
                    for p in session.scalars(select(Post))
                    if not is_rest(p.content) and p.state == PostState.PUBLISHED
                ]

        wait_until(lambda: len(tested()) == 10, timeout=120, interval=0.5, what="test posts")
        last = max(p.published_at for p in tested() if p.published_at is not None)
        wait_until(
            lambda: datetime.now(UTC) > last + timedelta(minutes=1, seconds=2),
            timeout=90,
            interval=0.5,
            what="the wait",
        )
        stack.send("marketing.collect_metrics", force=True)  # the collection after the wait

        def measured() -> int:
            with session_scope(stack.engine) as session:
                return len(
                    set(
                        session.scalars(
                            select(MetricSnapshot.post_id).where(
                                MetricSnapshot.collected_at > last + timedelta(minutes=1)
                            )
                        )
                    )
                )

        wait_until(lambda: measured() >= 10, timeout=60, interval=0.5, what="metrics")
        states = stack.wait_all_final(20, timeout=300)
    assert states == {PostState.PUBLISHED: 20}
    assert set(stack.publications().values()) == {1}  # every post went out exactly once
    with session_scope(stack.engine) as session:
        (decision,) = session.scalars(select(VariantDecision)).all()
        posts = list(session.scalars(select(Post)))
        wanted = {p.idempotency_key: p.content["message"] for p in posts}
        rest_keys = {p.idempotency_key for p in posts if is_rest(p.content)}
        test_published = max(
            p.published_at for p in posts if not is_rest(p.content) and p.published_at
        )
        rest_published = min(p.published_at for p in posts if is_rest(p.content) and p.published_at)
    assert decision.test == "post-test/facebook" and len(rest_keys) == 10
    assert rest_published >= test_published + timedelta(minutes=1)
    chosen = {
        p.idempotency_key: p.content["variant"]["choices"][decision.chosen]["message"]
        for p in posts
        if is_rest(p.content)
    }
    by_marker = {facebook_tag(k): k for k in wanted}
    for publication in stack.graph.published():
        key = by_marker[publication.marker]
        assert publication.message.startswith(wanted[key][:10])
        if key in rest_keys:  # the later posts carry the chosen variant, stored and sent
            assert wanted[key] == chosen[key]
            assert publication.message.startswith(chosen[key][:10])
