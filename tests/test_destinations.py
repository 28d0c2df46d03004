"""Destination links (#17): a community's shop, booking and product pages, reached through a
signed short link on our domain that redirects only to a registered destination and counts
people's clicks per day, destination and channel (link previews left out); the clicks shown
as a figure of their own on the community page and the yearly programme report (and its
CSV), never mixed into engagement."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime
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
)
from marketing.reference import import_reference
from marketing.settings import get_settings
from marketing.web import create_app
from tests.support.web import WebClient, clock_at

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


def test_many_clicks_add_to_one_row(sample: Session, engine: Engine) -> None:
    nan = _community(sample)
    shop = set_destination(
        session=sample, community=nan, kind=DestinationKind.SHOP, url=SHOP, label_th="ร้าน"
    )
    sample.commit()
    links = TrackingLinks(get_settings().public_base_url, get_settings().tracking_secret)
    client = WebClient(create_app(engine=engine, clock=clock_at(LATE)))
    for channel in ("facebook", "email"):
        token = links.go_token(community_id=nan.id, destination_id=shop.id, channel=channel)
        for _ in range(25):
            assert _go(client, token).status_code == 302
    assert sample.scalar(select(func.count()).select_from(DestinationClickDay)) == 2
    assert sample.scalar(select(func.sum(DestinationClickDay.clicks))) == 50
    assert sample.scalar(select(func.count()).select_from(CommunityDestination)) == 1
