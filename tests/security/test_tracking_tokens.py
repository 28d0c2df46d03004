"""Issue #12, item 3: a tracking token is honoured only for a subscriber who was in fact sent
the post, and a click redirects only to one of the post's own links.  The attacker here knows
the tracking secret (the development one is in the source), so every token is validly signed:
what stops them is the delivery record and the post's content."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update

from channels.email import EmailAdapter, Recipient, merge_slot
from channels.tracking import TrackingLinks
from marketing.db import session_scope
from marketing.models import Delivery, DeliveryState, EmailEvent, Post, Subscriber
from marketing.settings import get_settings
from marketing.web import create_app
from tests.support.web import EMAIL_LINK, email_post, import_sample, subscribers_of

COMMUNITY = "nan-ban-doi-ngoen"
OTHER = "phrae-ban-thung-khram"
CLICK = re.compile(r'href="(http://127\.0\.0\.1:8000/e/click/[^"]+)"')


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    import_sample(engine)
    with TestClient(create_app(engine=engine), follow_redirects=False) as http:
        yield http


def forger() -> TrackingLinks:
    settings = get_settings()  # the development secret: anyone can sign with it
    return TrackingLinks(settings.public_base_url, settings.tracking_secret)


def path_of(url: str) -> str:
    return url.removeprefix(forger().base_url)


def recorded(engine: Engine) -> tuple[int, int]:
    with session_scope(engine) as session:
        events = session.scalar(select(func.count()).select_from(EmailEvent))
        gone = session.scalar(select(func.count()).where(Subscriber.unsubscribed_at.is_not(None)))
    return int(events or 0), int(gone or 0)


def test_a_forged_click_for_a_real_recipient_never_redirects_outside_the_post(
    engine: Engine, client: TestClient
) -> None:
    post_id = email_post(engine, community=COMMUNITY)
    first = subscribers_of(engine, COMMUNITY)[0]
    for outside in ("https://evil.example/login", EMAIL_LINK + "&x=1", "https://example.org/"):
        url = forger().click_url(post_id=post_id, subscriber_id=first, url=outside)
        answer = client.get(path_of(url))
        assert answer.status_code == 404, outside
        assert "location" not in answer.headers
    assert recorded(engine) == (0, 0)
    # The post's own link still works for the person it was sent to.
    url = forger().click_url(post_id=post_id, subscriber_id=first, url=EMAIL_LINK)
    answer = client.get(path_of(url))
    assert answer.status_code == 302 and unquote(answer.headers["location"]) == EMAIL_LINK


def test_three_forged_unsubscribes_of_people_never_sent_the_post_change_nothing(
    engine: Engine, client: TestClient
) -> None:
    post_id = email_post(engine, community=COMMUNITY)  # sent to COMMUNITY only
    outsiders = subscribers_of(engine, OTHER)[:3]
    assert len(outsiders) == 3
    for subscriber_id in outsiders:
        path = path_of(forger().unsubscribe_url(post_id=post_id, subscriber_id=subscriber_id))
        assert client.get(path).status_code == 404
        assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert recorded(engine) == (0, 0)


def test_tokens_of_a_post_not_yet_sent_or_refused_by_the_relay_record_nothing(
    engine: Engine, client: TestClient
) -> None:
    unsent = email_post(engine, community=COMMUNITY, sent=False)
    refused = email_post(engine, community=COMMUNITY)
    first = subscribers_of(engine, COMMUNITY)[0]
    with session_scope(engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.post_id == refused, Delivery.subscriber_id == first)
            .values(state=DeliveryState.FAILED)
        )
    for post_id in (unsent, refused):
        links = forger()
        paths = [
            path_of(links.open_url(post_id=post_id, subscriber_id=first)),
            path_of(links.click_url(post_id=post_id, subscriber_id=first, url=EMAIL_LINK)),
            path_of(links.unsubscribe_url(post_id=post_id, subscriber_id=first)),
        ]
        for path in paths:
            assert client.get(path).status_code == 404, path
        assert client.post(paths[2], data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert recorded(engine) == (0, 0)


def test_every_click_link_the_adapter_writes_is_honoured_merge_fields_included(
    engine: Engine, client: TestClient
) -> None:
    post_id = email_post(engine, community=COMMUNITY)
    personal = f"https://example.org/form?email={merge_slot('email')}&n={merge_slot('name')}"
    html = f'<p><a href="{EMAIL_LINK}">ผ้าทอ</a> <a href=" {personal} ">ลงทะเบียน</a></p>'
    with session_scope(engine) as session:
        post = session.get(Post, post_id)
        assert post is not None
        post.content = {"subject": "ข่าว", "html": html}
        subscriber = session.get(Subscriber, subscribers_of(engine, COMMUNITY)[0])
        assert subscriber is not None
        recipient = Recipient(subscriber.id, subscriber.email, subscriber.name)
    adapter = EmailAdapter(
        host="127.0.0.1", port=25, links=forger(), unsubscribe_mailto="optout@example.org"
    )
    built = adapter.render(
        {"subject": "ข่าว", "html": html},
        recipient,
        post_id=post_id,
        marker="m",
        sender_address="news@example.org",
    )
    message = email.message_from_bytes(built.wire, policy=default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("html",))
    assert body is not None
    clicks = CLICK.findall(body.get_content())
    assert len(clicks) == 2
    targets = []
    for click in clicks:
        answer = client.get(path_of(click.replace("&amp;", "&")))
        assert answer.status_code == 302, click
        targets.append(unquote(answer.headers["location"]))
    assert targets[0] == EMAIL_LINK
    assert targets[1].startswith("https://example.org/form?email=") and recipient.name in targets[1]
    # The same personal link signed for another subscriber's address is refused.
    other = personal.replace(merge_slot("email"), "someone@example.org").replace(
        merge_slot("name"), recipient.name
    )
    forged = forger().click_url(post_id=post_id, subscriber_id=recipient.subscriber_id, url=other)
    assert client.get(path_of(forged)).status_code == 404
