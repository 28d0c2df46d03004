"""Signed tracking links: they verify, say what they were made for, and cannot be altered."""

from __future__ import annotations

import string

import pytest
from pydantic import SecretStr

from channels.tracking import PATHS, TrackingLinks, TrackingToken

BASE = "https://glo.example.org"
THAI_URL = "https://shop.example.org/สินค้า/ผ้าทอ?สี=คราม&n=1#รีวิว"


@pytest.fixture
def links() -> TrackingLinks:
    return TrackingLinks(BASE + "/", SecretStr("tracking-secret-for-tests"))


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_each_kind_verifies_to_what_it_was_made_for(links: TrackingLinks) -> None:
    opened = links.open_url(post_id=7, subscriber_id=12345)
    clicked = links.click_url(post_id=7, subscriber_id=12345, url=THAI_URL)
    unsubscribed = links.unsubscribe_url(post_id=7, subscriber_id=12345)

    assert opened.startswith(BASE + PATHS["open"])
    assert clicked.startswith(BASE + PATHS["click"])
    assert unsubscribed.startswith(BASE + PATHS["unsubscribe"])
    assert links.verify(token_of(opened)) == TrackingToken("open", 7, 12345)
    assert links.verify(token_of(clicked)) == TrackingToken("click", 7, 12345, THAI_URL)
    assert links.verify(token_of(unsubscribed)) == TrackingToken("unsubscribe", 7, 12345)


def test_tokens_are_short_and_url_safe(links: TrackingLinks) -> None:
    alphabet = set(string.ascii_letters + string.digits + "-_")
    for token in (
        links.token("open", post_id=2_000_000, subscriber_id=9_999_999),
        links.token("unsubscribe", post_id=2_000_000, subscriber_id=9_999_999),
        links.token("click", post_id=1, subscriber_id=1, url=THAI_URL),
    ):
        assert set(token) <= alphabet
    # 16 bytes of MAC and the two ids in hex: short enough for any mail client.
    assert len(links.token("open", post_id=2_000_000, subscriber_id=9_999_999)) <= 44


def test_every_single_character_change_is_refused(links: TrackingLinks) -> None:
    token = links.token("click", post_id=7, subscriber_id=12345, url="https://example.org/a")
    alphabet = string.ascii_letters + string.digits + "-_"
    for position, original in enumerate(token):
        for replacement in alphabet:
            if replacement == original:
                continue
            tampered = token[:position] + replacement + token[position + 1 :]
            assert links.verify(tampered) is None, (position, replacement)


def test_changed_target_or_ids_are_refused(links: TrackingLinks) -> None:
    """Re-using a signature with a different payload (another subscriber, another URL)."""
    import base64

    token = links.token("click", post_id=7, subscriber_id=12345, url="https://example.org/a")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    payload, mac = raw[:-16], raw[-16:]
    for forged_payload in (
        payload.replace(b"3039", b"3038"),  # subscriber 12345 -> 12344
        payload.replace(b"example.org/a", b"evil.example/a"),
        payload.replace(b"c:", b"u:", 1),
    ):
        assert forged_payload != payload
        forged = base64.urlsafe_b64encode(forged_payload + mac).rstrip(b"=").decode()
        assert links.verify(forged) is None


def test_another_secret_does_not_verify(links: TrackingLinks) -> None:
    other = TrackingLinks(BASE, SecretStr("some-other-secret"))
    token = other.token("unsubscribe", post_id=1, subscriber_id=2)
    assert other.verify(token) == TrackingToken("unsubscribe", 1, 2)
    assert links.verify(token) is None


@pytest.mark.parametrize(
    "garbage", ["", "a", "====", "not a token", "ก" * 40, "A" * 400, "-_" * 30, "..", "%00"]
)
def test_garbage_is_refused(links: TrackingLinks, garbage: str) -> None:
    assert links.verify(garbage) is None


def test_an_endpoint_accepts_only_its_own_kind(links: TrackingLinks) -> None:
    token = links.token("open", post_id=1, subscriber_id=2)
    assert links.verify(token, kind="open") == TrackingToken("open", 1, 2)
    assert links.verify(token, kind="unsubscribe") is None
    assert links.verify(token, kind="click") is None


def test_owns_recognises_only_its_own_links(links: TrackingLinks) -> None:
    assert links.owns(links.open_url(post_id=1, subscriber_id=2))
    assert links.owns(links.unsubscribe_url(post_id=1, subscriber_id=2))
    assert not links.owns(BASE + "/about")
    assert not links.owns("https://elsewhere.example.org/e/open/x")


def test_the_secret_never_shows(links: TrackingLinks) -> None:
    assert "tracking-secret-for-tests" not in repr(links)
    assert "tracking-secret-for-tests" not in links.open_url(post_id=1, subscriber_id=2)


def test_bad_configuration_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="MARKETING_PUBLIC_BASE_URL"):
        TrackingLinks("glo.example.org", SecretStr("x"))
    with pytest.raises(ValueError, match="MARKETING_TRACKING_SECRET"):
        TrackingLinks(BASE, SecretStr(""))
    links = TrackingLinks(BASE, SecretStr("x"))
    with pytest.raises(ValueError, match="click token needs the target url"):
        links.token("click", post_id=1, subscriber_id=2)
    with pytest.raises(ValueError, match="unknown tracking kind"):
        links.token("bounce", post_id=1, subscriber_id=2)  # type: ignore[arg-type]
