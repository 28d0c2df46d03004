"""The composer (#14): a campaign file as a form that writes back only what was edited
(comments and order kept), checked with the same rules and words as ``marketing campaign
validate``, the quick single post, and previews of posts as their channels will show them."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import Engine, select

from campaigns.previews import FACEBOOK_SEE_MORE, cut, facebook_card, youtube_card
from campaigns.yamledit import CampaignDocument
from marketing.db import session_scope
from marketing.models import Campaign, Role
from marketing.settings import get_settings
from marketing.web import create_app
from marketing.web.composer_form import FIELDS, apply_form, form_values
from tests.support.web import NOW, WebClient, add_user, clock_at, import_sample

EXAMPLES = Path(__file__).resolve().parents[1] / "campaigns" / "examples"
SONGKRAN = (EXAMPLES / "songkran-2027.yaml").read_text(encoding="utf-8")


def submitted_from(text: str, **changes: str) -> dict[str, str]:
    """What a browser submits for the form of ``text``, with ``changes`` typed in."""
    values = form_values(CampaignDocument(text))
    values.update(changes)
    return {k: v for k, v in values.items() if v != "" or k in changes}


# --- the file, round trip --------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_example_is_written_back_byte_for_byte(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    doc = CampaignDocument(text)
    apply_form(doc, submitted_from(text))  # the form submitted as it was shown
    assert doc.changed == []
    doc.changed.append(("forced",))  # write it out even so
    assert doc.text() == text


def test_an_edited_field_changes_only_its_own_line() -> None:
    doc = CampaignDocument(SONGKRAN)
    apply_form(doc, submitted_from(SONGKRAN, **{"channels.youtube.title": "สงกรานต์ที่น่าน"}))
    before, after = SONGKRAN.splitlines(), doc.text().splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [
        (
            "    title: \"สงกรานต์{{ community.name_th }} {{ thai_date(occurrence.at, 'short') }}\"",
            '    title: "สงกรานต์ที่น่าน"',
        )
    ]
    # comments on other lines are still there
    assert "account: community            # each community's own channel" in doc.text()


def test_quiet_hours_and_rotation_are_added_as_new_keys_in_the_schedule() -> None:
    doc = CampaignDocument(SONGKRAN)
    apply_form(
        doc,
        submitted_from(
            SONGKRAN,
            **{
                "schedule.quiet_hours.enabled": "on",
                "schedule.quiet_hours.start": "22:00",
                "schedule.quiet_hours.end": "07:00",
                "schedule.rotation.enabled": "on",
                "schedule.rotation.per_slot": "2",
            },
        ),
    )
    text = doc.text()
    assert text.startswith(SONGKRAN)  # everything before is as it was
    import yaml

    data = yaml.safe_load(text)
    assert data["schedule"]["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert data["schedule"]["rotation"] == {"per_slot": 2}
    assert data["schedule"]["at"][0]["key"] == "announce"


def test_switching_to_a_weekly_schedule_and_communities_by_tag_rewrites_those_keys_only() -> None:
    import yaml

    doc = CampaignDocument(SONGKRAN)
    apply_form(
        doc,
        submitted_from(
            SONGKRAN,
            **{
                "schedule.kind": "every",
                "schedule.every": "weekly on monday 10:00",
                "communities.mode": "tags",
                "communities.tags": "ผ้าทอ\nอาหาร",
                "highlights": "on",
            },
        ),
    )
    data = yaml.safe_load(doc.text())
    assert data["schedule"] == {"every": "weekly on monday 10:00"}
    assert data["communities"] == {"tags": ["ผ้าทอ", "อาหาร"]}
    assert data["highlights"] == "next"
    assert list(data) == [
        "slug",
        "name",
        "description",
        "timezone",
        "window",
        "communities",
        "highlights",
        "channels",
        "schedule",
    ]
    assert (
        doc.text().split("channels:")[1].split("schedule:")[0]
        == (SONGKRAN.split("channels:")[1].split("schedule:")[0])
    )  # the channels, comments and all, untouched


def test_a_value_yaml_would_read_as_something_else_is_quoted() -> None:
    doc = CampaignDocument(SONGKRAN)
    apply_form(doc, submitted_from(SONGKRAN, **{"channels.facebook.link": "on"}))
    import yaml

    assert yaml.safe_load(doc.text())["channels"]["facebook"]["link"] == "on"


def test_every_form_field_is_a_path_problems_can_name() -> None:
    assert all(re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", name) for name in FIELDS)


# --- previews: the cut rules ------------------------------------------------------------------


def test_facebook_cuts_behind_see_more_at_477_on_a_desktop_and_125_on_a_phone() -> None:
    words = "สวัสดีครับ " * 80  # 880 characters people see
    desktop = facebook_card({"message": words}, page_name="น่าน", page_picture=None, width="desktop")
    phone = facebook_card({"message": words}, page_name="น่าน", page_picture=None, width="phone")
    assert desktop.see_more and phone.see_more
    assert FACEBOOK_SEE_MORE == {"desktop": 477, "phone": 125}
    assert 477 - 20 <= len(cut(words, 477)[0]) <= 477 + 200  # code points >= seen characters
    assert desktop.shown.endswith("ครับ") and phone.shown.endswith("ครับ")  # at a word's end
    short = facebook_card({"message": "สั้น ๆ"}, page_name="น่าน", page_picture=None, width="phone")
    assert not short.see_more and short.shown == "สั้น ๆ"


def test_a_cut_never_separates_a_thai_mark_from_its_letter() -> None:
    text = "กี่" * 200  # ก + ี + ่: one character seen, three code points
    shown, more = cut(text, 125)
    assert more and shown == "กี่" * 125


def test_youtube_title_is_cut_at_100_and_says_so() -> None:
    card = youtube_card({"title": "ก" * 130, "description": "x"}, channel_name="ช่อง")
    assert card.title == "ก" * 100 and card.title_cut and card.title_length == 130
    fits = youtube_card({"title": "ก" * 100}, channel_name="ช่อง")
    assert not fits.title_cut


# --- the web form ---------------------------------------------------------------------------


def place_example_files() -> None:
    """The songkran example's media in the media folder, its e-mail template beside the web
    app's campaign files (as campaigns/examples/songkran-2027.yaml's header says)."""
    settings = get_settings()
    shutil.copytree(EXAMPLES / "media", settings.media_root / "examples", dirs_exist_ok=True)
    shutil.copytree(
        EXAMPLES / "templates", settings.data_dir / "campaigns" / "templates", dirs_exist_ok=True
    )


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    import_sample(engine)
    add_user(engine, "editor", Role.EDITOR)
    add_user(engine, "approver", Role.APPROVER)
    place_example_files()
    return create_app(engine=engine, clock=clock_at(NOW))


@pytest.fixture
def editor(app: FastAPI) -> Iterator[WebClient]:
    client = WebClient(app).sign_in("editor")
    yield client
    client.close()


def compose(client: WebClient, base: str, action: str = "check", **changes: str) -> object:
    return client.post(
        "/campaigns/compose",
        data={"base": base, "action": action, **submitted_from(base, **changes)},
    )


LONG_TITLE = "สงกรานต์วิถีชุมชนที่{{ community.name_th }} " + "ก" * 100


def test_an_over_long_youtube_title_is_shown_at_its_field_then_fixed_and_previewed(
    editor: WebClient, engine: Engine
) -> None:
    page = compose(editor, SONGKRAN, **{"channels.youtube.title": LONG_TITLE})
    assert page.status_code == 422, page.text[:2000]
    field = re.search(r'data-field="channels\.youtube\.title">(.*?)</div>', page.text, re.S)
    assert field, "the title's field is on the page"
    assert "YouTube allows 100" in field[1] or "100" in re.sub(r"<[^>]+>", "", field[1])
    assert "field-problems" in field[1] and "⚠" in field[1]
    # the live check (what composer.js shows) says the same at the same field
    answer = editor.post(
        "/campaigns/compose/check",
        data={
            "base": SONGKRAN,
            **submitted_from(SONGKRAN, **{"channels.youtube.title": LONG_TITLE}),
        },
    ).json()
    assert not answer["ok"] and list(answer["problems"]) == ["channels.youtube.title"]
    # fixed: previews of each channel
    page = compose(
        editor, SONGKRAN, **{"channels.youtube.title": "สงกรานต์ที่{{ community.name_th }}"}
    )
    assert page.status_code == 200, page.text[:3000]
    assert 'class="fb-card fb-width-phone"' in page.text and 'class="yt-card"' in page.text
    phone = page.text[page.text.index("fb-width-phone") :]
    phone = phone[: phone.index("</article>")]
    assert "ดูเพิ่มเติม" in phone  # the songkran message is longer than a phone shows
    assert 'class="fb-card fb-width-desktop"' in page.text  # the toggle shows one or the other
    assert 'iframe class="email"' in page.text
    with session_scope(engine) as session:
        assert session.scalars(select(Campaign)).first() is None  # checking stores nothing


def bad_songkran() -> str:
    """The songkran example with three mistakes: an unknown community, a title over 100
    characters, and a quiet-hours time that is no time."""
    doc = CampaignDocument(SONGKRAN)
    apply_form(
        doc,
        submitted_from(
            SONGKRAN,
            **{
                "communities.mode": "list",
                "communities.list": "nan-ban-doi-ngoen\nnan-ban-doi-ngeon",
                "channels.youtube.title": LONG_TITLE,
                "schedule.quiet_hours.enabled": "on",
                "schedule.quiet_hours.start": "25:00",
                "schedule.quiet_hours.end": "07:00",
            },
        ),
    )
    return doc.text()


def test_the_form_s_problems_are_the_command_line_s_in_the_same_words(
    editor: WebClient, engine: Engine, tmp_path: Path
) -> None:
    from marketing.cli import main

    text = bad_songkran()
    folder = tmp_path / "files"
    shutil.copytree(EXAMPLES / "templates", folder / "templates")
    (folder / "bad.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["campaign", "validate", str(folder / "bad.yaml")])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    # the form's own fields as the text shows them are what a browser submits
    answer = editor.post(
        "/campaigns/compose/check", data={"base": text, **submitted_from(text)}
    ).json()
    shown = [p for problems in answer["problems"].values() for p in problems]
    assert len(shown) >= 3
    for problem in shown:
        words = " ".join(f"{problem['message']} -- {problem['hint']}".split()).removesuffix(" --")
        assert f"{problem['field']}: {words}" in said, (problem, said)
    assert {"communities.list", "channels.youtube.title", "schedule.quiet_hours.start"} <= set(
        answer["problems"]
    )


def test_the_e_mail_preview_is_built_for_a_real_subscriber_of_the_community(
    editor: WebClient, engine: Engine
) -> None:
    from marketing.models import Community, Subscriber

    with session_scope(engine) as session:
        first = session.execute(
            select(Subscriber.email, Subscriber.name)
            .join(Community, Community.id == Subscriber.community_id)
            .where(Community.slug == "nan-ban-doi-ngoen", Subscriber.unsubscribed_at.is_(None))
            .order_by(Subscriber.id)
        ).first()
    assert first is not None, "the sample community has subscribers"
    text = CampaignDocument(SONGKRAN)
    apply_form(
        text,
        submitted_from(
            SONGKRAN,
            **{"communities.mode": "list", "communities.list": "nan-ban-doi-ngoen"},
        ),
    )
    answer = editor.http.post(
        "/api/v1/campaigns/preview",
        json={"yaml": text.text()},
        headers={"x-csrf-token": editor.csrf},
    )
    assert answer.status_code == 200, answer.text[:2000]
    body = answer.json()
    assert body["ok"], body["problems"]
    emails = [p["email"] for p in body["previews"] if p["channel"] == "email"]
    assert emails and emails[0]["subscriber"] == first.email
    # the subject's {{ subscriber.name }} is the subscriber's own name, filled as sending does
    assert emails[0]["subject"].startswith(first.name or "")
    assert "/e/unsubscribe/" in emails[0]["html"] or "ยกเลิก" in emails[0]["html"]
    assert "/e/open/" not in emails[0]["html"]  # looking at a preview is not opening it
    cards = [p for p in body["previews"] if p["channel"] == "facebook"]
    assert cards and set(cards[0]["facebook"]) == {"desktop", "phone"}
    assert cards[0]["facebook"]["phone"]["see_more"]  # the songkran message is over 125
    youtube = [p["youtube"] for p in body["previews"] if p["channel"] == "youtube"]
    assert youtube and not youtube[0]["title_cut"]


def test_a_quick_post_is_a_campaign_of_one_occurrence_at_the_time_asked(
    editor: WebClient, engine: Engine
) -> None:
    answer = editor.post(
        "/campaigns/quick",
        data={
            "name": "ชวนชิมข้าวซอย",
            "message": "เย็นนี้มาชิมข้าวซอยที่{{ community.name_th }}",
            "communities": ["nan-ban-doi-ngoen", "trat-ban-ao-sai"],
            "at": "18:00",
        },
    )
    assert answer.status_code == 303, answer.text[:2000]
    from marketing.models import Post

    with session_scope(engine) as session:
        campaign = session.scalars(select(Campaign)).one()
        posts = session.scalars(select(Post).where(Post.campaign_id == campaign.id)).all()
        assert campaign.status.value == "draft"
        assert len(posts) == 2 and len({p.occurrence_key for p in posts}) == 1
        local = posts[0].scheduled_at.astimezone(get_settings().zone)
        assert (local.hour, local.minute) == (18, 0)
        assert "ข้าวซอย" in posts[0].content["message"]


def test_the_approver_sees_what_changed_and_a_stale_approval_is_refused_in_thai(
    app: FastAPI, editor: WebClient, engine: Engine
) -> None:
    base = CampaignDocument(SONGKRAN)
    apply_form(
        base,
        submitted_from(
            SONGKRAN, **{"communities.mode": "list", "communities.list": "nan-ban-doi-ngoen"}
        ),
    )
    first = compose(editor, base.text(), action="apply")
    assert first.status_code == 303, first.text[:2000]
    approver = WebClient(app).sign_in("approver")
    page = approver.get("/campaigns/songkran-2027")
    shown = re.search(r'name="approval_hash" value="([0-9a-f]+)"', page.text)
    assert shown
    assert (
        approver.post(
            "/campaigns/songkran-2027/approve", data={"approval_hash": shown[1]}
        ).status_code
        == 303
    )
    with session_scope(engine) as session:
        stored = session.scalars(select(Campaign)).one()
        assert stored.status.value == "approved" and stored.approved_source_text == base.text()
    # a later edit in the form: one field
    edited = compose(
        editor,
        base.text(),
        action="apply",
        **{"channels.facebook.link": "https://community.example.org/{{ community.slug }}/water"},
    )
    assert edited.status_code == 303, edited.text[:2000]
    page = approver.get("/campaigns/songkran-2027")
    changes = page.text[page.text.index('id="changes"') :]
    changes = changes[: changes.index("</section>")]
    assert "/water" in changes and "/songkran" in changes  # the file's line, before and after
    assert changes.count('class="post-diff"') == 2  # two occurrences of the Facebook post
    assert 'class="add"' in changes and 'class="del"' in changes
    shown = re.search(r'name="approval_hash" value="([0-9a-f]+)"', page.text)
    assert shown
    # the editor changes it again after the approver opened the page
    again = compose(editor, edited_text(engine), action="apply", **{"channels.facebook.link": ""})
    assert again.status_code == 303
    refused = approver.post("/campaigns/songkran-2027/approve", data={"approval_hash": shown[1]})
    assert refused.status_code == 303
    flashed = approver.get("/campaigns/songkran-2027").text
    assert "ยังไม่อนุมัติ" in flashed, flashed[:3000]  # "Not approved: ..." in Thai
    with session_scope(engine) as session:
        assert session.scalars(select(Campaign)).one().status.value == "draft"
    approver.close()


def edited_text(engine: Engine) -> str:
    with session_scope(engine) as session:
        return session.scalars(select(Campaign)).one().source_text


def test_the_file_downloaded_after_composing_uploads_again_with_no_change(
    editor: WebClient, engine: Engine
) -> None:
    base = CampaignDocument(SONGKRAN)
    apply_form(
        base,
        submitted_from(
            SONGKRAN, **{"communities.mode": "list", "communities.list": "nan-ban-doi-ngoen"}
        ),
    )
    assert compose(editor, base.text(), action="apply").status_code == 303
    downloaded = editor.get("/campaigns/songkran-2027/source").text
    assert downloaded == base.text()  # the comments of the example are in it
    assert "# each community's own Page" in downloaded
    again = editor.post("/campaigns/apply", data={"yaml": downloaded}, follow_redirects=True)
    assert again.status_code == 200
    assert "ไม่มีการเปลี่ยนแปลง: แคมเปญตรงกับไฟล์อยู่แล้ว" in again.text  # "Nothing changed"
    # and the composer shows it with nothing to write when nothing is edited
    doc = CampaignDocument(downloaded)
    apply_form(doc, submitted_from(downloaded))
    assert doc.changed == [] and doc.text() == downloaded


def test_beyond_the_posts_whose_text_is_kept_a_change_shows_by_content_hash(
    app: FastAPI, editor: WebClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import campaigns.lifecycle

    monkeypatch.setattr(campaigns.lifecycle, "SNAPSHOT_TEXT_POSTS", 1)
    base = CampaignDocument(SONGKRAN)
    apply_form(
        base,
        submitted_from(
            SONGKRAN, **{"communities.mode": "list", "communities.list": "nan-ban-doi-ngoen"}
        ),
    )
    assert compose(editor, base.text(), action="apply").status_code == 303
    approver = WebClient(app).sign_in("approver")
    shown = re.search(
        r'name="approval_hash" value="([0-9a-f]+)"', approver.get("/campaigns/songkran-2027").text
    )
    assert shown
    approver.post("/campaigns/songkran-2027/approve", data={"approval_hash": shown[1]})
    with session_scope(engine) as session:
        kept = session.scalars(select(Campaign)).one().approved_posts or {}
        assert sum("content" in post for post in kept.values()) == 1 and len(kept) == 6
    edited = compose(
        editor,
        base.text(),
        action="apply",
        **{"channels.facebook.link": "https://community.example.org/{{ community.slug }}/water"},
    )
    assert edited.status_code == 303
    page = approver.get("/campaigns/songkran-2027").text
    changes = page[
        page.index('id="changes"') : page.index("</section>", page.index('id="changes"'))
    ]
    assert changes.count('class="post-diff"') == 2
    # the one post whose text is kept is the first by time (a YouTube upload, 3 h ahead): the
    # two changed Facebook posts show by their content hash, not their text
    assert changes.count('<code translate="no">content_hash</code>') == 2
    assert '<code translate="no">link</code>' not in changes
    approver.close()


def test_a_form_made_from_a_file_that_is_not_yaml_is_refused_in_thai(
    editor: WebClient, engine: Engine
) -> None:
    page = editor.post(
        "/campaigns/compose", data={"base": "slug: [unclosed\n", "action": "apply", "name": "x"}
    )
    assert page.status_code == 422
    assert "อ่านไฟล์แคมเปญเป็น YAML ไม่ได้" in page.text
    with session_scope(engine) as session:
        assert session.scalars(select(Campaign)).first() is None
