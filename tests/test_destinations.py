"""Destination links (#17): a community's shop, booking and product pages, reached through a
signed short link on our domain that redirects only to a registered destination and counts
people's clicks per day, destination and channel (link previews left out); the clicks shown
as a figure of their own on the community page and the yearly programme report (and its
CSV), never mixed into engagement."""

from __future__ import annotations

import csv
import io
import re
import string
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from channels.tracking import GO_PATH, GoToken, TrackingLinks
from marketing.cli.communities import SAMPLE
from marketing.destinations import (
    DestinationRefused,
    clicks_by_community,
    clicks_by_destination,
    is_preview,
    set_destination,
)
from marketing.models import (
    Community,
    CommunityDestination,
    DestinationClickDay,
    DestinationKind,
    Role,
)
from marketing.reference import import_reference
from marketing.settings import get_settings
from marketing.web import create_app
from tests.support.web import WebClient, add_user, clock_at, served
from tests.test_web_browser import browser  # noqa: F401  (the module's Chromium, reused)
from tests.test_web_phone import Walker

BASE = "https://glo.example.org"
SHOP = "https://shop.example.org/ผ้าทอ?สี=คราม"
# 23:30 UTC on 31 January is already 1 February in Bangkok: the click counts on the 1st.
LATE = datetime(2027, 1, 31, 23, 30, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126 Mobile Safari/537.36"
PREVIEWS = (
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "facebookexternalhit/1.1;line-poker/1.0",
    "Facebot",
    "Twitterbot/1.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "",
)


@pytest.fixture
def links() -> TrackingLinks:
    return TrackingLinks(BASE, SecretStr("tracking-secret-for-tests"))


def test_a_destination_token_says_what_it_was_made_for_and_nothing_else(
    links: TrackingLinks,
) -> None:
    url = links.go_url(
        community_id=3, destination_id=12, channel="line", post_id=77, campaign="songkran-2027"
    )
    assert url.startswith(BASE + GO_PATH)
    token = url.rsplit("/", 1)[-1]
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert links.verify_go(token) == GoToken(3, 12, "line", 77, "songkran-2027")
    # Not an e-mail token, and an e-mail token is not a destination token.
    assert links.verify(token) is None
    email = links.token("click", post_id=1, subscriber_id=1, url=SHOP)
    assert links.verify_go(email) is None
    # Another secret's token is refused.
    other = TrackingLinks(BASE, SecretStr("another-secret"))
    mine = links.go_token(community_id=3, destination_id=12, channel="line")
    theirs = other.go_token(community_id=3, destination_id=12, channel="line")
    assert links.verify_go(mine) is not None and links.verify_go(theirs) is None
    with pytest.raises(ValueError):
        links.go_token(community_id=3, destination_id=12, channel="Line:1")


def test_every_single_character_change_is_refused(links: TrackingLinks) -> None:
    token = links.go_token(community_id=3, destination_id=12, channel="facebook", campaign="c")
    alphabet = string.ascii_letters + string.digits + "-_"
    for position, original in enumerate(token):
        for replacement in alphabet:
            if replacement != original:
                changed = token[:position] + replacement + token[position + 1 :]
                assert links.verify_go(changed) is None, (position, replacement)
    assert links.verify_go(token[:-1]) is None
    assert links.verify_go(token + "A") is None


def test_link_previews_and_robots_are_not_people() -> None:
    for agent in PREVIEWS:
        assert is_preview(agent), agent
    assert not is_preview(BROWSER)
    assert not is_preview("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Line/14.9.0")


@pytest.fixture
def sample(session: Session) -> Session:
    import_reference(session=session, path=SAMPLE)
    session.commit()
    return session


def _community(session: Session, slug: str = "nan-ban-doi-ngoen") -> Community:
    return session.scalars(select(Community).where(Community.slug == slug)).one()


def test_only_web_addresses_are_destinations(sample: Session) -> None:
    nan = _community(sample)
    for bad in ("javascript:alert(1)", "//evil.example", "ftp://x.example/a", "https://", "x y"):
        with pytest.raises(DestinationRefused):
            set_destination(
                session=sample, community=nan, kind=DestinationKind.SHOP, url=bad, label_th="ร้าน"
            )
    shop = set_destination(
        session=sample, community=nan, kind=DestinationKind.SHOP, url=SHOP, label_th=" ร้าน  ผ้า "
    )
    again = set_destination(
        session=sample,
        community=nan,
        kind=DestinationKind.SHOP,
        url="https://shop.example.org/new",
        label_th="ร้านผ้า",
    )
    assert again.id == shop.id and again.label_th == "ร้านผ้า"  # one of each kind


def _go(client: WebClient, token: str, agent: str = BROWSER) -> Any:
    return client.get(f"/go/{token}", headers={"user-agent": agent})


def test_the_redirect_goes_only_to_the_registered_destination_and_counts_people(
    sample: Session, engine: Engine
) -> None:
    nan, phrae = _community(sample), _community(sample, "phrae-ban-thung-khram")
    shop = set_destination(
        session=sample, community=nan, kind=DestinationKind.SHOP, url=SHOP, label_th="ร้านผ้าทอ"
    )
    stay = set_destination(
        session=sample,
        community=phrae,
        kind=DestinationKind.BOOKING,
        url="https://stay.example.org/phrae",
        label_th="จองที่พัก",
    )
    sample.commit()
    links = TrackingLinks(get_settings().public_base_url, get_settings().tracking_secret)
    client = WebClient(create_app(engine=engine, clock=clock_at(LATE)))
    token = links.go_token(
        community_id=nan.id, destination_id=shop.id, channel="line", campaign="songkran-2027"
    )
    answer = _go(client, token)
    assert answer.status_code == 302
    target = urlsplit(answer.headers["location"])
    assert (target.scheme, target.netloc) == ("https", "shop.example.org")
    query = parse_qs(target.query)
    assert query["utm_source"] == ["line"] and query["utm_campaign"] == ["songkran-2027"]
    assert query["utm_content"] == ["nan-ban-doi-ngoen"] and query["สี"] == ["คราม"]
    assert answer.headers["cache-control"].startswith("no-store")
    _go(client, token)
    for agent in PREVIEWS:  # redirected, not counted
        assert _go(client, token, agent).status_code == 302
    checked = client.http.head(f"/go/{token}", headers={"user-agent": BROWSER})
    assert checked.status_code == 302  # a link checker's HEAD: redirected, not counted
    # A forged or altered token, another community's destination, an unknown channel: 404.
    forged = TrackingLinks(BASE, SecretStr("guessed")).go_token(
        community_id=nan.id, destination_id=shop.id, channel="line"
    )
    wrong_community = links.go_token(
        community_id=nan.id, destination_id=stay.id, channel="facebook"
    )
    unknown_channel = links.go_token(community_id=nan.id, destination_id=shop.id, channel="myspace")
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (forged, wrong_community, unknown_channel, altered, "x" * 5000, "%2F%2Fevil"):
        refused = _go(client, bad)
        assert refused.status_code == 404, bad
        assert "location" not in refused.headers
    # The address changed later: the old link leads to the new registered address only.
    shop.url = "https://newshop.example.org/ร้าน"
    sample.commit()
    moved = _go(client, token)
    assert urlsplit(moved.headers["location"]).netloc == "newshop.example.org"
    # Removed: the link stops.
    sample.delete(stay)
    sample.commit()
    gone = links.go_token(community_id=phrae.id, destination_id=stay.id, channel="facebook")
    assert _go(client, gone).status_code == 404

    sample.expire_all()
    rows = sample.execute(
        select(DestinationClickDay.day, DestinationClickDay.channel, DestinationClickDay.clicks)
    ).all()
    assert rows == [(date(2027, 2, 1), "line", 3)]  # one counter row, Bangkok's day
    assert clicks_by_community(session=sample, start=date(2027, 1, 1), end=date(2027, 12, 31)) == {
        nan.id: 3
    }
    assert clicks_by_community(session=sample, start=date(2027, 1, 1), end=date(2027, 1, 31)) == {}
    [only] = clicks_by_destination(
        session=sample, community_id=nan.id, start=date(2027, 2, 1), end=date(2027, 2, 1)
    )
    assert (only.destination.kind, only.by_channel, only.total) == ("shop", {"line": 3}, 3)


def test_many_clicks_add_to_one_row_and_repeats_from_one_address_stop_counting(
    sample: Session, engine: Engine
) -> None:
    nan = _community(sample)
    shop = set_destination(
        session=sample, community=nan, kind=DestinationKind.SHOP, url=SHOP, label_th="ร้าน"
    )
    sample.commit()
    links = TrackingLinks(get_settings().public_base_url, get_settings().tracking_secret)
    moments = [LATE]
    client = WebClient(create_app(engine=engine, clock=lambda: moments[-1]))
    for channel in ("facebook", "email"):
        token = links.go_token(community_id=nan.id, destination_id=shop.id, channel=channel)
        for _ in range(25):  # every one redirected; ten counted (REPEATS)
            assert _go(client, token).status_code == 302
    assert sample.scalar(select(func.count()).select_from(DestinationClickDay)) == 2
    assert sample.scalar(select(func.sum(DestinationClickDay.clicks))) == 20
    # Another phone behind the same address (a carrier's NAT) is counted.
    other_phone = BROWSER.replace("Android 14", "Android 13")
    token = links.go_token(community_id=nan.id, destination_id=shop.id, channel="email")
    assert _go(client, token, other_phone).status_code == 302
    sample.rollback()
    assert sample.scalar(select(func.sum(DestinationClickDay.clicks))) == 21
    moments.append(LATE + timedelta(hours=1))  # the next hour (same Bangkok day)
    token = links.go_token(community_id=nan.id, destination_id=shop.id, channel="facebook")
    for _ in range(3):
        _go(client, token)
    sample.rollback()
    assert sample.scalar(select(func.sum(DestinationClickDay.clicks))) == 24
    assert sample.scalar(select(func.count()).select_from(DestinationClickDay)) == 2
    assert sample.scalar(select(func.count()).select_from(CommunityDestination)) == 1


def _set_on_the_page(editor: WebClient, kind: str, url: str, label: str) -> Any:
    return editor.post(
        "/communities/nan-ban-doi-ngoen/destinations",
        {"kind": kind, "url": url, "label_th": label},
    )


def _click_as_people(engine: Engine, session: Session, clicks: dict[str, int]) -> None:
    """People's clicks on the nan shop's link from each channel, at LATE."""
    nan = _community(session)
    shop = session.scalars(
        select(CommunityDestination).where(CommunityDestination.community_id == nan.id)
    ).one()
    links = TrackingLinks(get_settings().public_base_url, get_settings().tracking_secret)
    client = WebClient(create_app(engine=engine, clock=clock_at(LATE)))
    for channel, n in clicks.items():
        token = links.go_token(community_id=nan.id, destination_id=shop.id, channel=channel)
        for _ in range(n):
            assert _go(client, token).status_code == 302


def test_editors_set_pages_on_the_community_page_and_see_the_clicks(
    sample: Session, engine: Engine
) -> None:
    add_user(engine, "malee", Role.EDITOR)
    add_user(engine, "somchai", Role.VIEWER)
    # A day in the community page's default period (the last weeks before the clock).
    at = datetime(2027, 2, 10, 5, 0, tzinfo=UTC)
    editor = WebClient(create_app(engine=engine, clock=clock_at(at))).sign_in("malee")
    editor.refresh_csrf("/communities/nan-ban-doi-ngoen")
    refused = _set_on_the_page(editor, "shop", "javascript:alert(1)//x", "ร้าน")
    assert refused.status_code == 303
    page = editor.get("/communities/nan-ban-doi-ngoen").text
    assert "ใส่ที่อยู่เว็บของหน้าให้ครบ ขึ้นต้นด้วย https://" in page
    assert _set_on_the_page(editor, "shop", SHOP, "ร้านผ้าทอดอยเงิน").status_code == 303
    assert _set_on_the_page(editor, "kiosk", SHOP, "ร้าน").status_code == 400  # no such kind
    sample.rollback()
    assert [(d.kind, d.label_th) for d in sample.scalars(select(CommunityDestination))] == [
        (DestinationKind.SHOP, "ร้านผ้าทอดอยเงิน")
    ]
    _click_as_people(engine, sample, {"facebook": 2, "line": 1})
    page = editor.get("/communities/nan-ban-doi-ngoen").text
    assert "หน้าร้าน หน้าจองที่พัก และหน้าสินค้า" in page
    assert "คลิกไปยังร้าน/จองที่พัก/สินค้า" in page
    assert 'id="destination-clicks">3<' in page
    assert "ร้านผ้าทอดอยเงิน" in page and "ร้านค้า" in page
    viewer = WebClient(create_app(engine=engine, clock=clock_at(at))).sign_in("somchai")
    seen = viewer.get("/communities/nan-ban-doi-ngoen").text
    assert 'id="destination-set"' not in seen and 'id="destination-clicks">3<' in seen
    viewer.refresh_csrf("/communities/nan-ban-doi-ngoen")
    assert _set_on_the_page(viewer, "booking", SHOP, "จอง").status_code == 403
    # Removed: gone from the page, and its link leads nowhere.
    removed = editor.post("/communities/nan-ban-doi-ngoen/destinations/shop/remove")
    assert removed.status_code == 303
    sample.rollback()
    assert sample.scalar(select(func.count()).select_from(CommunityDestination)) == 0
    assert "ยังไม่มีหน้าร้าน หน้าจองที่พัก หรือหน้าสินค้า" in editor.get("/communities/nan-ban-doi-ngoen").text


def test_the_yearly_report_and_its_csv_carry_the_clicks_beside_the_outcomes(
    sample: Session, engine: Engine
) -> None:
    nan = _community(sample)
    set_destination(
        session=sample, community=nan, kind=DestinationKind.SHOP, url=SHOP, label_th="ร้าน"
    )
    sample.commit()
    _click_as_people(engine, sample, {"facebook": 4, "email": 3})
    add_user(engine, "malee", Role.VIEWER)
    client = WebClient(create_app(engine=engine, clock=clock_at(LATE))).sign_in("malee")
    page = client.get("/reports/year/2570").text
    assert "คลิกไปยังร้าน/จองที่พัก/สินค้า" in page
    assert "ไม่นับรวมในการมีส่วนร่วม" in page
    answer = client.get("/reports/year/2570?format=csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")  # spreadsheets read the Thai
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == 10
    by_slug = {row["community"]: row for row in rows}
    assert by_slug["nan-ban-doi-ngoen"]["destination_clicks"] == "7"
    assert by_slug["nan-ban-doi-ngoen"]["interactions"] == "0"  # clicks are not engagement
    assert by_slug["phrae-ban-thung-khram"]["destination_clicks"] == "0"
    assert by_slug["nan-ban-doi-ngoen"]["sales"] == ""  # not reported: empty, not zero
    assert client.get("/reports/year/2569?format=csv").content.count(b"\r\n") == 11
    other = list(
        csv.DictReader(
            io.StringIO(client.get("/reports/year/2569?format=csv").content.decode("utf-8-sig"))
        )
    )
    assert {row["destination_clicks"] for row in other} == {"0"}  # 2026: before the clicks
    assert client.get("/reports/year/2570?format=pdf").status_code in (400, 422)
    # The kept table (#19) follows new clicks without a rollup.
    total = re.compile(r'<tr class="total">.*?<td class="num clicks"[^>]*>([\d,]+)<', re.S)
    assert total.findall(client.get("/reports/year/2570").text) == ["7"]
    _click_as_people(engine, sample, {"line": 2})
    assert total.findall(client.get("/reports/year/2570").text) == ["9"]


def test_the_pages_fit_desktop_and_phone_in_thai(
    browser: Any,  # noqa: F811
    sample: Session,
    engine: Engine,
) -> None:
    nan = _community(sample)
    set_destination(
        session=sample,
        community=nan,
        kind=DestinationKind.BOOKING,
        url="https://stay.example.org/จองที่พัก/บ้านดอยเงิน/ห้องพักริมน้ำน่านสำหรับครอบครัว?from=glo",
        label_th="จองโฮมสเตย์บ้านดอยเงิน",
    )
    sample.commit()
    _click_as_people(engine, sample, {"facebook": 5, "line": 2, "email": 1})
    add_user(engine, "admin", Role.ADMIN)
    with served(engine, clock=clock_at(datetime(2027, 2, 10, 5, 0, tzinfo=UTC))) as server:
        walker = Walker(browser, server.url, photos=True)
        walker.sign_in()
        walker.check("community-destinations", "/communities/nan-ban-doi-ngoen")
        walker.check("report-year-clicks", "/reports/year/2570")
        assert walker.problems == []
        for page, _size in walker.tabs:
            page.goto(server.url + "/communities/nan-ban-doi-ngoen", wait_until="load")
            section = page.locator("#destinations").inner_text()
            assert "คลิกไปยังร้าน/จองที่พัก/สินค้า" in section and "จองโฮมสเตย์บ้านดอยเงิน" in section
            assert page.locator("#destination-clicks").inner_text() == "8"
            page.goto(server.url + "/reports/year/2570", wait_until="load")
            assert page.locator("table.year-report td.clicks").first.is_visible()
            totals = page.locator("table.year-report tr.total td.clicks").inner_text()
            assert totals == "8"


CAMPAIGN = """\
slug: weaving-week
name: สัปดาห์ผ้าทอ
window:
  start: 2027-03-01
  end: 2027-03-07
communities: [nan-ban-doi-ngoen, phrae-ban-thung-khram]
channels:
  facebook:
    account: community
    message: "ผ้าทอมือ สั่งซื้อที่ {{ destination('shop') }}"
schedule:
  at: [2027-03-05T19:00:00+07:00]
"""


def test_templates_write_the_counted_link_and_name_a_community_without_one(
    sample: Session, engine: Engine, tmp_path: Any
) -> None:
    from campaigns import plan_file
    from marketing.problems import InvalidInput

    nan, phrae = _community(sample), _community(sample, "phrae-ban-thung-khram")
    shop = set_destination(
        session=sample, community=nan, kind=DestinationKind.SHOP, url=SHOP, label_th="ร้าน"
    )
    sample.commit()
    path = tmp_path / "weaving.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    now = datetime(2027, 2, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput) as caught:
        plan_file(session=sample, path=path, now=now)
    [problem] = caught.value.problems
    assert "phrae-ban-thung-khram has no 'shop' page" in problem.message
    set_destination(
        session=sample,
        community=phrae,
        kind=DestinationKind.SHOP,
        url="https://phrae.example.org/",
        label_th="ร้านแพร่",
    )
    sample.commit()
    plan = plan_file(session=sample, path=path, now=now)
    by_slug = {p.community_slug: p.content["message"] for p in plan.posts}
    link = by_slug["nan-ban-doi-ngoen"].split(" ")[-1]
    settings = get_settings()
    assert link.startswith(settings.public_base_url + GO_PATH)
    links = TrackingLinks(settings.public_base_url, settings.tracking_secret)
    assert links.verify_go(link.rsplit("/", 1)[-1]) == GoToken(
        nan.id, shop.id, "facebook", 0, "weaving-week"
    )
    # The link leads to the shop with the post's UTM parameters.
    client = WebClient(create_app(engine=engine, clock=clock_at(LATE)))
    target = _go(client, link.rsplit("/", 1)[-1]).headers["location"]
    assert parse_qs(urlsplit(target).query)["utm_campaign"] == ["weaving-week"]
    assert SHOP.split("?")[0] not in by_slug["nan-ban-doi-ngoen"]  # never the bare address


def test_a_template_calling_only_tracked_renders_for_each_community(
    sample: Session, tmp_path: Any
) -> None:
    """tracked() reads the community from the context: a template with no other name in it
    was rendered once and its first community's link reused for the others."""
    from campaigns import plan_file

    path = tmp_path / "tracked.yaml"
    path.write_text(
        CAMPAIGN.replace("{{ destination('shop') }}", "{{ tracked('https://example.org/x') }}"),
        encoding="utf-8",
    )
    plan = plan_file(session=sample, path=path, now=datetime(2027, 2, 1, tzinfo=UTC))
    contents = {
        p.community_slug: parse_qs(urlsplit(p.content["message"].split(" ")[-1]).query)[
            "utm_content"
        ]
        for p in plan.posts
    }
    assert contents == {
        "nan-ban-doi-ngoen": ["nan-ban-doi-ngoen"],
        "phrae-ban-thung-khram": ["phrae-ban-thung-khram"],
    }


def test_the_communities_file_sets_destinations_and_refuses_bad_ones(
    sample: Session, tmp_path: Any
) -> None:
    from marketing.problems import InvalidInput

    text = """\
communities:
- slug: nan-ban-doi-ngoen
  name_th: ชุมชนผ้าทอบ้านดอยเงิน
  name_en: Ban Doi Ngoen Weaving Community
  province: น่าน
  destinations:
  - kind: shop
    url: https://shop.example.org/nan
    label_th: ร้านผ้าทอ
  - kind: booking
    url: https://stay.example.org/nan
    label_th: จองโฮมสเตย์
"""
    good = tmp_path / "good.yaml"
    good.write_text(text, encoding="utf-8")
    summary = import_reference(session=sample, path=good)
    sample.commit()
    assert summary.counts["destinations"]["created"] == 2
    assert import_reference(session=sample, path=good).counts["destinations"]["unchanged"] == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        text.replace("https://stay.example.org/nan", "javascript:alert(1)").replace(
            "kind: booking", "kind: shop"
        ),
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as caught:
        import_reference(session=sample, path=bad)
    assert any("destinations" in p.field for p in caught.value.problems)
    sample.rollback()
    pages = {
        d.kind.value: d.url
        for d in sample.scalars(select(CommunityDestination).order_by(CommunityDestination.kind))
    }
    assert pages == {
        "shop": "https://shop.example.org/nan",
        "booking": "https://stay.example.org/nan",
    }


def test_the_pages_are_all_thai_in_thai_and_all_english_in_english(
    sample: Session, engine: Engine
) -> None:
    """The language walk's own reading of visible text, on the two pages this adds to (the
    full walk needs ffprobe for its media library items)."""
    from tests.test_web_language_walk import data_texts, english_words, thai_left, visible_text

    nan = _community(sample)
    set_destination(
        session=sample, community=nan, kind=DestinationKind.SHOP, url=SHOP, label_th="ร้านผ้าทอ"
    )
    sample.commit()
    _click_as_people(engine, sample, {"facebook": 2, "line": 1})
    add_user(engine, "malee", Role.EDITOR)
    add_user(engine, "john", Role.EDITOR, language="en")
    words, strings = data_texts(engine)
    words |= {"ร้านผ้าทอ"}
    strings = sorted([*strings, "ร้านผ้าทอ"], key=len, reverse=True)
    at = clock_at(datetime(2027, 2, 10, 5, 0, tzinfo=UTC))
    thai = WebClient(create_app(engine=engine, clock=at)).sign_in("malee")
    english = WebClient(create_app(engine=engine, clock=at)).sign_in("john")
    for path in ("/communities/nan-ban-doi-ngoen", "/reports/year/2570"):
        chunks = visible_text(thai.get(path).text)
        assert [w for c in chunks for w in english_words(c, words)] == [], path
        chunks = visible_text(english.get(path).text)
        assert [t for c in chunks for t in thai_left(c, strings)] == [], path


def test_the_community_report_carries_the_clicks_by_channel(
    sample: Session, engine: Engine
) -> None:
    nan = _community(sample)
    set_destination(
        session=sample, community=nan, kind=DestinationKind.SHOP, url=SHOP, label_th="ร้าน"
    )
    sample.commit()
    _click_as_people(engine, sample, {"facebook": 4, "line": 2})
    add_user(engine, "malee", Role.VIEWER)
    client = WebClient(create_app(engine=engine, clock=clock_at(LATE))).sign_in("malee")
    query = "from=2027-02-01&to=2027-02-28"
    answer = client.get(f"/reports/community/nan-ban-doi-ngoen?{query}&format=csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    clicks = {row["channel"]: row["destination_clicks"] for row in rows}
    assert clicks["facebook"] == "4" and clicks["line"] == "2" and clicks["all"] == "6"
    assert clicks["email"] == "0"
    # Engagement is untouched by the clicks: no post, no interaction.
    assert {row["interactions"] for row in rows} == {"0"}
    html = client.get(f"/reports/community/nan-ban-doi-ngoen?{query}").text
    assert "คลิกไปยังร้าน/จองที่พัก/สินค้า:</strong> 6 (เฟซบุ๊ก 4, ไลน์ 2)" in html
    before = client.get(
        "/reports/community/nan-ban-doi-ngoen?from=2027-01-01&to=2027-01-31&format=json"
    ).json()
    assert before["destination_clicks"] == {}
