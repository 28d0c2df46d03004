"""Variant tests in the campaign report: each test's verdict said plainly in Thai ("no clear
winner" when that is the truth), each variant's click rate with its 95 % interval and its
chance of being the best; in the HTML report and on the web page in a real Chromium at
desktop and phone width (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from marketing.cli.communities import SAMPLE
from marketing.models import (
    Community,
    Delivery,
    DeliveryState,
    EmailEvent,
    EmailEventKind,
    Post,
    PostState,
    Role,
)
from marketing.reference import import_reference
from marketing.reports.html import render_html
from marketing.reports.queries import campaign_report
from marketing.variant_tests import decide_rest, receives
from tests.support.web import NOW, add_user, clock_at, served
from tests.test_variant_tests import LAUNCH, _add_subscribers, _apply, _text
from tests.test_web_browser import browser  # noqa: F401  (the module's Chromium, reused)
from tests.test_web_phone import Walker

NAN, PHRAE = "nan-ban-doi-ngoen", "phrae-ban-thung-khram"


def _send(session: Session, slug: str, ids: list[int], clicks: dict[str, float]) -> None:
    """One community's variants sent at LAUNCH, clicked at the given rates."""
    rng = random.Random(slug)
    community = session.scalars(select(Community).where(Community.slug == slug)).one()
    for arm, rate in clicks.items():
        post = session.scalars(
            select(Post).where(
                Post.community_id == community.id, Post.occurrence_key == f"launch~{arm}"
            )
        ).one()
        post.state, post.published_at = PostState.PUBLISHED, LAUNCH
        for subscriber in ids:
            if not receives(post.content, subscriber):
                continue
            session.add(
                Delivery(post_id=post.id, subscriber_id=subscriber, state=DeliveryState.SENT)
            )
            if rng.random() < rate:
                at = LAUNCH + timedelta(hours=1)
                session.add(
                    EmailEvent(
                        post_id=post.id,
                        subscriber_id=subscriber,
                        kind=EmailEventKind.CLICK,
                        occurred_at=at,
                        day=at.date(),
                    )
                )
    session.commit()


def _decided(session: Session, engine: Engine, tmp_path: Path) -> None:
    """Two communities' tests, decided after the wait: a clear winner in one (b clicked three
    times as often), none in the other (both alike)."""
    import_reference(session=session, path=SAMPLE)
    session.commit()
    nan = _add_subscribers(session, NAN, 2000)
    phrae = _add_subscribers(
        session,
        PHRAE,
        2000,
        prefix="phrae",
        name="ผู้อ่านแพร่",
        consent_at=LAUNCH - timedelta(days=400),
    )
    _apply(session, tmp_path, _text(communities=f"{NAN}, {PHRAE}"))
    _send(session, NAN, nan, {"a": 0.04, "b": 0.12})
    _send(session, PHRAE, phrae, {"a": 0.06, "b": 0.06})
    rests = list(session.scalars(select(Post.id).where(Post.occurrence_key == "launch~rest")))
    session.commit()  # end the read, so the decisions written elsewhere are seen
    for rest in rests:
        decide_rest(engine=engine, post_id=rest, now=LAUNCH + timedelta(hours=6))


def test_the_campaign_report_says_each_verdict_in_thai_with_intervals(
    session: Session, engine: Engine, tmp_path: Path
) -> None:
    _decided(session, engine, tmp_path)
    report = campaign_report(session=session, campaign_slug="subject-test")
    outcomes = {t.community.slug: (t.outcome, t.chosen) for t in report.variant_tests}
    assert outcomes == {NAN: ("winner", "b"), PHRAE: ("no_clear_winner", "a")}
    for test in report.variant_tests:
        assert [arm.key for arm in test.arms] == ["a", "b"]
        for arm in test.arms:
            assert arm.low < arm.rate < arm.high and arm.sent > 300
    html = render_html(report, language="th")
    assert "การทดสอบตัวเลือก" in html
    assert "ตัวเลือก b ชนะ: โอกาสเป็นตัวที่ดีที่สุด" in html and "(ต้องถึง 97.5%)" in html
    assert "ไม่มีตัวเลือกที่ชนะชัดเจน" in html
    assert "อัตราคลิก (ช่วง 95 %)" in html
    english = render_html(report, language="en")
    assert "No clear winner" in english and "Variant b won" in english


def test_the_report_page_shows_the_verdicts_at_desktop_and_phone_width(
    browser: Any,  # noqa: F811
    session: Session,
    engine: Engine,
    tmp_path: Path,
) -> None:
    _decided(session, engine, tmp_path)
    add_user(engine, "admin", Role.ADMIN)
    with served(engine, clock=clock_at(NOW)) as server:
        walker = Walker(browser, server.url, photos=True)
        walker.sign_in()
        walker.check("report-campaign-variants", "/reports/campaign/subject-test")
        assert walker.problems == []
        for page, _size in walker.tabs:
            verdicts = page.locator("section.variant-test p.verdict").all_inner_texts()
            assert len(verdicts) == 2
            assert any("ไม่มีตัวเลือกที่ชนะชัดเจน" in v for v in verdicts)
            assert any("ตัวเลือก b ชนะ" in v for v in verdicts)
            assert page.locator("section.variant-test tr.winner").count() == 1


# -- Facebook: tests over a campaign's posts ---------------------------------------------------


def _posts_decided(session: Session, engine: Engine, tmp_path: Path) -> None:
    """A Facebook test over the campaign's posts, decided after the wait: b's text drew half
    as many interactions again per view as a's."""
    from marketing.post_variants import is_rest, prepare
    from tests.test_post_variants import FIRST, _approve, _claim_rest, _publish_tests
    from tests.test_post_variants import _apply as apply_posts
    from tests.test_post_variants import _text as posts_text

    import_reference(session=session, path=SAMPLE)
    session.commit()
    posts = apply_posts(session, tmp_path, posts_text())
    _approve(session)
    _publish_tests(session, posts, {"a": 0.04, "b": 0.06})
    rest = next(p for p in posts if is_rest(p.content))
    claim = _claim_rest(engine, rest, FIRST + timedelta(hours=25))
    prepare(engine=engine, claim=claim, now=FIRST + timedelta(hours=25))
    session.expire_all()


def test_the_campaign_report_shows_the_facebook_post_test_in_thai_with_intervals(
    session: Session, engine: Engine, tmp_path: Path
) -> None:
    _posts_decided(session, engine, tmp_path)
    report = campaign_report(session=session, campaign_slug="post-test")
    (test,) = report.post_variant_tests
    assert (test.channel, test.outcome, test.winner, test.chosen, test.rest_posts) == (
        "facebook",
        "winner",
        "b",
        "b",
        12,
    )
    assert [arm.key for arm in test.arms] == ["a", "b"] and len(test.communities) >= 2
    for arm in test.arms:
        assert arm.low < arm.rate < arm.high and arm.views > 10_000 and arm.posts == 4
    assert test.arms[1].message.startswith("ชวนมาพัก")
    html = render_html(report, language="th")
    assert "การทดสอบตัวเลือกของโพสต์" in html
    assert "ตัวเลือก b ชนะ: โอกาสเป็นตัวที่ดีที่สุด" in html and "โพสต์ที่เหลือใช้ตัวเลือกนี้" in html
    assert "การมีส่วนร่วมต่อการเข้าชม (ช่วง 95 %)" in html
    english = render_html(report, language="en")
    assert "Post variant tests" in english and "The later posts got it." in english


def test_the_report_page_shows_the_facebook_verdict_at_desktop_and_phone_width(
    browser: Any,  # noqa: F811
    session: Session,
    engine: Engine,
    tmp_path: Path,
) -> None:
    _posts_decided(session, engine, tmp_path)
    add_user(engine, "admin", Role.ADMIN)
    with served(engine, clock=clock_at(NOW)) as server:
        walker = Walker(browser, server.url, photos=True)
        walker.sign_in()
        walker.check("report-campaign-post-variants", "/reports/campaign/post-test")
        assert walker.problems == []
        for page, _size in walker.tabs:
            verdicts = page.locator("section.post-variant-test p.verdict").all_inner_texts()
            assert len(verdicts) == 1 and "ตัวเลือก b ชนะ" in verdicts[0]
            assert page.locator("section.post-variant-test tr.winner").count() == 1
            cells = page.locator("section.post-variant-test td.variant-text").all_inner_texts()
            assert len(cells) == 2 and cells[1].startswith("ชวนมาพัก")
