"""Engagement, defined once: which counts a channel reports, and the one formula.

    Facebook, YouTube: interactions = reactions + comments + shares + clicks; reach = views.
    Email:             interactions = clicks;                             reach = emails sent.
    engagement rate  = interactions / reach; 0 when there was no reach.

Over a period, and over several channels, the rate is computed from the *sums* of each
channel's interactions and reach (a rate weighted by reach), never as an average of rates.

The same rule in two forms, built from the same field lists so they cannot drift apart:
Python (:func:`interactions`, :func:`reach`, :func:`rate`) for values already in memory,
and SQL (:func:`interactions_sql`, :func:`reach_sql`, :func:`rate_sql`) for queries that
add up or rank in the database.  The rollup (``marketing.performance``), the report rows and
queries (``marketing.reports``) and the best times (``marketing.besttimes``) use these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Float, case, cast
from sqlalchemy.orm import InstrumentedAttribute

from marketing.models import ChannelKind

#: What a channel reports for a post, cumulative (the columns of ``MetricSnapshot``).
SNAPSHOT_METRICS: tuple[str, ...] = ("views", "reactions", "comments", "shares", "clicks")

#: The counts that are interactions, per kind of channel.
SOCIAL_INTERACTIONS: tuple[str, ...] = ("reactions", "comments", "shares", "clicks")
EMAIL_INTERACTIONS: tuple[str, ...] = ("clicks",)
#: The count that is reach, per kind of channel.
SOCIAL_REACH = "views"
EMAIL_REACH = "emails_sent"

#: What follows from the counts (reports show these after the counts).
DERIVED: tuple[str, ...] = ("interactions", "reach", "engagement_rate")

#: Digits a stored rate keeps (``CommunityPerformance.engagement_rate``).
STORED_RATE_DIGITS = 6


def _is_email(channel: ChannelKind | str) -> bool:
    return str(channel) == ChannelKind.EMAIL.value


def interaction_fields(channel: ChannelKind | str) -> tuple[str, ...]:
    """The counts that add up to ``channel``'s interactions."""
    return EMAIL_INTERACTIONS if _is_email(channel) else SOCIAL_INTERACTIONS


def reach_field(channel: ChannelKind | str) -> str:
    """The count that is ``channel``'s reach."""
    return EMAIL_REACH if _is_email(channel) else SOCIAL_REACH


def _value(counts: Mapping[str, Any] | Any, name: str) -> int:
    found = counts.get(name) if isinstance(counts, Mapping) else getattr(counts, name, None)
    return int(found or 0)


def interactions(channel: ChannelKind | str, counts: Mapping[str, Any] | Any) -> int:
    """``channel``'s interactions from ``counts`` (a mapping or an object with the counts
    as attributes; a missing or None count is 0)."""
    return sum(_value(counts, name) for name in interaction_fields(channel))


def reach(channel: ChannelKind | str, counts: Mapping[str, Any] | Any) -> int:
    """``channel``'s reach from ``counts`` (as :func:`interactions` reads them)."""
    return _value(counts, reach_field(channel))


def rate(interactions: int, reach: int) -> float:
    """Interactions per unit of reach; 0 without reach."""
    return interactions / reach if reach else 0.0


def engagement_rate(channel: ChannelKind | str, counts: Mapping[str, Any] | Any) -> float:
    """``channel``'s engagement rate from ``counts``, rounded as it is stored."""
    return round(rate(interactions(channel, counts), reach(channel, counts)), STORED_RATE_DIGITS)


# -- the same in SQL ------------------------------------------------------------------------

#: A channel column: a mapped attribute (``Post.channel``) or a subquery's column.
_Channel = ColumnElement[Any] | InstrumentedAttribute[Any]


def _sum(columns: Mapping[str, ColumnElement[Any]], names: tuple[str, ...]) -> Any:
    total: Any = columns[names[0]]
    for name in names[1:]:
        total = total + columns[name]
    return total


def interactions_sql(
    channel: _Channel, columns: Mapping[str, ColumnElement[Any]]
) -> ColumnElement[int]:
    """Interactions as one SQL expression over ``columns`` (count name -> column), for rows
    whose channel is the column ``channel``."""
    return case(
        (channel == ChannelKind.EMAIL, _sum(columns, EMAIL_INTERACTIONS)),
        else_=_sum(columns, SOCIAL_INTERACTIONS),
    )


def reach_sql(channel: _Channel, columns: Mapping[str, ColumnElement[Any]]) -> ColumnElement[int]:
    """Reach as one SQL expression (see :func:`interactions_sql`)."""
    return case((channel == ChannelKind.EMAIL, columns[EMAIL_REACH]), else_=columns[SOCIAL_REACH])


def rate_sql(interactions: ColumnElement[Any], reach: ColumnElement[Any]) -> ColumnElement[float]:
    """The rate as one SQL expression; 0 without reach (as :func:`rate`)."""
    return case((reach > 0, cast(interactions, Float) / reach), else_=0.0)
