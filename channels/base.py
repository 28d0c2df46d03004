"""The one interface every channel adapter implements.

An adapter takes values and returns values: it never touches the database.  The pipeline
(``tasks/``) loads a post, builds an :class:`OutgoingPost`, calls the adapter, and records
what comes back.  Limits are data on the adapter class (class attributes), and
:meth:`Adapter.content_problems` checks rendered content against them without any I/O, so
campaign validation and the adapter agree on one set of rules.

Post content is a plain dict (stored as JSON on ``Post.content``); its keys per channel are
documented on each adapter (``channels/facebook.py``, ``channels/youtube.py``,
``channels/email.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import SecretStr

#: Called with a renewed access token, the refresh token the answer carried (None: keep the
#: stored one) and the new expiry, so the caller can keep them.
RefreshListener = Callable[[SecretStr, SecretStr | None, datetime | None], None]


@dataclass(frozen=True)
class RefreshGrant:
    """What an OAuth client needs to renew an account's access token by itself (Google's
    ``Credentials(token, refresh_token, token_uri, client_id, client_secret)``)."""

    refresh_token: SecretStr = field(repr=False)
    token_uri: str
    client_id: str
    client_secret: SecretStr = field(repr=False)
    expiry: datetime | None = None  # of the access token, aware UTC
    scopes: tuple[str, ...] = ()
    on_refresh: RefreshListener | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Account:
    """The channel account a post goes out on. ``token`` is masked when printed; ``grant``,
    when given, lets the adapter renew ``token`` itself."""

    kind: str
    external_id: str  # Page id, YouTube channel id, or sender address
    display_name: str
    token: SecretStr | None = field(default=None, repr=False)
    grant: RefreshGrant | None = field(default=None, repr=False)


@dataclass(frozen=True)
class OutgoingPost:
    """A rendered post, ready to publish.

    ``marker`` is the post's idempotency key.  The adapter makes the publication carry it (or
    otherwise makes it findable) so :meth:`Publisher.find_published` can tell, after an
    outcome was lost, whether the publication exists.
    """

    marker: str
    account: Account
    content: Mapping[str, Any]


@dataclass(frozen=True)
class Receipt:
    """Proof of a publication."""

    external_id: str
    permalink: str | None
    published_at: datetime
    raw: Mapping[str, Any] = field(default_factory=dict)
    # Something staff should know about a publication that did succeed, as a code
    # (``youtube:forced-private``); None when there is nothing to say.
    notice: str | None = None


@dataclass(frozen=True)
class Metrics:
    """Cumulative engagement of one publication as the channel reports it now.

    ``None`` means the channel does not report that figure (not zero).
    """

    external_id: str
    collected_at: datetime
    views: int | None = None
    reactions: int | None = None
    comments: int | None = None
    shares: int | None = None
    clicks: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContentProblem:
    """Rendered content breaks a channel rule. ``field`` is the content key (``"title"``)."""

    field: str
    message: str


class Adapter(ABC):
    """What every channel declares: its kind, its limits, and a content check."""

    kind: ClassVar[str]
    service_name: ClassVar[str]

    @classmethod
    @abstractmethod
    def content_problems(cls, content: Mapping[str, Any]) -> list[ContentProblem]:
        """Every way ``content`` breaks this channel's rules (empty: it is fine). Pure."""


class Publisher(Adapter):
    """A channel where one post is one publication: Facebook Pages, YouTube."""

    @abstractmethod
    def publish(self, post: OutgoingPost) -> Receipt:
        """Publish ``post``; raise a :mod:`channels.errors` error on failure."""

    @abstractmethod
    def find_published(self, post: OutgoingPost, *, since: datetime) -> Receipt | None:
        """The publication of ``post`` made at or after ``since``, or None if certainly none.

        Raise :class:`channels.errors.TransientError` when the channel cannot tell now.
        """

    @abstractmethod
    def check_account(self, account: Account) -> None:
        """Return if ``account``'s token works and acts for it; raise
        :class:`channels.errors.AuthExpired` if a person must reconnect it (a cheap read)."""

    @abstractmethod
    def fetch_metrics(self, account: Account, external_ids: Sequence[str]) -> list[Metrics]:
        """Current metrics for the given publications of ``account`` (batched as the channel
        allows); publications the channel no longer knows are left out."""

    def take_down(self, account: Account, external_id: str, *, private: bool = False) -> bool:
        """Remove publication ``external_id`` of ``account`` from the channel (a takedown
        request) -- or, with ``private`` where the channel has it, hide it from everyone but
        its owner: True once done, False if the channel no longer had it.  Raise a
        :mod:`channels.errors` error if the channel refuses or cannot be reached."""
        raise NotImplementedError(f"{self.service_name} cannot take a publication down")
