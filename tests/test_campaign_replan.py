"""Re-applying edited campaigns, and the campaign statuses (SQLite and PostgreSQL).

Re-planning changes exactly what changed: posts still scheduled or queued are updated or
cancelled, new ones are added, and posts in any other state are never touched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import campaigns
from campaigns import (
    CampaignStateError,
    apply_campaign,
    approval_hash,
    approve_campaign,
    cancel_campaign,
    pause_campaign,
    resume_campaign,
)
from marketing.cli.communities import SAMPLE
from marketing.models import (
    Campaign,
    CampaignStatus,
    ChannelKind,
    Community,
    Highlight,
    Post,
    PostState,
)
from marketing.problems import InvalidInput
from marketing.reference import import_reference
from marketing.settings import get_settings

EXAMPLES = Path(campaigns.__file__).parent / "examples"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

BASE = """\
slug: replan
name: ทดลองแก้แคมเปญ
window: {start: 2027-03-01, end: 2027-03-31}
communities: [nan-ban-doi-ngoen, phrae-ban-thung-khram, lampang-ban-din-daeng]
channels:
  facebook:
    message: "สวัสดี {{ community.name_th }} วันที่ {{ thai_date(occurrence.at) }}"
    photo: examples/songkran-poster.png
  email:
    account: glo-email
    subject: "ข่าว{{ community.name_th }}"
    html: {file: letter.html.j2}
schedule:
  at:
    - {key: first, time: 2027-03-05T10:00:00+07:00}
    - {key: second, time: 2027-03-12T10:00:00+07:00}
    - {key: third, time: 2027-03-19T10:00:00+07:00}
"""

Key = tuple[str, str, str]  # community slug, channel, occurrence key


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "letter.html.j2").write_text(
        "<p>เรียน {{ subscriber.name }}</p><p>{{ community.description }}</p>", encoding="utf-8"
    )
    return tmp_path


def _apply(session: Session, folder: Path, text: str, now: datetime = NOW) -> Any:
    path = folder / "replan.yaml"
    path.write_text(text, encoding="utf-8")
    summary = apply_campaign(session=session, path=path, actor="staff", now=now)
    session.commit()
    session.expire_all()
    return summary


def _posts(session: Session) -> dict[Key, Post]:
    slugs = {c.id: c.slug for c in session.scalars(select(Community))}
    return {
        (slugs[p.community_id], p.channel.value, p.occurrence_key): p
        for p in session.scalars(select(Post))
    }


def _snapshot(session: Session) -> dict[Key, tuple[Any, ...]]:
    return {
        key: (p.id, p.state, p.content_hash, p.scheduled_at, p.next_try_at, p.updated_at)
        for key, p in _posts(session).items()
    }


def _set_states(session: Session, states: dict[Key, PostState]) -> None:
    posts = _posts(session)
    for key, state in states.items():
        posts[key].state = state
    session.commit()
    session.expire_all()


def test_applying_the_same_file_twice_changes_nothing(sample: Session, folder: Path) -> None:
    first = _apply(sample, folder, BASE)
    assert first.created and first.added == 18 and first.status == CampaignStatus.DRAFT
    before = _snapshot(sample)
    campaign_before = sample.scalars(select(Campaign.updated_at)).one()
    second = _apply(sample, folder, BASE, now=LATER)
    assert not second.changed
    assert (second.added, second.updated, second.cancelled, second.unchanged) == (0, 0, 0, 18)
    assert _snapshot(sample) == before
    assert sample.scalars(select(Campaign.updated_at)).one() == campaign_before


def test_a_moved_occurrence_updates_only_its_posts_and_never_finished_ones(
    sample: Session, folder: Path
) -> None:
    _apply(sample, folder, BASE)
    _set_states(
        sample,
        {
            ("nan-ban-doi-ngoen", "facebook", "second"): PostState.PUBLISHED,
            ("phrae-ban-thung-khram", "facebook", "second"): PostState.PUBLISHING,
            ("lampang-ban-din-daeng", "facebook", "second"): PostState.FAILED,
            ("nan-ban-doi-ngoen", "email", "second"): PostState.QUEUED,
        },
    )
    before = _snapshot(sample)
    moved = BASE.replace("2027-03-12T10:00:00+07:00", "2027-03-12T11:30:00+07:00")
    summary = _apply(sample, folder, moved, now=LATER)
    assert (summary.added, summary.updated, summary.cancelled) == (0, 3, 0)
    assert (summary.kept, summary.unchanged) == (3, 12)
    after = _snapshot(sample)
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {
        ("nan-ban-doi-ngoen", "email", "second"),
        ("phrae-ban-thung-khram", "email", "second"),
        ("lampang-ban-din-daeng", "email", "second"),
    }
    posts = _posts(sample)
    new_time = datetime(2027, 3, 12, 4, 30, tzinfo=UTC)
    for key in changed:
        assert posts[key].scheduled_at == posts[key].next_try_at == new_time
        assert posts[key].id == before[key][0]  # the same row, moved
    # The queued one goes back to waiting for its new time.
    assert posts[("nan-ban-doi-ngoen", "email", "second")].state == PostState.SCHEDULED
    assert posts[("nan-ban-doi-ngoen", "email", "second")].state_changed_at == LATER


def test_a_content_edit_keeps_a_queued_post_queued(sample: Session, folder: Path) -> None:
    _apply(sample, folder, BASE)
    _set_states(sample, {("nan-ban-doi-ngoen", "facebook", "first"): PostState.QUEUED})
    edited = BASE.replace('"สวัสดี {{', '"สวัสดีปีใหม่ {{')
    summary = _apply(sample, folder, edited, now=LATER)
    assert (summary.updated, summary.unchanged) == (9, 9)
    post = _posts(sample)[("nan-ban-doi-ngoen", "facebook", "first")]
    assert post.state == PostState.QUEUED
    assert post.content["message"].startswith("สวัสดีปีใหม่ ชุมชนผ้าทอบ้านดอยเงิน")


def test_template_file_edits_count_as_changes(sample: Session, folder: Path) -> None:
    _apply(sample, folder, BASE)
    (folder / "letter.html.j2").write_text("<p>สวัสดี {{ subscriber.name }}</p>", encoding="utf-8")
    summary = _apply(sample, folder, BASE, now=LATER)
    assert summary.source_changed and summary.updated == 9  # the email posts
    html = _posts(sample)[("phrae-ban-thung-khram", "email", "third")].content["html"]
    assert html.startswith("<p>สวัสดี ")


def test_removed_and_added_posts_are_cancelled_and_created(sample: Session, folder: Path) -> None:
    _apply(sample, folder, BASE)
    _set_states(sample, {("nan-ban-doi-ngoen", "facebook", "third"): PostState.PUBLISHED})
    before = _snapshot(sample)
    edited = BASE.replace("lampang-ban-din-daeng", "loei-ban-phu-pha-mok").replace(
        "    - {key: third, time: 2027-03-19T10:00:00+07:00}\n", ""
    )
    summary = _apply(sample, folder, edited, now=LATER)
    # loei x 2 occurrences x 2 channels added; lampang x 3 x 2 and the third occurrence of
    # nan and phrae cancelled -- except nan's published Facebook post.
    assert (summary.added, summary.cancelled, summary.updated, summary.unchanged) == (4, 9, 0, 8)
    posts = _posts(sample)
    cancelled = {k for k, p in posts.items() if p.state == PostState.CANCELLED}
    assert cancelled == {
        *(
            ("lampang-ban-din-daeng", ch, occ)
            for ch in ("facebook", "email")
            for occ in ("first", "second", "third")
        ),
        ("nan-ban-doi-ngoen", "email", "third"),
        ("phrae-ban-thung-khram", "facebook", "third"),
        ("phrae-ban-thung-khram", "email", "third"),
    }
    assert (
        _snapshot(sample)[("nan-ban-doi-ngoen", "facebook", "third")]
        == before[("nan-ban-doi-ngoen", "facebook", "third")]
    )
    assert {k for k in posts if k[0] == "loei-ban-phu-pha-mok"} == {
        ("loei-ban-phu-pha-mok", ch, occ)
        for ch in ("facebook", "email")
        for occ in ("first", "second")
    }
    # Re-applying the edited file again is a no-op; cancelled posts stay cancelled.
    again = _apply(sample, folder, edited, now=LATER)
    assert not again.changed and again.unchanged == 12


def test_a_changed_approved_campaign_is_a_draft_again(sample: Session, folder: Path) -> None:
    _apply(sample, folder, BASE)
    approved = approve_campaign(
        session=sample,
        slug="replan",
        shown_hash=approval_hash(session=sample, slug="replan"),
        actor="หัวหน้า",
        now=NOW,
    )
    assert (approved.status, approved.approved_by, approved.approved_at) == (
        CampaignStatus.APPROVED,
        "หัวหน้า",
        NOW,
    )
    sample.commit()
    unchanged = _apply(sample, folder, BASE)
    assert unchanged.status == CampaignStatus.APPROVED and not unchanged.back_to_draft
    changed = _apply(sample, folder, BASE.replace("ข่าว", "ข่าวดี"))
    assert changed.back_to_draft and changed.status == CampaignStatus.DRAFT
    campaign = sample.scalars(select(Campaign)).one()
    assert (campaign.status, campaign.approved_by, campaign.approved_at) == (
        CampaignStatus.DRAFT,
        None,
        None,
    )


def test_approve_checks_the_campaign_again(sample: Session, folder: Path) -> None:
    _apply(sample, folder, BASE)
    (folder / "letter.html.j2").write_text("<p>{{ subscriber.name }} แก้แล้ว</p>", encoding="utf-8")
    with pytest.raises(CampaignStateError, match="template file of 'replan' changed"):
        approve_campaign(
            session=sample,
            slug="replan",
            shown_hash=approval_hash(session=sample, slug="replan"),
            actor="x",
            now=NOW,
        )
    _apply(sample, folder, BASE)
    (get_settings().media_root / "examples" / "songkran-poster.png").unlink()
    with pytest.raises(InvalidInput) as caught:
        approve_campaign(
            session=sample,
            slug="replan",
            shown_hash=approval_hash(session=sample, slug="replan"),
            actor="x",
            now=NOW,
        )
    assert [p.field for p in caught.value.problems] == ["channels.facebook.photo"]
    sample.rollback()
    assert sample.scalars(select(Campaign.status)).one() == CampaignStatus.DRAFT
    with pytest.raises(CampaignStateError, match="no campaign 'nope'"):
        approve_campaign(session=sample, slug="nope", actor="x", shown_hash="-")


def test_pause_resume_and_cancel(sample: Session, folder: Path) -> None:
    _apply(sample, folder, BASE)
    with pytest.raises(CampaignStateError, match="is draft"):
        pause_campaign(session=sample, slug="replan")
    approve_campaign(
        session=sample,
        slug="replan",
        shown_hash=approval_hash(session=sample, slug="replan"),
        actor="x",
        now=NOW,
    )
    assert pause_campaign(session=sample, slug="replan") is True
    assert pause_campaign(session=sample, slug="replan") is False
    with pytest.raises(CampaignStateError, match="resume it instead"):
        approve_campaign(
            session=sample,
            slug="replan",
            shown_hash=approval_hash(session=sample, slug="replan"),
            actor="x",
            now=NOW,
        )
    assert resume_campaign(session=sample, slug="replan") is True
    sample.commit()
    states = {
        ("nan-ban-doi-ngoen", "facebook", "first"): PostState.PUBLISHED,
        ("nan-ban-doi-ngoen", "email", "first"): PostState.PUBLISHING,
        ("phrae-ban-thung-khram", "facebook", "first"): PostState.UNCONFIRMED,
        ("phrae-ban-thung-khram", "email", "first"): PostState.FAILED,
        ("lampang-ban-din-daeng", "facebook", "first"): PostState.NEEDS_RECONNECT,
        ("lampang-ban-din-daeng", "email", "first"): PostState.QUEUED,
    }
    _set_states(sample, states)
    assert cancel_campaign(session=sample, slug="replan", now=LATER) == 14  # 12 + 2
    sample.commit()
    sample.expire_all()
    posts = _posts(sample)
    for key, state in states.items():
        expected = (
            PostState.CANCELLED if state in (PostState.NEEDS_RECONNECT, PostState.QUEUED) else state
        )
        assert posts[key].state == expected
    assert sum(p.state == PostState.CANCELLED for p in posts.values()) == 14
    with pytest.raises(CampaignStateError, match="was cancelled"):
        _apply(sample, folder, BASE)
    with pytest.raises(CampaignStateError, match="is cancelled"):
        approve_campaign(
            session=sample,
            slug="replan",
            shown_hash=approval_hash(session=sample, slug="replan"),
            actor="x",
        )


HIGHLIGHTS = """\
slug: nan-highlights
name: ไฮไลต์น่าน
window: {start: 2027-01-01, end: 2027-01-31}
communities: [nan-ban-doi-ngoen]
highlights: next
channels:
  facebook:
    message: "{{ highlight.title }}"
  email:
    account: glo-email
    subject: "{{ highlight.title }}"
    html: "<p>{{ highlight.title }}</p>"
schedule:
  every: weekly on monday 10:00
"""


def _highlight(session: Session, key: str, position: int, **values: Any) -> Highlight:
    nan = session.scalars(select(Community).where(Community.slug == "nan-ban-doi-ngoen")).one()
    highlight = Highlight(
        community_id=nan.id, key=key, position=position, title=f"เรื่อง {key}", **values
    )
    session.add(highlight)
    session.commit()
    return highlight


def test_highlight_assignment_is_stable_across_replans(sample: Session, folder: Path) -> None:
    _highlight(sample, "river", 5, people_consent=True)
    _highlight(sample, "field", 6, tags=["no-people"])
    first = _apply(sample, folder, HIGHLIGHTS)
    assert first.added == 6  # Mondays 4, 11, 18 get highlight-1, river, field; 25th: none left
    keys = {h.id: h.key for h in sample.scalars(select(Highlight))}
    assigned = {
        occ: keys[p.highlight_id or 0]
        for (_c, ch, occ), p in _posts(sample).items()
        if ch == ChannelKind.FACEBOOK.value
    }
    assert assigned == {"2027-01-04": "highlight-1", "2027-01-11": "river", "2027-01-18": "field"}

    # The first Facebook post goes out; the publisher marks its highlight posted.
    posts = _posts(sample)
    went_out = posts[("nan-ban-doi-ngoen", "facebook", "2027-01-04")]
    went_out.state = PostState.PUBLISHED
    published = sample.get(Highlight, went_out.highlight_id)
    assert published is not None and published.key == "highlight-1"
    published.last_posted_at = NOW
    sample.commit()
    # A new eligible highlight appears *before* the others in order.
    _highlight(sample, "new-first", -1, people_consent=True)
    before = _snapshot(sample)

    again = _apply(sample, folder, HIGHLIGHTS, now=LATER)
    # Nothing already planned is reshuffled; the new highlight takes the free Monday.
    assert (again.added, again.updated, again.cancelled) == (2, 0, 0)
    after = _snapshot(sample)
    assert all(after[key] == value for key, value in before.items())
    posts = _posts(sample)
    keys = {h.id: h.key for h in sample.scalars(select(Highlight))}
    assert keys[posts[("nan-ban-doi-ngoen", "facebook", "2027-01-25")].highlight_id or 0] == (
        "new-first"
    )
    # The email of the first Monday keeps highlight-1 although it is now marked posted.
    assert keys[posts[("nan-ban-doi-ngoen", "email", "2027-01-04")].highlight_id or 0] == (
        "highlight-1"
    )
    per_occurrence = {}
    for (_c, _ch, occ), post in posts.items():
        per_occurrence.setdefault(post.highlight_id, set()).add(occ)
    assert all(len(occurrences) == 1 for occurrences in per_occurrence.values())
