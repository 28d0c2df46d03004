"""The data model: what the programme has, what it publishes, and what came of it.

Reference data
    Community -- one pilot community (Thai and English names, province, tags, time zone)
    ChannelAccount -- a Facebook Page, YouTube channel or email sender, of a community or
        programme-wide; holds the *name* of the secret with its token, never the token
    AccountToken -- the tokens of an account connected from the web app, encrypted
        (Fernet ciphertext only; :mod:`marketing.token_store` reads and writes them)
    Subscriber -- an email address with the consent it was given under
    Highlight -- a story, product or programme of a community, ready to be posted

Publishing
    Campaign -- a campaign definition as applied (its source text and hash) and its status
    Post -- one publication: (campaign, community, channel account, occurrence); a state
        machine (see :class:`PostState`) with a unique idempotency key that also serves as
        the marker by which a channel finds the publication again
    PostOverride -- what a person changed on one post of a campaign (its text, its time,
        or that this occurrence is skipped); re-planning the campaign keeps it
    Attempt -- one try at publishing a post; outcome ``unknown`` until the channel answers
    Delivery -- one email of an email post to one subscriber
    VariantDecision -- the winner of a variant test, decided once before the rest of the
        audience is sent to (:mod:`marketing.variant_tests`), or before the rest of a
        campaign's Facebook posts go out (:mod:`marketing.post_variants`)

Results
    MetricSnapshot -- cumulative metrics of a post as a channel reported them at one time,
        with the raw response and the change since the previous snapshot
    EmailEvent -- an open, click or unsubscribe recorded by the tracking endpoints
    EmailEventTally -- the counts of events purged after the retention time
    CommunityPerformance -- per community, channel and local day: what the reports read
    CommunityOutcome -- what the programme is for, per community and month: sales, bookings
        and visitors, imported by staff from a CSV (:mod:`marketing.outcomes`)
    CreatorVideo -- a creator's YouTube video that presents a community, with its latest
        public statistics: a source of its own, never mixed into the owned channels
    CommunityDestination -- a community's shop, booking or product page, the only places
        its tracked ``/go/`` links lead
    DestinationClickDay -- click-throughs to a destination per channel and local day
    Heartbeat -- when each pipeline component was last seen alive

People (the web app)
    User -- a member of staff who signs in, with a role (viewer < editor < approver < admin)
    WebSession -- one signed-in browser: the cookie names it, sign-out or a password change
        ends it; only the SHA-256 of its id is kept
    ApiToken -- a bearer token for scripts, with an expiry; only its SHA-256 is kept
    AuditLog -- every change made through the web app: who, what, when, to which object
    ReconnectLink -- a signed, expiring, single-use link an admin gives an account's owner to
        reconnect that one account without a staff account; only the SHA-256 of its nonce

Media library (:mod:`marketing.media_library`)
    MediaItem -- a photo, video or e-mail template uploaded to the library: stored once per
        content (SHA-256) under the media root, with what Pillow or ffprobe read from it,
        whether each channel takes it, and whether people appear in it and their consent
    MediaUpload -- a large file arriving in chunks (resumable): how many bytes have come

Telling people (:mod:`marketing.notifications`)
    NotificationEvent -- something staff should act on, in the clock hour it was noticed
    NotificationDigest -- one e-mail per person, kind and hour: claimed before it is sent

All times are aware UTC (:class:`marketing.db.UTCDateTime`); zones are shown, not stored.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from marketing.conventions import DEFAULT_TIMEZONE
from marketing.db import UTCDateTime, utcnow

if TYPE_CHECKING:
    from channels.base import Capability

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}


def _enum(cls: type[StrEnum]) -> SAEnum:
    # Stored as plain strings (no database ENUM type) so adding a member needs no migration.
    return SAEnum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


class ChannelKind(StrEnum):
    FACEBOOK = "facebook"
    YOUTUBE = "youtube"
    EMAIL = "email"
    LINE = "line"


def channels_that(capability: Capability) -> list[ChannelKind]:
    """The channels that can do ``capability`` (declared by their specs, channels.registry)."""
    from channels import registry

    return [ChannelKind(kind) for kind in registry.kinds_that(capability)]


class AccountHealth(StrEnum):
    OK = "ok"
    NEEDS_RECONNECT = "needs_reconnect"  # token expired or revoked: a person must reconnect
    PERMISSION_LOST = "permission_lost"
    UNKNOWN = "unknown"


class TokenKind(StrEnum):
    FACEBOOK_PAGE = "facebook_page"  # a Page's own access token, never a user token
    GOOGLE = "google"  # Google access and refresh token (google-auth Credentials)
    LINE_CHANNEL = "line_channel"  # a LINE channel access token, pasted by staff (no OAuth)


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class PostState(StrEnum):
    """Where a post is.  Terminal: published, failed, cancelled.  Needing a person:
    failed, unconfirmed, needs_reconnect."""

    SCHEDULED = "scheduled"  # waiting for scheduled_at / next_try_at
    QUEUED = "queued"  # claimed by dispatch_due, publish message sent
    PUBLISHING = "publishing"  # claimed by a worker; an Attempt is open
    PUBLISHED = "published"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"  # the channel may have it; a person must check
    NEEDS_RECONNECT = "needs_reconnect"  # the account's token must be renewed
    CANCELLED = "cancelled"


class AttemptOutcome(StrEnum):
    UNKNOWN = "unknown"  # written before the network call; stays if the worker dies
    PUBLISHED = "published"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH_EXPIRED = "auth_expired"
    PERMANENT = "permanent"
    RECONCILED_FOUND = "reconciled_found"  # an unknown attempt found on the channel
    RECONCILED_ABSENT = "reconciled_absent"  # an unknown attempt certainly not published
    UNCONFIRMED = "unconfirmed"  # an unknown attempt the channel could not settle


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # handed to SMTP; outcome unknown until the reply
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # consent withdrawn before sending
    UNCONFIRMED = "unconfirmed"  # the worker died mid-send: never re-sent automatically


class EmailEventKind(StrEnum):
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Community(TimestampMixin, Base):
    __tablename__ = "community"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name_th: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    province: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(default=list)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    website: Mapped[str | None] = mapped_column(String(500))

    accounts: Mapped[list[ChannelAccount]] = relationship(back_populates="community")
    highlights: Mapped[list[Highlight]] = relationship(
        back_populates="community", order_by="Highlight.position"
    )


class ChannelAccount(TimestampMixin, Base):
    __tablename__ = "channel_account"
    __table_args__ = (UniqueConstraint("kind", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind))
    external_id: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(200))
    secret_name: Mapped[str | None] = mapped_column(String(120))
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    health: Mapped[AccountHealth] = mapped_column(_enum(AccountHealth), default=AccountHealth.OK)
    health_message: Mapped[str | None] = mapped_column(Text)
    health_checked_at: Mapped[datetime | None]

    community: Mapped[Community | None] = relationship(back_populates="accounts")


class AccountToken(TimestampMixin, Base):
    """The tokens of one channel account, as Fernet ciphertext under ``MARKETING_TOKEN_KEYS``.
    Times and scopes are not secret and stay readable, so expiry warnings need no key."""

    __tablename__ = "account_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("channel_account.id", ondelete="CASCADE"), unique=True
    )
    kind: Mapped[TokenKind] = mapped_column(_enum(TokenKind))
    access_ciphertext: Mapped[str] = mapped_column(Text)
    refresh_ciphertext: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None]
    # When the grant itself ends unless renewed (the long-lived user token's 60 days, a
    # Google refresh token's 7 days while the consent screen is in testing).
    lifetime_ends_at: Mapped[datetime | None]
    scopes: Mapped[list[str]] = mapped_column(default=list)
    refreshed_at: Mapped[datetime | None]


class Subscriber(TimestampMixin, Base):
    __tablename__ = "subscriber"
    __table_args__ = (UniqueConstraint("community_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    # Consent evidence (PDPA): where and when it was given; for a web sign-up also the form
    # and the address it was sent from.
    consent_source: Mapped[str] = mapped_column(String(300))
    consent_at: Mapped[datetime]
    consent_form: Mapped[str | None] = mapped_column(String(300))
    consent_address: Mapped[str | None] = mapped_column(String(100))
    unsubscribed_at: Mapped[datetime | None]
    tags: Mapped[list[str]] = mapped_column(default=list)
    # The LINE user id (U and 32 hex digits) the subscriber linked, for LINE multicasts.
    line_user_id: Mapped[str | None] = mapped_column(String(33))


class Highlight(TimestampMixin, Base):
    __tablename__ = "highlight"
    __table_args__ = (UniqueConstraint("community_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(80))
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list[str]] = mapped_column(default=list)
    tags: Mapped[list[str]] = mapped_column(default=list)
    link: Mapped[str | None] = mapped_column(String(500))
    people_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_note: Mapped[str | None] = mapped_column(Text)
    last_posted_at: Mapped[datetime | None]

    community: Mapped[Community] = relationship(back_populates="highlights")


class Campaign(TimestampMixin, Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    source_path: Mapped[str | None] = mapped_column(String(1000))
    source_text: Mapped[str] = mapped_column(Text)
    source_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus), default=CampaignStatus.DRAFT
    )
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    # The file and every post's content as last approved (key -> channel, community,
    # occurrence, content), so the approver sees what changed since (#14).
    approved_source_text: Mapped[str | None] = mapped_column(Text)
    approved_posts: Mapped[dict[str, Any] | None]

    posts: Mapped[list[Post]] = relationship(back_populates="campaign")


class Post(TimestampMixin, Base):
    __tablename__ = "post"
    __table_args__ = (
        Index("ix_post_state_due", "state", "next_try_at"),
        Index("ix_post_campaign_state", "campaign_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_account.id"), index=True)
    channel: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind))
    highlight_id: Mapped[int | None] = mapped_column(
        ForeignKey("highlight.id", ondelete="SET NULL")
    )
    # Deterministic from (campaign, community, account, occurrence): planning twice finds the
    # same row, and the channel carries it as the marker that reconciliation searches for.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    occurrence_key: Mapped[str] = mapped_column(String(120))
    scheduled_at: Mapped[datetime]
    # When dispatch_due may next look at it: scheduled_at at first, later a retry time.
    next_try_at: Mapped[datetime]
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[PostState] = mapped_column(_enum(PostState), default=PostState.SCHEDULED)
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    external_id: Mapped[str | None] = mapped_column(String(300))
    permalink: Mapped[str | None] = mapped_column(String(1000))
    published_at: Mapped[datetime | None]
    attempt_count: Mapped[int] = mapped_column(default=0)
    # Transient failures in a row; reset when a person retries the post.
    transient_failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[str | None] = mapped_column(String(100))
    action_hint: Mapped[str | None] = mapped_column(Text)
    # What staff should know about a publication that succeeded, as a code the web app
    # explains (``youtube:forced-private``: YouTube made the video private).
    notice: Mapped[str | None] = mapped_column(String(100))
    # When collect_metrics should next ask the channel (None: no more collection).
    metrics_due_at: Mapped[datetime | None] = mapped_column(index=True)
    # Removed from its channel on request (``marketing posts takedown``): when, who asked, why.
    taken_down_at: Mapped[datetime | None]
    takedown_by: Mapped[str | None] = mapped_column(String(200))
    takedown_reason: Mapped[str | None] = mapped_column(Text)

    campaign: Mapped[Campaign] = relationship(back_populates="posts")
    community: Mapped[Community] = relationship()
    account: Mapped[ChannelAccount] = relationship()
    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="post", order_by="Attempt.number", cascade="all, delete-orphan"
    )


class PostOverride(Base):
    """A person's change to one post, kept over the campaign's plan: ``content`` holds only
    the content keys they rewrote, ``scheduled_at`` the time they moved it to, ``skipped``
    that they skipped this occurrence.  :func:`marketing.post_edits.with_overrides` lays it
    over every new plan of the campaign."""

    __tablename__ = "post_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), unique=True)
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scheduled_at: Mapped[datetime | None]
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_by: Mapped[str] = mapped_column(String(80))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    __tablename__ = "attempt"
    __table_args__ = (UniqueConstraint("post_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[AttemptOutcome] = mapped_column(
        _enum(AttemptOutcome), default=AttemptOutcome.UNKNOWN
    )
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    # Refreshed by the publishing worker while the call is in flight; an unknown attempt
    # whose heartbeat has stopped belongs to a dead worker and is reconciled.
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    reconcile_tries: Mapped[int] = mapped_column(default=0)

    post: Mapped[Post] = relationship(back_populates="attempts")


class Delivery(Base):
    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("post_id", "subscriber_id"),
        Index("ix_delivery_post_state", "post_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    state: Mapped[DeliveryState] = mapped_column(
        _enum(DeliveryState), default=DeliveryState.PENDING
    )
    message_id: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class MetricSnapshot(Base):
    __tablename__ = "metric_snapshot"
    __table_args__ = (
        UniqueConstraint("post_id", "collected_at"),
        Index("ix_metric_snapshot_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    collected_at: Mapped[datetime]
    day: Mapped[date] = mapped_column(Date)  # collected_at's day in the community's zone
    # Cumulative values as the channel reported them (None: the channel does not report it).
    views: Mapped[int | None]
    reactions: Mapped[int | None]
    comments: Mapped[int | None]
    shares: Mapped[int | None]
    clicks: Mapped[int | None]
    # Change since the post's previous snapshot, so a rollup is a plain SUM.
    d_views: Mapped[int] = mapped_column(default=0)
    d_reactions: Mapped[int] = mapped_column(default=0)
    d_comments: Mapped[int] = mapped_column(default=0)
    d_shares: Mapped[int] = mapped_column(default=0)
    d_clicks: Mapped[int] = mapped_column(default=0)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)


class EmailEvent(Base):
    __tablename__ = "email_event"
    __table_args__ = (
        Index("ix_email_event_post_kind", "post_id", "kind"),
        Index("ix_email_event_day", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    kind: Mapped[EmailEventKind] = mapped_column(_enum(EmailEventKind))
    url: Mapped[str | None] = mapped_column(String(2000))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    day: Mapped[date] = mapped_column(Date)  # occurred_at's day in the community's zone


class EmailEventTally(Base):
    """Opens, clicks and unsubscribes of e-mail events purged after the retention time
    (``MARKETING_TRACKING_RETENTION_DAYS``), per community, channel and local day: the rollup
    adds them, so the programme's totals survive the purge."""

    __tablename__ = "email_event_tally"
    __table_args__ = (UniqueConstraint("community_id", "channel", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    channel: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind))
    day: Mapped[date] = mapped_column(Date)
    opens: Mapped[int] = mapped_column(default=0)
    clicks: Mapped[int] = mapped_column(default=0)
    unsubscribes: Mapped[int] = mapped_column(default=0)


class VariantDecision(Base):
    """The verdict of one variant test, written once (unique per rest post) before the rest
    of the audience gets the chosen variant; a retry reads it instead of deciding again."""

    __tablename__ = "variant_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(
        ForeignKey("post.id", ondelete="CASCADE"), unique=True
    )  # the post that sends to the rest (a test over posts: the rest post that decided)
    # A test over a campaign's posts (``campaign/channel``), decided once for all its rest
    # posts (:mod:`marketing.post_variants`); None for an e-mail test (one per rest post).
    test: Mapped[str | None] = mapped_column(String(200), unique=True)
    outcome: Mapped[str] = mapped_column(String(32))  # winner, no_clear_winner, too_few
    winner: Mapped[str | None] = mapped_column(String(8))
    chosen: Mapped[str] = mapped_column(String(8))  # the variant sent to the rest
    needed: Mapped[float] = mapped_column(Float)
    arms: Mapped[list[Any]] = mapped_column(JSON, default=list)  # per arm: key, figures, result
    decided_at: Mapped[datetime]


class CommunityOutcome(Base):
    """One community's outcomes in one month, as staff reported them (None: not reported)."""

    __tablename__ = "community_outcome"
    __table_args__ = (UniqueConstraint("community_id", "month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    month: Mapped[date] = mapped_column(Date)  # the first day of the month
    sales: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))  # baht
    bookings: Mapped[int | None]
    visitors: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(300))  # the file it came from
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime]


class CreatorVideo(Base):
    """A creator's video about a community (added by staff) and its public statistics as
    last read with the API key (:mod:`marketing.creators`)."""

    __tablename__ = "creator_video"
    __table_args__ = (UniqueConstraint("community_id", "video_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    video_id: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2000))  # as staff gave it
    title: Mapped[str | None] = mapped_column(String(300))
    channel_title: Mapped[str | None] = mapped_column(String(300))
    published_at: Mapped[datetime | None]
    views: Mapped[int | None] = mapped_column(BigInteger)
    likes: Mapped[int | None] = mapped_column(BigInteger)
    comments: Mapped[int | None] = mapped_column(BigInteger)
    fetched_at: Mapped[datetime | None]  # None: statistics not read yet
    missing: Mapped[bool] = mapped_column(default=False)  # private or removed at last read
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime]


class DestinationKind(StrEnum):
    """Where a community sells or takes bookings: the pages tracked links lead to."""

    SHOP = "shop"
    BOOKING = "booking"
    PRODUCT = "product"


class CommunityDestination(TimestampMixin, Base):
    """A community's shop, booking or product page (one of each kind), set by staff: the
    only places a ``/go/`` link may lead (:mod:`marketing.destinations`)."""

    __tablename__ = "community_destination"
    __table_args__ = (UniqueConstraint("community_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    kind: Mapped[DestinationKind] = mapped_column(_enum(DestinationKind))
    url: Mapped[str] = mapped_column(String(2000))
    label_th: Mapped[str] = mapped_column(String(200))


class DestinationClickDay(Base):
    """Click-throughs to one destination from one channel on one local day: a counter, so
    clicks never add a row each (bounded by days x destinations x channels)."""

    __tablename__ = "destination_click_day"
    __table_args__ = (UniqueConstraint("destination_id", "channel", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    destination_id: Mapped[int] = mapped_column(
        ForeignKey("community_destination.id", ondelete="CASCADE")
    )
    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date, index=True)
    clicks: Mapped[int] = mapped_column(default=0)


class _PerformanceSums:
    """The raw sums a report adds up (``marketing.reports.rows.RAW_FIELDS``)."""

    posts: Mapped[int] = mapped_column(default=0)
    views: Mapped[int] = mapped_column(default=0)
    reactions: Mapped[int] = mapped_column(default=0)
    comments: Mapped[int] = mapped_column(default=0)
    shares: Mapped[int] = mapped_column(default=0)
    clicks: Mapped[int] = mapped_column(default=0)
    opens: Mapped[int] = mapped_column(default=0)
    unsubscribes: Mapped[int] = mapped_column(default=0)
    emails_sent: Mapped[int] = mapped_column(default=0)


# The raw sums every performance table holds, in one place (reports add these up).
PERFORMANCE_SUMS: tuple[str, ...] = tuple(_PerformanceSums.__annotations__)


class CommunityPerformance(_PerformanceSums, Base):
    __tablename__ = "community_performance"
    __table_args__ = (
        UniqueConstraint("community_id", "channel", "day"),
        Index("ix_community_performance_day", "day", "community_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    channel: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind))
    day: Mapped[date] = mapped_column(Date)  # in the community's time zone
    # Facebook, YouTube: (reactions + comments + shares + clicks) / views;
    # email: clicks / emails_sent (click-through rate). 0 when there is no reach.
    engagement_rate: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CommunityMonthPerformance(_PerformanceSums, Base):
    """A community's :class:`CommunityPerformance` summed per channel and calendar month (of
    its local days), so a report over a year reads twelve rows per community, not 365.

    Derived, never edited: :func:`marketing.performance.rollup` recomputes the months it
    touched in the same transaction (``summarise``)."""

    __tablename__ = "community_month_performance"
    __table_args__ = (
        UniqueConstraint("community_id", "channel", "month"),
        Index("ix_community_month_performance_month", "month", "community_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    channel: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind))
    month: Mapped[date] = mapped_column(Date)  # the month's first day


class ProgrammeDayPerformance(_PerformanceSums, Base):
    """Every community's :class:`CommunityPerformance` summed per channel and day: the
    programme's daily trend without reading every community's day.  Derived like
    :class:`CommunityMonthPerformance`."""

    __tablename__ = "programme_day_performance"
    __table_args__ = (UniqueConstraint("day", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind))


class ReportGeneration(Base):
    """How many times the performance summaries have changed: one row, its counter raised in
    the transaction of every rollup (:func:`marketing.performance.summarise`) and of every
    outcomes import that adds or replaces a month (:func:`marketing.outcomes.store_outcomes`).
    The web app's cached overview, yearly report and API overview
    (:mod:`marketing.web.report_cache`) are keyed on it, so a report built before a rollup
    is not shown after it, by any web process (#19)."""

    __tablename__ = "report_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class Heartbeat(Base):
    """The last sign of life of a pipeline component (worker, dispatcher, metrics collector),
    so staff can see when publishing has stopped moving."""

    __tablename__ = "heartbeat"

    component: Mapped[str] = mapped_column(String(100), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Role(StrEnum):
    """What a member of staff may do; each role may do everything of the roles before it."""

    VIEWER = "viewer"  # read every page, report and API answer
    EDITOR = "editor"  # apply campaigns, import subscribers, act on problem posts
    APPROVER = "approver"  # approve, resume and cancel campaigns (never one they applied)
    ADMIN = "admin"  # manage users, read the audit log

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """True if this role may do what ``needed`` may."""
        return self.rank >= needed.rank


class User(TimestampMixin, Base):
    __tablename__ = "app_user"  # "user" is a reserved word in PostgreSQL

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    # argon2id, in the PHC string format argon2-cffi writes (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.VIEWER)
    language: Mapped[str] = mapped_column(String(8), default="th")
    buddhist_era: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None]
    # Where notifications go (None: the person gets none).
    email: Mapped[str | None] = mapped_column(String(320))
    # NotificationKind values this person switched off; every other kind their role may act
    # on is sent (so a kind added later reaches people without a migration).
    notifications_off: Mapped[list[str]] = mapped_column(default=list)


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # SHA-256 of the token in hex: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A signed-in browser.  The signed cookie holds a random id; the database keeps only its
    SHA-256, so a copy of the database signs nobody in.  A session counts while ``ended_at``
    is empty and ``expires_at`` is ahead."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    # sign-out, password, disabled, expired: why it ended, for the audit and the account page.
    end_reason: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(100), default="")
    user_agent: Mapped[str] = mapped_column(String(200), default="")

    user: Mapped[User] = relationship()


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The username is kept as written, so the entry stays readable after a user is removed.
    actor: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(80))  # e.g. campaign.approve, post.retry
    object_type: Mapped[str] = mapped_column(String(40))  # campaign, post, community, user, ...
    object_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ImportState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # nothing was imported; ``result["problems"]`` says why


class ImportJob(Base):
    """A subscriber list uploaded through the web, imported in the background
    (``marketing.web.imports``); its page shows progress and then the outcome."""

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)  # random: the page's address
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    state: Mapped[ImportState] = mapped_column(_enum(ImportState), default=ImportState.WAITING)
    # {"counts": {"created": n, ...}} when done; {"problems": [...], "more": n} when failed.
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ReconnectLink(Base):
    """A delegated reconnect link: the URL carries ``{"l": id, "n": nonce}`` signed with the
    web secret; the database keeps only the nonce's SHA-256, so a copy of it opens nothing.
    Used once (``used_at``), and never after ``expires_at``."""

    __tablename__ = "reconnect_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("channel_account.id", ondelete="CASCADE"), index=True
    )
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_from: Mapped[str | None] = mapped_column(String(100))

    account: Mapped[ChannelAccount] = relationship()


class NotificationKind(StrEnum):
    """What a notification is about; each kind is one digest (see marketing.notifications)."""

    ACCOUNT_RECONNECT = "account_reconnect"
    ACCOUNT_EXPIRING = "account_expiring"  # a token's known lifetime ends within days
    POST_PROBLEM = "post_problem"  # failed, or outcome unknown (unconfirmed)
    DRAFT_WAITING = "draft_waiting"
    YOUTUBE_QUOTA = "youtube_quota"


class DigestState(StrEnum):
    SENDING = "sending"  # claimed; handed to the relay (stays so if the worker dies)
    SENT = "sent"
    FAILED = "failed"  # the relay refused for good; error_code says why
    UNCONFIRMED = "unconfirmed"  # the relay may have it: never sent again automatically


class NotificationEvent(Base):
    __tablename__ = "notification_event"
    __table_args__ = (Index("ix_notification_event_window", "window_start", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Stable per happening (e.g. post:12:failed:<when>), so noticing it twice adds nothing.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[NotificationKind] = mapped_column(_enum(NotificationKind))
    # The clock hour in which the service noticed it: the digest it belongs to.
    window_start: Mapped[datetime]
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class NotificationDigest(Base):
    __tablename__ = "notification_digest"
    __table_args__ = (UniqueConstraint("user_id", "kind", "window_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(_enum(NotificationKind))
    window_start: Mapped[datetime]
    state: Mapped[DigestState] = mapped_column(_enum(DigestState), default=DigestState.SENDING)
    events: Mapped[int] = mapped_column(default=0)
    address: Mapped[str] = mapped_column(String(320))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(300))
    error_code: Mapped[str | None] = mapped_column(String(100))


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    TEMPLATE = "template"  # an e-mail template (HTML with Jinja), checked like a campaign's


class PeopleShown(StrEnum):
    UNKNOWN = "unknown"  # nobody said yet
    NONE = "none"  # nobody can be recognised in it
    YES = "yes"  # people can be recognised: their consent is recorded in ``consent``


class Consent(StrEnum):
    NOT_NEEDED = "not-needed"  # nobody appears
    MISSING = "missing"  # people appear and have not agreed (yet): do not publish
    WRITTEN = "written"  # agreed in writing (a signed form, kept by the programme)
    ELECTRONIC = "electronic"  # agreed electronically (a message, a form online)


class MediaItem(Base):
    """One file of the media library.  ``path`` is relative to the media root; the file there
    is never changed once written (its content is ``sha256``)."""

    __tablename__ = "media_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The file name people gave it (no folder): what campaigns name it by, unique.
    name: Mapped[str] = mapped_column(String(200), unique=True)
    path: Mapped[str] = mapped_column(String(400))
    kind: Mapped[MediaKind] = mapped_column(_enum(MediaKind))
    mime: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None]
    height: Mapped[int | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    container: Mapped[str | None] = mapped_column(String(100))  # ffprobe's format_name
    video_codec: Mapped[str | None] = mapped_column(String(40))
    audio_codec: Mapped[str | None] = mapped_column(String(40))
    thumbnail: Mapped[str | None] = mapped_column(String(400))  # relative to the media root
    # channel kind -> list of {"code", "values"}: why that channel would refuse it (empty: fits).
    fit: Mapped[dict[str, Any]] = mapped_column(default=dict)
    people: Mapped[PeopleShown] = mapped_column(_enum(PeopleShown), default=PeopleShown.UNKNOWN)
    consent: Mapped[Consent] = mapped_column(_enum(Consent), default=Consent.MISSING)
    consent_note: Mapped[str] = mapped_column(String(500), default="")
    uploaded_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MediaUpload(Base):
    """A file arriving in chunks: the bytes so far are in ``<media root>/library/.partial/<key>``
    (``received`` of them); at ``total_bytes`` it becomes a :class:`MediaItem`."""

    __tablename__ = "media_upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # random: the upload's address
    name: Mapped[str] = mapped_column(String(200))
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the last chunk came, by the app's clock (set by each chunk: an upload untouched for
    # two days is forgotten).
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Chosen at the start and applied when the last chunk arrives.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
