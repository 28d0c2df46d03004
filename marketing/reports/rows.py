"""What a report holds: plain values, ready for a table, CSV, JSON, HTML or the web app.

Engagement rate -- the one definition every report uses, written in :mod:`marketing.engagement`
    Facebook, YouTube: interactions = reactions + comments + shares + clicks; reach = views.
    Email:             interactions = clicks;                             reach = emails sent.
    engagement rate = interactions / reach, always computed from the *sums* of a period
    (never an average of daily rates), and over several channels the sums of each channel's
    interactions and reach -- a rate weighted by reach.  No reach: the rate is 0.

Changes compare a period with the one of the same length just before it: a relative change
(0.25 = +25 %) for counts, and a difference in percentage points for the rate (7.8 = +7.8
points).  Both are ``None`` when the previous period had nothing to compare with: reports show
"ใหม่" (new) then, never a change from zero.

A rate from fewer than :data:`MIN_EMAILS_SENT` emails sent or :data:`MIN_VIEWS` views is not yet
meaningful (three emails give 33 % or 67 %): :attr:`Metrics.rate_meaningful` says so, and reports
show "ยังน้อยเกินไป" (too few) with the count instead of the rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import cached_property
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, computed_field

from marketing import engagement
from marketing.models import PERFORMANCE_SUMS, ChannelKind, PostState
from marketing.reports.period import Period

# Every channel, in the registry's order (channels.registry; ChannelKind lists the same).
CHANNELS: tuple[ChannelKind, ...] = tuple(ChannelKind)
ALL = "all"
# A channel's kind (see channels.registry) or "all".
ChannelName = str

# A rate is shown only from at least this many emails sent or this many views (either one);
# below both it is "not yet meaningful".  Documented in docs/reports.md.
MIN_EMAILS_SENT = 30
MIN_VIEWS = 100


def is_rate_meaningful(*, views: int, emails_sent: int) -> bool:
    """Whether a rate over ``views`` views and ``emails_sent`` emails says anything yet."""
    return views >= MIN_VIEWS or emails_sent >= MIN_EMAILS_SENT


# A change within this fraction either way counts as steady.
STEADY_BAND = 0.10

# Posts in these states need a person (see marketing.models.PostState).
NEEDS_PERSON: tuple[PostState, ...] = (
    PostState.FAILED,
    PostState.UNCONFIRMED,
    PostState.NEEDS_RECONNECT,
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


_F = TypeVar("_F", bound=_Frozen)


def trusted(cls: type[_F], values: dict[str, Any]) -> _F:
    """A ``cls`` holding ``values`` -- every field, already of its type -- without
    validation: what ``model_construct`` makes, without its per-field loop over aliases and
    defaults (about 11 us a ``Metrics``, 2 us this way; a year's overview builds some
    10,000).  For values the database summed or the code computed, never for input.
    ``values`` is kept, not copied."""
    made = cls.__new__(cls)
    _set(made, "__dict__", values)
    _set(made, "__pydantic_fields_set__", set(values))
    _set(made, "__pydantic_extra__", None)
    _set(made, "__pydantic_private__", None)
    return made


_set = object.__setattr__


# What performance records hold; interactions and reach follow from these per channel.
RAW_FIELDS: tuple[str, ...] = PERFORMANCE_SUMS


class Metrics(_Frozen):
    """Sums over a set of performance records (zeros when there were none)."""

    posts: int = 0
    views: int = 0
    reactions: int = 0
    comments: int = 0
    shares: int = 0
    clicks: int = 0
    opens: int = 0
    unsubscribes: int = 0
    emails_sent: int = 0
    interactions: int = 0
    reach: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def engagement_rate(self) -> float:
        """Interactions per unit of reach (see the module docstring); 0 without reach."""
        return engagement.rate(self.interactions, self.reach)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate_meaningful(self) -> bool:
        """False while the rate rests on too few emails and views (see :data:`MIN_VIEWS`)."""
        return is_rate_meaningful(views=self.views, emails_sent=self.emails_sent)

    @classmethod
    def of_channel(cls, channel: str, sums: Mapping[Any, Any]) -> Metrics:
        """One channel's sums of :data:`RAW_FIELDS`, with its interactions and reach."""
        values = {name: int(sums[name] or 0) for name in RAW_FIELDS}
        # engagement.interactions and reach, on integers already at hand (no lookups
        # through Mapping or getattr: this runs for every channel of every community).
        values["interactions"] = sum(values[n] for n in engagement.interaction_fields(channel))
        values["reach"] = values[engagement.reach_field(channel)]
        # Built from integers the database summed: nothing to validate (and it is hot).
        return trusted(cls, values)

    @classmethod
    def total(cls, items: Iterable[Metrics]) -> Metrics:
        """The sums of ``items`` (zeros for none)."""
        values = dict.fromkeys(_SUMMED, 0)
        for item in items:
            for name, value in item.__dict__.items():
                if name in values:
                    values[name] += value
        return trusted(cls, values)

    def __add__(self, other: Metrics) -> Metrics:
        return Metrics.total((self, other))


_SUMMED = (*RAW_FIELDS, "interactions", "reach")

# The rows of every metric table (terminal and HTML), in reading order.
METRIC_ROWS: tuple[str, ...] = (
    "posts",
    *engagement.SNAPSHOT_METRICS,
    "emails_sent",
    "opens",
    "unsubscribes",
    *engagement.DERIVED,
)


def relative_change(current: int, previous: int) -> float | None:
    """``(current - previous) / previous``; None when there was nothing before."""
    if previous == 0:
        return None
    return (current - previous) / previous


class Change(_Frozen):
    """How a period compares with the one before it."""

    posts: float | None
    views: float | None
    interactions: float | None
    reach: float | None
    # Rate difference in percentage points: 1.2 is +1.2 points (3.0 % -> 4.2 %); None when the
    # previous period had no reach (nothing to compare with).
    engagement_rate_points: float | None

    @classmethod
    def between(cls, current: Metrics, previous: Metrics) -> Change:
        """The change from ``previous`` to ``current``."""
        return cls(
            posts=relative_change(current.posts, previous.posts),
            views=relative_change(current.views, previous.views),
            interactions=relative_change(current.interactions, previous.interactions),
            reach=relative_change(current.reach, previous.reach),
            engagement_rate_points=rate_points(current, previous),
        )


def rate_points(current: Metrics, previous: Metrics) -> float | None:
    """The rate's change in percentage points; None when the previous period had no reach."""
    if previous.reach == 0:
        return None
    return (current.engagement_rate - previous.engagement_rate) * 100


Trend = Literal["inactive", "new", "growing", "steady", "declining"]


def trend_of(current: Metrics, previous: Metrics) -> Trend:
    """A one-word verdict on interactions against the previous period."""
    if current.posts == 0 and current.reach == 0 and current.interactions == 0:
        return "inactive"
    change = relative_change(current.interactions, previous.interactions)
    if change is None:
        return "new" if current.interactions > 0 else "steady"
    if change >= STEADY_BAND:
        return "growing"
    if change <= -STEADY_BAND:
        return "declining"
    return "steady"


class ChannelLine(_Frozen):
    """One channel (or ``all``) of one community or of the programme, now and before."""

    channel: ChannelName
    current: Metrics
    previous: Metrics

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def change(self) -> Change:
        """The change from the previous period."""
        return Change.between(self.current, self.previous)


class CommunityRef(_Frozen):
    """Who a row is about."""

    slug: str
    name_th: str
    name_en: str
    province: str


class Rank(_Frozen):
    """A community's place in the programme by engagement rate (1 = highest; ties share)."""

    by_rate: int
    by_interactions: int
    of: int


class DayPoint(_Frozen):
    """One channel on one local day."""

    day: date
    channel: ChannelName
    views: int
    interactions: int
    reach: int


class PostResult(_Frozen):
    """One post and what it achieved so far (its newest metrics)."""

    post_id: int
    campaign_slug: str
    community_slug: str
    community_name_th: str
    channel: ChannelName
    state: PostState
    label: str  # title, subject or the start of the message
    scheduled_at: datetime
    published_at: datetime | None
    permalink: str | None
    views: int
    reactions: int
    comments: int
    shares: int
    clicks: int
    emails_sent: int
    opens: int
    unsubscribes: int
    interactions: int
    reach: int
    last_error: str | None = None
    action_hint: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def engagement_rate(self) -> float:
        """Interactions per unit of reach; 0 without reach."""
        return engagement.rate(self.interactions, self.reach)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rate_meaningful(self) -> bool:
        """False while the rate rests on too few emails and views (see :data:`MIN_VIEWS`)."""
        return is_rate_meaningful(views=self.views, emails_sent=self.emails_sent)


class CommunityReport(_Frozen):
    """One community over a period."""

    kind: Literal["community"] = "community"
    community: CommunityRef
    period: Period
    previous_period: Period
    channels: list[ChannelLine]  # facebook, youtube, email, then all
    rank: Rank
    trend: list[DayPoint]  # every day x channel of the period, zeros included
    best_posts: list[PostResult]
    # People's clicks to the community's shop, booking and product pages in the period, by
    # the channel the link was posted on (marketing.destinations): a figure of its own,
    # never part of the channels' engagement.
    destination_clicks: dict[str, int] = {}

    @property
    def total(self) -> ChannelLine:
        """The ``all`` line."""
        return self.channels[-1]


class OverviewRow(_Frozen):
    """One community in the programme overview."""

    community: CommunityRef
    channels: list[ChannelLine]  # facebook, youtube, email, then all
    rank: Rank
    trend: Trend

    @property
    def total(self) -> ChannelLine:
        """The ``all`` line."""
        return self.channels[-1]


class ProgrammeOverview(_Frozen):
    """Every community side by side over a period, and the programme's totals."""

    kind: Literal["overview"] = "overview"
    period: Period
    previous_period: Period
    sort: str  # a key of marketing.reports.queries.SORT_KEYS
    reverse: bool  # the key's natural order turned round
    rows: list[OverviewRow]
    programme: list[ChannelLine]  # facebook, youtube, email, then all
    trend: list[DayPoint]  # the whole programme, every day x channel

    @property
    def total(self) -> ChannelLine:
        """The programme's ``all`` line."""
        return self.programme[-1]


class StateCount(_Frozen):
    """How many posts of a campaign are in one state on one channel."""

    channel: ChannelName
    state: PostState
    posts: int


class CampaignRef(_Frozen):
    """Which campaign."""

    slug: str
    name: str
    status: str
    window_start: datetime | None
    window_end: datetime | None


class ChannelSum(_Frozen):
    """What one channel (or ``all``) achieved; ``posts`` counts published posts."""

    channel: ChannelName
    metrics: Metrics


class CampaignCommunityLine(_Frozen):
    """One community on one channel of a campaign."""

    community: CommunityRef
    channel: ChannelName
    published: int
    needs_person: int
    waiting: int  # scheduled, queued or publishing
    cancelled: int
    metrics: Metrics


class VariantArmLine(_Frozen):
    """One variant of an e-mail variant test."""

    key: str  # a (the campaign's own subject), b, ...
    subject: str
    sent: int
    clicked: int  # subscribers who clicked
    rate: float
    low: float  # 95 % credible interval of the click rate
    high: float
    probability_best: float | None  # None: not decided yet


class VariantTestLine(_Frozen):
    """One e-mail variant test: a community's occurrence, its verdict and its variants."""

    community: CommunityRef
    occurrence: str
    outcome: Literal["winner", "no_clear_winner", "too_few", "waiting"]
    winner: str | None
    chosen: str | None  # what the rest of the audience got
    needed: float | None  # the probability of being best a winner needed
    arms: list[VariantArmLine]


class PostVariantArmLine(_Frozen):
    """One variant of a test over a campaign's posts (Facebook)."""

    key: str  # a (the campaign's own text and photo), b, ...
    message: str
    photo: str  # the photo's file name; "" if the variant has none
    posts: int  # test posts published with it
    views: int
    interactions: int  # reactions + comments + shares + clicks (marketing.engagement)
    rate: float  # interactions per view
    low: float  # 95 % credible interval of the rate
    high: float
    probability_best: float | None  # None: not decided yet


class PostVariantTestLine(_Frozen):
    """One test over a campaign's posts: its verdict and its variants."""

    channel: str
    communities: list[str]  # Thai names of the communities whose posts were the test
    outcome: Literal["winner", "no_clear_winner", "too_few", "waiting"]
    winner: str | None
    chosen: str | None  # what the rest of the posts got
    needed: float | None
    rest_posts: int
    arms: list[PostVariantArmLine]


class CampaignReport(_Frozen):
    """A campaign: what was published where, what needs a person, what it achieved."""

    kind: Literal["campaign"] = "campaign"
    campaign: CampaignRef
    states: list[StateCount]
    achieved: list[ChannelSum]  # facebook, youtube, email, then all
    communities: list[CampaignCommunityLine]
    needs_person: list[PostResult]
    best_posts: list[PostResult]
    posts: list[PostResult]  # every post of the campaign, in schedule order
    variant_tests: list[VariantTestLine] = []  # e-mail variant tests, in schedule order
    post_variant_tests: list[PostVariantTestLine] = []  # tests over posts (Facebook)
