"""The composer (#14): a campaign file as a form that writes back only what was edited
(comments and order kept), checked with the same rules and words as ``marketing campaign
validate``, the quick single post, and previews of posts as their channels will show them."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
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
    assert 'class="fb-card"' in page.text and 'class="yt-card"' in page.text
    assert 'iframe class="email"' in page.text
    with session_scope(engine) as session:
        assert session.scalars(select(Campaign)).first() is None  # checking stores nothing
