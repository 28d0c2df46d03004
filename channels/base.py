"""The one interface every channel adapter implements.

An adapter takes values and returns values: it never touches the database.  The pipeline
(``tasks/``) loads a post, builds an :class:`OutgoingPost`, calls the adapter, and records
what comes back.  Limits are data on the adapter class (class attributes), and
:meth:`Adapter.content_problems` checks rendered content against them without any I/O, so
campaign validation and the adapter agree on one set of rules.

Post content is a plain dict (stored as JSON on ``Post.content``); its keys per channel are
documented on each adapter and typed by the ``content`` TypedDict of its :class:`ChannelSpec`.

A channel is one unit: its module declares a :class:`ChannelSpec` and
:mod:`channels.registry` lists the module (``docs/channels.md``, "Adding a channel").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, SecretStr

from channels.campaign_input import ChannelInput

if TYPE_CHECKING:
    from channels.quota import QuotaLedger
    from channels.ratelimit import UsageStore

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


@dataclass(frozen=True)
class Recipient:
    """One subscriber a :class:`BulkSender` sends to (the caller has checked consent)."""

    subscriber_id: int
    email: str
    name: str = ""


# --- the unit a channel is -------------------------------------------------------------------


class BulkSession(Protocol):
    """One open connection of a :class:`BulkSender`, reused for a whole batch."""

    def send(self, message: Any) -> None:
        """Hand ``message`` (built by :meth:`BulkSender.render`) to the channel; raise a
        :mod:`channels.errors` error: :class:`~channels.errors.PermanentError` refuses this
        recipient only, :class:`~channels.errors.OutcomeUnknown` means it may have gone out
        (never resend), any other error concerns the whole post."""


class BulkSender(Adapter):
    """A channel where one post goes to many recipients, each with a message of its own
    (e-mail; LINE's multicast).  The core (:mod:`marketing.bulk`) keeps the deliveries and
    sends them in batches over one :meth:`connect` session."""

    @abstractmethod
    def render(
        self,
        content: Mapping[str, Any],
        recipient: Recipient,
        *,
        post_id: int,
        marker: str,
        sender_address: str,
    ) -> Any:
        """The message of ``content`` for one recipient (pure: no I/O); it carries its own
        ``message_id``, recorded with the delivery."""

    @abstractmethod
    def connect(self) -> AbstractContextManager[BulkSession]:
        """A session that sends many messages over one connection."""


class Capability(StrEnum):
    """What a channel can do; the pipeline asks these instead of naming channels."""

    PUBLISH = "publish"  # one post is one publication (a :class:`Publisher`)
    SEND_TO_MANY = "send-to-many"  # one post goes to many recipients (a :class:`BulkSender`)
    METRICS = "metrics"  # engagement of a publication can be read back
    ACCOUNT_CHECK = "account-check"  # an account's token can be checked cheaply
    FIND_PUBLISHED = "find-published"  # an earlier publication can be found by its marker
    TAKE_DOWN = "take-down"  # a publication can be removed
    MAKE_PRIVATE = "make-private"  # a publication can be hidden instead of removed


@dataclass(frozen=True)
class ChannelServices:
    """What the composition root (``tasks/wiring.py``) shares between the adapters it builds:
    the stores of usage reports and quotas (Redis when there is one, so every worker sees
    the same numbers).  Each is built on first use."""

    usage: Callable[[], UsageStore] | None = None
    quota_ledger: Callable[[], QuotaLedger] | None = None
    #: The channel user ids of an account's consenting subscribers who linked that channel
    #: (for a "send to our subscribers" target, such as LINE's multicast).
    subscribers: Callable[[Account], Sequence[str]] | None = None


@dataclass(frozen=True)
class ChannelSpec:
    """Everything the rest of the service knows about one channel.

    Each channel module declares one (``SPEC``) and :mod:`channels.registry` lists the
    module: labels, colours, UTM values, the campaign file's block, limits, the content
    shape, capabilities, settings and the adapter all come from here, so nothing else names
    a channel.  See ``docs/channels.md`` ("Adding a channel").
    """

    kind: str  # the value of ``marketing.models.ChannelKind`` and the campaign file's key
    label_th: str  # what staff read in Thai ("เฟซบุ๊ก")
    label_en: str  # and in English ("Facebook")
    colour: str  # its colour in charts, "#rrggbb"
    utm_source: str  # utm_source of the links a post carries
    utm_medium: str  # and its utm_medium
    campaign_model: type[ChannelInput]  # its block in a campaign file
    limits: type[Adapter]  # declares the limits and checks content against them (pure)
    content: type  # the TypedDict of ``Post.content`` for this channel
    capabilities: frozenset[Capability]
    settings_model: type[BaseModel]  # the settings its adapter is built from (values only)
    factory: Callable[[Any, ChannelServices], Adapter]  # (settings_model value, services)
    media_keys: tuple[str, ...] = ()  # content keys whose value is a media file path
    signs_links: bool = False  # its messages carry signed tracking links (needs the secret)
    # Posts of this channel claimed together in one publishing message (at most the
    # MARKETING_PUBLISH_BATCH setting); 1 for a channel whose every call is long or whose
    # bookkeeping counts each claimed post as spent (YouTube: uploads, daily upload quota).
    posts_per_message: int | None = None

    def __post_init__(self) -> None:
        if self.limits.kind != self.kind:
            raise ValueError(f"{self.kind}: its limits class declares {self.limits.kind!r}")
        publishes = Capability.PUBLISH in self.capabilities
        if publishes == (Capability.SEND_TO_MANY in self.capabilities):
            raise ValueError(f"{self.kind}: a channel either publishes or sends to many")

    @property
    def queue(self) -> str:
        """The Celery queue its publish tasks go to (one per channel, so a slow channel does
        not hold up the others)."""
        return f"{QUEUE_PREFIX}{self.kind}"

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def code(self, reason: str) -> str:
        """An error or notice code of this channel: ``<channel>:<reason>``."""
        return f"{self.kind}:{reason}"

    def settings_from(self, source: object) -> BaseModel:
        """This channel's settings read from ``source``'s attributes of the same names (the
        service's settings), or ``source`` itself when it is one already."""
        if isinstance(source, self.settings_model):
            return source
        return self.settings_model.model_validate(source, from_attributes=True)

    def build(self, source: object, services: ChannelServices | None = None) -> Adapter:
        """The adapter, configured from ``source`` (see :meth:`settings_from`)."""
        return self.factory(self.settings_from(source), services or ChannelServices())


#: Publish queues are named this and the channel's kind (``publish.facebook``).
QUEUE_PREFIX = "publish."
