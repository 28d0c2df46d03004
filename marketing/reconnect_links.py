"""Delegated reconnect: an admin hands an account's owner a link that reconnects that one
account without a staff account.

The contract:

* A link is **signed** (itsdangerous, salted, with ``MARKETING_WEB_SECRET``): the URL carries
  ``{"l": link id, "n": random nonce}``; a changed character fails the signature before the
  database is asked.  The database keeps only the nonce's SHA-256, so a copy of the database
  (or of the audit log) opens nothing.
* It **expires** (``LINK_LIFETIME``, 7 days) by the caller's clock (``now=``), never the
  system clock, so tests move time.
* It is **used once**: :func:`use_link` marks it in one conditional ``UPDATE`` (``used_at IS
  NULL AND expires_at > now``), so two browsers pressing at once get one success.  Opening
  the link (GET) does not use it: mail scanners and link previews fetch links.
* Where the owner is then sent is :func:`connect_url`: the connect flow registered for the
  account's channel (:func:`register_connect_flow`, by the OAuth flows), or else the
  accounts page, with the page explaining what to do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from marketing.models import ChannelAccount, ChannelKind, Community, ReconnectLink

LINK_LIFETIME = timedelta(days=7)
SALT = "glo.reconnect-link"
#: A token longer than this is refused before it is parsed (inputs are bounded).
TOKEN_MAX_CHARS = 300

#: Given the account, the URL (absolute or a path on this site) of its connect flow, or None.
ConnectFlow = Callable[[ChannelAccount], str | None]
_FLOWS: dict[ChannelKind, ConnectFlow] = {}


class Refusal(StrEnum):
    INVALID = "invalid"  # not signed by us, altered, or no such link
    EXPIRED = "expired"
    USED = "used"


class LinkRefused(Exception):
    """The link cannot be used; :attr:`reason` says why (a :class:`Refusal`)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class IssuedLink:
    """A link just made: its URL is shown (or mailed) once and never stored."""

    link_id: int
    account_id: int
    url: str
    expires_at: datetime


def _serializer(secret: SecretStr) -> URLSafeSerializer:
    return URLSafeSerializer(secret.get_secret_value(), salt=SALT)


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def link_path(token: str) -> str:
    """The path on this site that a link's token opens."""
    return f"/reconnect/{token}"


def create_link(
    *,
    session: Session,
    account: ChannelAccount,
    created_by: str,
    secret: SecretStr,
    base_url: str,
    now: datetime,
    lifetime: timedelta = LINK_LIFETIME,
) -> IssuedLink:
    """A new single-use link for ``account``, valid for ``lifetime`` from ``now``; the caller
    commits (and audits)."""
    nonce = secrets.token_urlsafe(24)
    link = ReconnectLink(
        account_id=account.id,
        nonce_hash=_nonce_hash(nonce),
        created_by=created_by[:80],
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(link)
    session.flush()
    token = _serializer(secret).dumps({"l": link.id, "n": nonce})
    return IssuedLink(
        link_id=link.id,
        account_id=account.id,
        url=base_url.rstrip("/") + link_path(token),
        expires_at=link.expires_at,
    )


def _parse(token: str, secret: SecretStr) -> tuple[int, str]:
    if not token or len(token) > TOKEN_MAX_CHARS:
        raise LinkRefused(Refusal.INVALID)
    try:
        payload: Any = _serializer(secret).loads(token)
    except BadSignature:
        raise LinkRefused(Refusal.INVALID) from None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("l"), int)
        or not isinstance(payload.get("n"), str)
    ):
        raise LinkRefused(Refusal.INVALID)
    return payload["l"], payload["n"]


def find_link(*, session: Session, token: str, secret: SecretStr, now: datetime) -> ReconnectLink:
    """The link ``token`` names if it may still be used; :class:`LinkRefused` otherwise."""
    link_id, nonce = _parse(token, secret)
    link = session.get(ReconnectLink, link_id)
    if link is None or not hmac.compare_digest(link.nonce_hash, _nonce_hash(nonce)):
        raise LinkRefused(Refusal.INVALID)
    if link.used_at is not None:
        raise LinkRefused(Refusal.USED)
    if link.expires_at <= now:
        raise LinkRefused(Refusal.EXPIRED)
    return link


def use_link(
    *, session: Session, token: str, secret: SecretStr, now: datetime, address: str = ""
) -> ReconnectLink:
    """Mark the link ``token`` names as used, once; the caller commits.  Raises
    :class:`LinkRefused` if it is invalid, expired or already used (also when another request
    used it a moment ago)."""
    link = find_link(session=session, token=token, secret=secret, now=now)
    result = session.execute(
        update(ReconnectLink)
        .where(
            ReconnectLink.id == link.id,
            ReconnectLink.used_at.is_(None),
            ReconnectLink.expires_at > now,
        )
        .values(used_at=now, used_from=address[:100])
        .execution_options(synchronize_session=False)
    )
    if int(result.rowcount or 0) != 1:  # type: ignore[attr-defined]
        raise LinkRefused(Refusal.USED)
    session.refresh(link)
    return link


def register_connect_flow(kind: ChannelKind, flow: ConnectFlow) -> None:
    """Make ``flow`` the connect flow of ``kind`` accounts (the OAuth flows call this)."""
    _FLOWS[kind] = flow


def accounts_page(*, session: Session, account: ChannelAccount) -> str:
    """The page that lists ``account`` (its community's page, or the communities page)."""
    if account.community_id is not None:
        slug = session.scalars(
            select(Community.slug).where(Community.id == account.community_id)
        ).first()
        if slug:
            return f"/communities/{slug}#accounts"
    return "/communities#accounts"


def connect_url(*, session: Session, account: ChannelAccount) -> str | None:
    """Where to start reconnecting ``account``: its channel's connect flow, or None when no
    flow is registered (the caller then shows :func:`accounts_page` with instructions)."""
    flow = _FLOWS.get(account.kind)
    return flow(account) if flow is not None else None
