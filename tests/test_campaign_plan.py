"""Planning campaigns against the database (SQLite and PostgreSQL): the shipped examples,
a file with ten mistakes, channel limits, selections, rotation, highlights and audiences."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import campaigns
from campaigns import apply_campaign, plan_file
from campaigns.planning import idempotency_key
from channels.email import merge_slot
from marketing.cli.communities import SAMPLE
from marketing.models import Campaign, ChannelKind, Community, Highlight, Post, PostState
from marketing.problems import InvalidInput
from marketing.reference import import_reference
from marketing.settings import get_settings

EXAMPLES = Path(campaigns.__file__).parent / "examples"
FIXTURES = Path(__file__).parent / "campaign_fixtures"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


def _count(session: Session, model: type[object]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


EXPECTED_POSTS = {
    "songkran-2027.yaml": 60,  # 10 communities x 2 times x 3 channels
    "weekly-highlights.yaml": 10,  # one eligible highlight per sample community
    "community-spotlight.yaml": 20,  # one community a day, one round, on Facebook and LINE
    "food-trail.yaml": 32,  # 4 communities tagged อาหาร x 4 Saturdays x 2 channels
}


@pytest.mark.parametrize("name", sorted(EXPECTED_POSTS))
def test_examples_validate_plan_and_apply_with_thai_intact(sample: Session, name: str) -> None:
    path = EXAMPLES / name
    plan = plan_file(session=sample, path=path, now=NOW)
    assert len(plan.posts) == EXPECTED_POSTS[name]
    assert len({p.idempotency_key for p in plan.posts}) == len(plan.posts)

    summary = apply_campaign(session=sample, path=path, actor="ทดสอบ", now=NOW)
    sample.commit()
    assert summary.created and summary.added == len(plan.posts)
    sample.expire_all()
    campaign = sample.scalars(select(Campaign)).one()
    assert campaign.source_text == path.read_text(encoding="utf-8")
    assert campaign.name == plan.definition.name and any(
        "\u0e00" <= c <= "\u0e7f" for c in campaign.name
    )
    assert campaign.created_by == "ทดสอบ"
    stored = {p.idempotency_key: p for p in sample.scalars(select(Post))}
    for planned in plan.posts:
        post = stored[planned.idempotency_key]
        assert post.content == planned.content  # Thai text and merge slots, byte for byte
        assert post.scheduled_at == planned.scheduled_at == post.next_try_at
        assert post.scheduled_at.tzinfo is not None
        assert post.state == PostState.SCHEDULED
        assert post.occurrence_key == planned.occurrence_key
        assert post.channel == planned.channel
    communities = {c.id: c for c in sample.scalars(select(Community))}
    first = sample.scalars(select(Post).order_by(Post.id)).first()
    assert first is not None
    text = " ".join(str(v) for v in first.content.values())
    assert communities[first.community_id].name_th in text or first.highlight_id is not None

    again = apply_campaign(session=sample, path=path, actor="ทดสอบ", now=NOW)
    assert not again.changed and again.unchanged == len(plan.posts)


def test_songkran_content_in_detail(sample: Session) -> None:
    plan = plan_file(session=sample, path=EXAMPLES / "songkran-2027.yaml", now=NOW)
    nan = {
        (p.channel, p.occurrence_key): p
        for p in plan.posts
        if p.community_slug == "nan-ban-doi-ngoen"
    }
    facebook = nan[(ChannelKind.FACEBOOK, "festival")]
    assert facebook.account_slug == "nan-ban-doi-ngoen-facebook"
    assert facebook.scheduled_at == datetime(2027, 4, 13, 2, 0, tzinfo=UTC)
    assert "มาเที่ยวชุมชนผ้าทอบ้านดอยเงิน จังหวัดน่าน" in facebook.content["message"]
    assert "13 เมษายน 2570 เวลา 09:00 น." in facebook.content["message"]
    assert facebook.content["link"] == (
        "https://community.example.org/nan-ban-doi-ngoen/songkran?utm_source=facebook"
        "&utm_medium=social&utm_campaign=songkran-2027&utm_content=nan-ban-doi-ngoen"
    )
    poster = get_settings().media_root.resolve() / "examples" / "songkran-poster.png"
    assert facebook.content["photo"] == str(poster)
    assert facebook.idempotency_key == idempotency_key(
        "songkran-2027", "nan-ban-doi-ngoen", "nan-ban-doi-ngoen-facebook", "festival"
    )

    youtube = nan[(ChannelKind.YOUTUBE, "festival")]
    # Uploaded three hours ahead, made public by YouTube at the occurrence.
    assert youtube.scheduled_at == datetime(2027, 4, 12, 23, 0, tzinfo=UTC)
    assert youtube.content["publish_at"] == "2027-04-13T02:00:00+00:00"
    assert youtube.content["title"] == "สงกรานต์ชุมชนผ้าทอบ้านดอยเงิน 13 เม.ย. 2570"
    assert youtube.content["tags"] == ["สงกรานต์", "น่าน", "ท่องเที่ยวชุมชน"]
    assert youtube.content["privacy"] == "private" and youtube.content["category_id"] == "19"

    email = nan[(ChannelKind.EMAIL, "festival")]
    assert email.account_slug == "glo-email"
    assert email.content["subject"].startswith(merge_slot("name") + " มาสาดความสุข")
    html = email.content["html"]
    assert f"เรียน {merge_slot('name')}" in html and merge_slot("unsubscribe_url") in html
    assert "utm_source=email&amp;utm_medium=email" in html
    assert "วันพุธที่ 13 เมษายน พ.ศ. 2570 เวลา 09:00 น." not in html  # 13 April 2027 is a Tuesday
    assert "วันอังคารที่ 13 เมษายน พ.ศ. 2570 เวลา 09:00 น." in html
    assert "audience" not in email.content


def test_a_file_with_ten_mistakes_reports_all_ten_and_writes_nothing(sample: Session) -> None:
    path = FIXTURES / "ten-mistakes.yaml"
    with pytest.raises(InvalidInput) as caught:
        apply_campaign(session=sample, path=path, actor="t", now=NOW)
    found = [(p.file, p.line, p.field) for p in caught.value.problems]
    file = str(path)
    assert found == [
        (file, 3, "descripton"),
        (file, 6, "window.end"),
        (file, 9, "communities[1]"),
        (file, 16, "channels.facebook.message"),
        (file, 17, "channels.facebook.photo"),
        (file, 19, "channels.youtube.account"),
        (file, 20, "channels.youtube.title"),
        (file, 21, "channels.youtube.description"),
        (file, 25, "channels.email.subject"),
        (file, 29, "schedule.at[0]"),
    ], "\n".join(str(p) for p in caught.value.problems)
    messages = [p.message for p in caught.value.problems]
    assert "did you mean description?" in (caught.value.problems[0].hint or "")
    assert "before it starts" in messages[1]
    assert "unknown community 'nan-ban-doi-ngeon'" in messages[2]
    assert "endfi" in messages[3]
    assert "poster-missing.png" in messages[4]
    assert "unknown channel account 'glo-youtub'" in messages[5]
    assert "did you mean glo-youtube?" in (caught.value.problems[5].hint or "")
    assert "community has no field 'nmae'" in messages[6]
    assert "5,100 bytes" in messages[7]
    assert "filled in per recipient" in messages[8]
    assert "no time zone offset" in messages[9]
    sample.rollback()
    assert _count(sample, Campaign) == 0 and _count(sample, Post) == 0


CAMPAIGN = """\
slug: limits
name: ทดสอบ
window: {{start: 2027-01-01, end: 2027-01-31}}
communities: {communities}
channels:
{channels}
schedule:
  at: [2027-01-10T10:00:00+07:00]
"""


def _campaign(tmp_path: Path, channels: str, communities: str = "all") -> Path:
    return _write(tmp_path, CAMPAIGN.format(channels=channels, communities=communities))


def test_channel_limits_are_checked_after_rendering(sample: Session, tmp_path: Path) -> None:
    path = _campaign(
        tmp_path,
        """\
  youtube:
    title: "{{ community.name_th }} {{ 'ยาว' * 40 }}"
    description: "<b>{{ community.province }}</b>"
    video: examples/songkran-clip.mp4
    tags: ["{{ 'แท็ก' * 130 }}"]
  facebook:
    message: "{{ 'ก' * 63207 }}"
""",
    )
    with pytest.raises(InvalidInput) as caught:
        plan_file(session=sample, path=path, now=NOW)
    by_field = Counter(p.field for p in caught.value.problems)
    assert by_field == {
        "channels.youtube.title": 1,
        "channels.youtube.description": 1,
        "channels.youtube.tags": 1,
        "channels.facebook.message": 1,
    }
    title = next(p for p in caught.value.problems if p.field == "channels.youtube.title")
    # Reported once, for the first community and the nine others.
    assert "YouTube allows 100" in title.message and "and 9 more" in title.message
    message = next(p for p in caught.value.problems if p.field == "channels.facebook.message")
    assert "63,207 characters" in message.message and message.line == 12


def test_accounts_must_exist_have_the_right_kind_and_cover_every_community(
    sample: Session, tmp_path: Path
) -> None:
    path = _campaign(
        tmp_path,
        """\
  facebook:
    account: glo-youtube
    message: สวัสดี
  youtube:
    account: nan-ban-doi-ngoen-youtube
    title: สวัสดี
    video: examples/songkran-clip.mp4
  email:
    account: community
    subject: สวัสดี
    html: <p>สวัสดี</p>
""",
    )
    with pytest.raises(InvalidInput) as caught:
        plan_file(session=sample, path=path, now=NOW)
    messages = {p.field: p.message for p in caught.value.problems}
    assert messages == {
        "channels.facebook.account": "'glo-youtube' is a youtube account, not facebook",
        "channels.youtube.account": "'nan-ban-doi-ngoen-youtube' belongs to one community, "
        "but the campaign covers others",
        "channels.email.account": "email goes out from a programme-wide sender account",
    }


def test_a_community_without_its_own_account_is_named(sample: Session, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "communities:\n  - slug: new-place\n    name_th: ชุมชนใหม่\n    name_en: New\n"
        "    province: ตาก\n",
        encoding="utf-8",
    )
    import_reference(session=sample, path=extra)
    path = _campaign(tmp_path, "  facebook:\n    message: สวัสดี\n")
    with pytest.raises(InvalidInput) as caught:
        plan_file(session=sample, path=path, now=NOW)
    (problem,) = caught.value.problems
    assert problem.field == "channels.facebook.account"
    assert (
        "1 of the communities have no facebook account of their own: new-place" in problem.message
    )


def test_tag_selection_and_unknown_tags(sample: Session, tmp_path: Path) -> None:
    fb = "  facebook:\n    message: '{{ community.name_th }}'\n"
    plan = plan_file(
        session=sample, path=_campaign(tmp_path, fb, "{tags: [ผ้าทอ, เซรามิก]}"), now=NOW
    )
    assert sorted(plan.communities) == ["lampang-ban-din-daeng", "nan-ban-doi-ngoen"]
    with pytest.raises(InvalidInput) as caught:
        plan_file(session=sample, path=_campaign(tmp_path, fb, "{tags: [ไม่มีแท็กนี้]}"), now=NOW)
    assert [p.field for p in caught.value.problems] == ["communities.tags"]


def test_email_audience_by_subscriber_tags(sample: Session, tmp_path: Path) -> None:
    subscribers = tmp_path / "subs.yaml"
    subscribers.write_text(
        "subscribers:\n"
        "  - community: nan-ban-doi-ngoen\n    email: farmer@example.org\n    name: ชาวนา\n"
        "    consent_source: งานเกษตร\n    consent_at: 2026-10-01T10:00:00+07:00\n"
        "    tags: [เกษตร]\n",
        encoding="utf-8",
    )
    import_reference(session=sample, path=subscribers)
    email = """\
  email:
    account: glo-email
    subject: ข่าว{{ community.name_th }}
    html: <p>{{ subscriber.name }}</p>
    audience: {tags: [%s]}
"""
    plan = plan_file(session=sample, path=_campaign(tmp_path, email % "เกษตร"), now=NOW)
    assert [p.community_slug for p in plan.posts] == ["nan-ban-doi-ngoen"]
    assert plan.posts[0].content["audience"] == {"tags": ["เกษตร"]}
    assert any("9 communities have no consenting subscriber" in n for n in plan.notes)
    with pytest.raises(InvalidInput) as caught:
        plan_file(session=sample, path=_campaign(tmp_path, email % "เกษรต"), now=NOW)
    assert [p.field for p in caught.value.problems] == ["channels.email.audience.tags"]


def test_rotation_gives_each_community_its_turn(sample: Session) -> None:
    plan = plan_file(session=sample, path=EXAMPLES / "community-spotlight.yaml", now=NOW)
    for channel, account in (
        (ChannelKind.FACEBOOK, "glo-facebook"),
        (ChannelKind.LINE, "glo-line"),
    ):
        posts = sorted(
            (p for p in plan.posts if p.channel == channel), key=lambda p: p.scheduled_at
        )
        order = [p.community_slug for p in posts]
        assert order == sorted(c.slug for c in sample.scalars(select(Community)))
        days = [p.scheduled_at for p in posts]
        assert days[0] == datetime(2027, 2, 1, 12, 30, tzinfo=UTC)  # 19:30 in Bangkok
        assert all(b - a == timedelta(days=1) for a, b in zip(days, days[1:], strict=False))
        assert {p.account_slug for p in posts} == {account}


def test_occurrences_already_past_are_not_planned(sample: Session) -> None:
    path = EXAMPLES / "community-spotlight.yaml"
    later = datetime(2027, 2, 5, 0, 0, tzinfo=UTC)  # the first four days are past
    plan = plan_file(session=sample, path=path, now=later)
    assert len(plan.posts) == 6 * 2  # on Facebook and LINE
    assert any("4 community occurrence(s) already past" in n for n in plan.notes)
    # ... but an occurrence that already has its post keeps it.
    apply_campaign(session=sample, path=path, actor="t", now=NOW)
    assert len(plan_file(session=sample, path=path, now=later).posts) == 10 * 2


def _add_highlights(session: Session, tmp_path: Path) -> None:
    extra = tmp_path / "highlights.yaml"
    extra.write_text(
        """\
communities:
  - slug: nan-ban-doi-ngoen
    name_th: ชุมชนผ้าทอบ้านดอยเงิน
    name_en: Ban Doi Ngoen Weaving Community
    province: น่าน
    description: ผ้าทอลายน้ำไหลจากกี่พื้นเมือง เรียนทอผ้ากับแม่อุ๊ย และเดินป่าชมนาขั้นบันได
    tags: [หัตถกรรม, ผ้าทอ, ธรรมชาติ]
    highlights:
      - {key: highlight-1, title: ผ้าซิ่นลายน้ำไหลรุ่นใหม่, people_consent: true}
      - {key: highlight-2, title: เวิร์กช็อปทอผ้ากับแม่อุ๊ย}
      - {key: landscape, title: นาขั้นบันไดยามเช้า, tags: [no-people]}
      - {key: market, title: ตลาดนัดผ้าทอ, people_consent: true}
""",
        encoding="utf-8",
    )
    import_reference(session=session, path=extra)
    session.commit()


HIGHLIGHTS = """\
slug: nan-highlights
name: ไฮไลต์น่าน
window: {start: 2027-01-01, end: 2027-02-28}
communities: [nan-ban-doi-ngoen]
highlights: next
channels:
  facebook:
    message: "{{ highlight.title }} ({{ highlight.key }})"
  email:
    account: glo-email
    subject: "{{ highlight.title }}"
    html: "<p>{{ highlight.body }}</p>"
schedule:
  every: weekly on monday 10:00
"""


def test_highlights_autopilot_picks_eligible_unposted_highlights_in_order(
    sample: Session, tmp_path: Path
) -> None:
    _add_highlights(sample, tmp_path)
    plan = plan_file(session=sample, path=_write(tmp_path, HIGHLIGHTS), now=NOW)
    titles = {}
    keys = {h.id: h.key for h in sample.scalars(select(Highlight))}
    for post in sorted(plan.posts, key=lambda p: p.scheduled_at):
        titles.setdefault(post.occurrence_key, set()).add(keys[post.highlight_id or 0])
    # highlight-2 has people and no consent: skipped; 'landscape' shows none: eligible.
    assert titles == {
        "2027-01-04": {"highlight-1"},
        "2027-01-11": {"landscape"},
        "2027-01-18": {"market"},
    }
    facebook = [p for p in plan.posts if p.channel == ChannelKind.FACEBOOK]
    assert [p.content["message"] for p in facebook][0] == "ผ้าซิ่นลายน้ำไหลรุ่นใหม่ (highlight-1)"
    assert any(
        "5 community occurrence(s) have no eligible unposted highlight" in n for n in plan.notes
    )


def test_highlight_fields_used_without_the_autopilot_are_problems(
    sample: Session, tmp_path: Path
) -> None:
    text = HIGHLIGHTS.replace("highlights: next\n", "")
    with pytest.raises(InvalidInput) as caught:
        plan_file(session=sample, path=_write(tmp_path, text), now=NOW)
    assert {(p.line, p.field) for p in caught.value.problems} == {
        (7, "channels.facebook.message"),
        (10, "channels.email.subject"),
        (11, "channels.email.html"),
    }
    assert all("highlights: next" in (p.hint or "") for p in caught.value.problems)
