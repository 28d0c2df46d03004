"""Signed links for campaign email: the open pixel, click redirects and one-click unsubscribe.

Every link carries one *token*: what happened (``open``, ``click``, ``unsubscribe``), for which
post and subscriber, and for a click the target URL, followed by a truncated HMAC-SHA256 of
all of that under the service's tracking secret.  A token is URL-safe base64 without padding
(about 35 characters for an open or unsubscribe link), needs no database row to be issued,
and cannot be forged or altered without the secret: :meth:`TrackingLinks.verify` returns
``None`` for anything it did not sign.

The web app's endpoints call :meth:`TrackingLinks.verify` on the last path segment:

===============  ==============================  ===================================
kind             path under ``base_url``          what the endpoint does
===============  ==============================  ===================================
``open``         ``/e/open/<token>``              answer a 1x1 GIF with no-cache headers
``click``        ``/e/click/<token>``             record the click, redirect to ``url``
``unsubscribe``  ``/e/unsubscribe/<token>``       GET: a confirmation page (link scanners
                                                  prefetch GETs); POST: unsubscribe,
                                                  without redirecting (RFC 8058)
===============  ==============================  ===================================

An endpoint passes its own kind (``verify(token, kind="click")``) so a token of one kind
is never accepted by another endpoint.

Destination links (``/go/<token>``, :meth:`TrackingLinks.go_url`) lead to a community's shop,
booking or product page from any channel.  Their token, signed with the same secret under a
label of its own (so no e-mail token is ever a destination token, nor the reverse), carries
the community, the destination's *id*, the channel, the post (0: written in a template
before the post existed) and the campaign -- never a URL: the endpoint redirects only to the
URL the destination has in the database now, so a token cannot lead anywhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import SecretStr

TokenKind = Literal["open", "click", "unsubscribe"]
KINDS: tuple[TokenKind, ...] = get_args(TokenKind)
PATHS: dict[TokenKind, str] = {
    "open": "/e/open/",
    "click": "/e/click/",
    "unsubscribe": "/e/unsubscribe/",
}

_KIND_CODES: dict[TokenKind, str] = {"open": "o", "click": "c", "unsubscribe": "u"}
_CODE_KINDS = {code: kind for kind, code in _KIND_CODES.items()}
# 128 bits of HMAC-SHA256: far beyond guessing, and keeps links short.
_MAC_BYTES = 16
# Changing the token layout means changing this label, so old and new tokens never mix.
_CONTEXT = b"glo-email-tracking-v1\x00"
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_GO_CONTEXT = b"glo-destination-v1\x00"
GO_PATH = "/go/"
_WORD = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")  # a channel kind or campaign slug


@dataclass(frozen=True)
class TrackingToken:
    """What a verified token says. ``url`` is the click target (None for other kinds)."""

    kind: TokenKind
    post_id: int
    subscriber_id: int
    url: str | None = None


@dataclass(frozen=True)
class GoToken:
    """What a verified destination token says."""

    community_id: int
    destination_id: int
    channel: str
    post_id: int = 0  # 0: not known when the link was written
    campaign: str = ""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _TOKEN_ALPHABET.fullmatch(text):
        raise ValueError("not URL-safe base64")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:  # only the one canonical spelling of each token is valid
        raise ValueError("not canonical base64")
    return raw


class TrackingLinks:
    """Builds and verifies the signed tracking links of the web app at ``base_url``."""

    def __init__(self, base_url: str, secret: SecretStr) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"tracking base URL {base_url!r} is not an http(s) URL; "
                "set MARKETING_PUBLIC_BASE_URL to the web app's public address"
            )
        if not secret.get_secret_value():
            raise ValueError("the tracking secret is empty; set MARKETING_TRACKING_SECRET")
        self.base_url = base_url.rstrip("/")
        self._key = secret.get_secret_value().encode("utf-8")

    def __repr__(self) -> str:
        return f"TrackingLinks({self.base_url!r}, secret=SecretStr('**********'))"

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, _CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def token(
        self, kind: TokenKind, *, post_id: int, subscriber_id: int, url: str | None = None
    ) -> str:
        """A signed token for one event of one subscriber of one post."""
        if kind not in _KIND_CODES:
            raise ValueError(f"unknown tracking kind {kind!r}; known: {', '.join(KINDS)}")
        if (kind == "click") != (url is not None):
            raise ValueError("a click token needs the target url; other kinds take none")
        if post_id < 0 or subscriber_id < 0:
            raise ValueError("post and subscriber ids are never negative")
        fields = [_KIND_CODES[kind], f"{post_id:x}", f"{subscriber_id:x}"]
        if url is not None:
            fields.append(url)
        payload = ":".join(fields).encode("utf-8")
        return _b64encode(payload + self._mac(payload))

    def url(
        self, kind: TokenKind, *, post_id: int, subscriber_id: int, url: str | None = None
    ) -> str:
        """The full link of ``kind`` (see the module docstring for the paths)."""
        token = self.token(kind, post_id=post_id, subscriber_id=subscriber_id, url=url)
        return f"{self.base_url}{PATHS[kind]}{token}"

    def open_url(self, *, post_id: int, subscriber_id: int) -> str:
        """The open pixel's address."""
        return self.url("open", post_id=post_id, subscriber_id=subscriber_id)

    def click_url(self, *, post_id: int, subscriber_id: int, url: str) -> str:
        """A redirect to ``url`` that records the click first."""
        return self.url("click", post_id=post_id, subscriber_id=subscriber_id, url=url)

    def unsubscribe_url(self, *, post_id: int, subscriber_id: int) -> str:
        """The one-click unsubscribe address (List-Unsubscribe and the footer link)."""
        return self.url("unsubscribe", post_id=post_id, subscriber_id=subscriber_id)

    def owns(self, url: str) -> bool:
        """True if ``url`` is one of this service's tracking links."""
        return any(url.startswith(f"{self.base_url}{path}") for path in PATHS.values())

    def go_token(
        self,
        *,
        community_id: int,
        destination_id: int,
        channel: str,
        post_id: int = 0,
        campaign: str = "",
    ) -> str:
        """A signed token for a link to one destination of one community from ``channel``."""
        if min(community_id, destination_id, post_id) < 0:
            raise ValueError("ids are never negative")
        if not _WORD.fullmatch(channel) or (campaign and not _WORD.fullmatch(campaign)):
            raise ValueError("channel and campaign are lowercase slugs")
        fields = [f"{community_id:x}", f"{destination_id:x}", channel, f"{post_id:x}", campaign]
        payload = ":".join(fields).encode("ascii")
        mac = hmac.new(self._key, _GO_CONTEXT + payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return _b64encode(payload + mac)

    def go_url(
        self,
        *,
        community_id: int,
        destination_id: int,
        channel: str,
        post_id: int = 0,
        campaign: str = "",
    ) -> str:
        """The short link on this service that counts a click, then leads to the destination."""
        token = self.go_token(
            community_id=community_id,
            destination_id=destination_id,
            channel=channel,
            post_id=post_id,
            campaign=campaign,
        )
        return f"{self.base_url}{GO_PATH}{token}"

    def verify_go(self, token: str) -> GoToken | None:
        """What a destination token says if this service signed it; None otherwise."""
        try:
            raw = _b64decode(token)
        except (binascii.Error, ValueError):
            return None
        if len(raw) <= _MAC_BYTES:
            return None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        expected = hmac.new(self._key, _GO_CONTEXT + payload, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected[:_MAC_BYTES]):
            return None
        try:
            community_hex, destination_hex, channel, post_hex, campaign = payload.decode(
                "ascii"
            ).split(":")
            return GoToken(
                community_id=int(community_hex, 16),
                destination_id=int(destination_hex, 16),
                channel=channel,
                post_id=int(post_hex, 16),
                campaign=campaign,
            )
        except (UnicodeDecodeError, ValueError):
            return None

    def verify(self, token: str, *, kind: TokenKind | None = None) -> TrackingToken | None:
        """What ``token`` says if this service signed it (and it is of ``kind``, when
        given); None for a tampered, forged, truncated or malformed token."""
        try:
            raw = _b64decode(token)
        except (binascii.Error, ValueError):
            return None
        if len(raw) <= _MAC_BYTES:
            return None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        # Signed by us, so well formed; parse defensively all the same.
        try:
            code, post_hex, subscriber_hex, *rest = payload.decode("utf-8").split(":", 3)
            found = TrackingToken(
                kind=_CODE_KINDS[code],
                post_id=int(post_hex, 16),
                subscriber_id=int(subscriber_hex, 16),
                url=rest[0] if rest else None,
            )
        except (UnicodeDecodeError, KeyError, ValueError):
            return None
        if kind is not None and found.kind != kind:
            return None
        return found
