"""The email endpoints: open pixel, click redirect and one-click unsubscribe (RFC 8058), with
tokens signed as the email adapter signs them.  Forged tokens get 404 and record nothing; an
unsubscribe stops every later email to that person."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from channels.tracking import TrackingLinks
from marketing.db import session_scope
from marketing.email_delivery import prepare_deliveries, take_batch
from marketing.models import (
    CommunityPerformance,
    Delivery,
    EmailEvent,
    EmailEventKind,
    Post,
    Subscriber,
)
from marketing.settings import get_settings
from marketing.web import create_app
from tests.support.web import EMAIL_LINK, email_post, import_sample, subscribers_of

COMMUNITY = "nan-ban-doi-ngoen"
TARGET = EMAIL_LINK


@pytest.fixture
def setup(engine: Engine) -> tuple[int, list[int]]:
    import_sample(engine)
    return email_post(engine, community=COMMUNITY), subscribers_of(engine, COMMUNITY)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine=engine), follow_redirects=False) as http:
        yield http


def links() -> TrackingLinks:
    settings = get_settings()
    return TrackingLinks(settings.public_base_url, settings.tracking_secret)


def path_of(url: str) -> str:
    return url.removeprefix(links().base_url)


def events(engine: Engine) -> list[tuple[EmailEventKind, int, str | None]]:
    with session_scope(engine) as session:
        return [
            (e.kind, e.subscriber_id, e.url)
            for e in session.scalars(select(EmailEvent).order_by(EmailEvent.id))
        ]


def performance(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        row = session.execute(
            select(
                func.coalesce(func.sum(CommunityPerformance.opens), 0),
                func.coalesce(func.sum(CommunityPerformance.clicks), 0),
                func.coalesce(func.sum(CommunityPerformance.unsubscribes), 0),
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def test_the_open_pixel_records_an_open_and_is_never_cached(
    engine: Engine, client: TestClient, setup: tuple[int, list[int]]
) -> None:
    post_id, (first, *_rest) = setup
    answer = client.get(path_of(links().open_url(post_id=post_id, subscriber_id=first)))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/gif"
    gif = answer.content
    assert gif.startswith(b"GIF89a") and gif.endswith(b";")
    assert (int.from_bytes(gif[6:8], "little"), int.from_bytes(gif[8:10], "little")) == (1, 1)
    assert "no-store" in answer.headers["cache-control"]
    assert "set-cookie" not in answer.headers
    assert events(engine) == [(EmailEventKind.OPEN, first, None)]
    assert performance(engine) == (1, 0, 0)  # rolled up at once


def test_a_click_is_recorded_then_redirected_to_its_signed_target(
    engine: Engine, client: TestClient, setup: tuple[int, list[int]]
) -> None:
    post_id, (first, *_rest) = setup
    url = links().click_url(post_id=post_id, subscriber_id=first, url=TARGET)
    answer = client.get(path_of(url))
    assert answer.status_code == 302
    # Location is ASCII: the Thai path is percent-encoded (UTF-8), and means the same URL.
    assert unquote(answer.headers["location"]) == TARGET
    assert events(engine) == [(EmailEventKind.CLICK, first, TARGET)]
    assert performance(engine) == (0, 1, 0)


def test_forged_or_tampered_tokens_get_404_and_record_nothing(
    engine: Engine, client: TestClient, setup: tuple[int, list[int]]
) -> None:
    post_id, (first, *_rest) = setup
    forger = TrackingLinks(links().base_url, get_settings().web_secret)  # another key
    good = links()
    paths = [
        path_of(forger.open_url(post_id=post_id, subscriber_id=first)),
        path_of(forger.click_url(post_id=post_id, subscriber_id=first, url="https://evil.example")),
        path_of(forger.unsubscribe_url(post_id=post_id, subscriber_id=first)),
        # a token of another kind on each endpoint
        "/e/open/" + good.token("unsubscribe", post_id=post_id, subscriber_id=first),
        "/e/click/" + good.token("open", post_id=post_id, subscriber_id=first),
        "/e/unsubscribe/" + good.token("click", post_id=post_id, subscriber_id=first, url=TARGET),
        # signed, but for a post and a subscriber that do not exist
        path_of(good.open_url(post_id=999_999, subscriber_id=first)),
        path_of(good.unsubscribe_url(post_id=post_id, subscriber_id=888_888)),
        "/e/open/not-a-token",
        "/e/click/" + "A" * 5000,
    ]
    token = good.token("click", post_id=post_id, subscriber_id=first, url=TARGET)
    flipped = token[:-3] + ("B" if token[-3] != "B" else "C") + token[-2:]
    paths.append("/e/click/" + flipped)
    for path in paths:
        assert client.get(path).status_code == 404, path
        if path.startswith("/e/unsubscribe/"):
            answer = client.post(path, data={"List-Unsubscribe": "One-Click"})
            assert answer.status_code == 404, path
    assert events(engine) == []
    with session_scope(engine) as session:
        assert (
            session.scalar(select(func.count()).where(Subscriber.unsubscribed_at.is_not(None))) == 0
        )


def test_unsubscribe_asks_on_get_and_acts_on_post_without_redirect_or_cookie(
    engine: Engine, client: TestClient, setup: tuple[int, list[int]]
) -> None:
    post_id, (first, *_rest) = setup
    path = path_of(links().unsubscribe_url(post_id=post_id, subscriber_id=first))
    page = client.get(path)
    assert page.status_code == 200
    assert "ยกเลิกรับข่าวสารจากชุมชนนี้หรือไม่?" in page.text  # a Thai confirmation
    assert "ชุมชนผ้าทอบ้านดอยเงิน" in page.text
    assert f'action="{path}"' in page.text and 'method="post"' in page.text
    assert "set-cookie" not in page.headers
    assert events(engine) == []  # a GET (a link scanner) changes nothing

    # What a mail client sends for one-click unsubscribe (RFC 8058 section 3.2).
    answer = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert "location" not in answer.headers and "set-cookie" not in answer.headers
    assert "ยกเลิกรับข่าวสารเรียบร้อยแล้ว" in answer.text
    # Again (the page's own button, a multipart body): still 200, counted once.
    assert client.post(path, files={"x": ("a", b"b")}).status_code == 200
    assert events(engine) == [(EmailEventKind.UNSUBSCRIBE, first, None)]
    assert performance(engine) == (0, 0, 1)
    with session_scope(engine) as session:
        assert session.get(Subscriber, first).unsubscribed_at is not None  # type: ignore[union-attr]


def test_unsubscribe_stops_every_later_email_to_that_subscriber(
    engine: Engine, client: TestClient, setup: tuple[int, list[int]]
) -> None:
    post_id, subscribers = setup
    leaving, staying = subscribers[0], subscribers[1:]
    assert staying
    # An email already being prepared for them (its deliveries exist) ...
    with session_scope(engine) as session:
        content = session.get(Post, post_id).content  # type: ignore[union-attr]
    community_id = _community_id(engine, post_id)
    preparing = email_post(engine, community=COMMUNITY, sent=False)
    prepare_deliveries(engine=engine, post_id=preparing, community_id=community_id, content=content)
    # (they unsubscribe through the email they were sent)
    path = path_of(links().unsubscribe_url(post_id=post_id, subscriber_id=leaving))
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    # ... skips them when its batch is taken,
    batch = take_batch(engine=engine, post_id=preparing, size=100)
    assert {o.recipient.subscriber_id for o in batch} == set(staying)
    # and a later email post makes no delivery for them at all.
    later = email_post(engine, community=COMMUNITY, sent=False)
    prepare_deliveries(engine=engine, post_id=later, community_id=community_id, content=content)
    with session_scope(engine) as session:
        recipients = set(
            session.scalars(select(Delivery.subscriber_id).where(Delivery.post_id == later))
        )
    assert recipients == set(staying)


def _community_id(engine: Engine, post_id: int) -> int:
    with session_scope(engine) as session:
        post = session.get(Post, post_id)
        assert post is not None
        return post.community_id
