"""Reports as CSV and JSON, for spreadsheets and programs.

Both keep ISO 8601 dates (common era) and fractions for rates (0.0345 = 3.45 %), whatever the
display options, so a program never has to guess.  A CSV column of a change names its unit:
``change_*_fraction`` (0.25 = +25 %) and ``change_engagement_rate_points`` (percentage points:
1.2 = +1.2 points); it is empty (JSON: ``null``) when the previous period had nothing to
compare with.  ``rate_meaningful`` is false while a rate rests on too few emails and views.

CSV is a single long table per report:

* community: one row per channel and one ``all`` row;
* overview: one row per community and channel (``facebook``, ``youtube``, ``email``, ``all``);
* campaign: one row per post.

JSON is the whole report object (``kind`` says which report it is).

Cells that a spreadsheet would run as a formula (text beginning with ``=``, ``+``, ``-``,
``@``, tab or carriage return) are written with a leading ``'`` (:mod:`marketing.spreadsheet`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from marketing import engagement
from marketing.reports.rows import (
    CampaignReport,
    ChannelLine,
    CommunityRef,
    CommunityReport,
    Metrics,
    PostResult,
    ProgrammeOverview,
    Rank,
)
from marketing.spreadsheet import csv_text

Report = CommunityReport | ProgrammeOverview | CampaignReport

METRIC_COLUMNS: tuple[str, ...] = (
    *Metrics.model_fields,
    "engagement_rate",
    "rate_meaningful",
)


def _metric_values(metrics: Metrics) -> list[Any]:
    return [getattr(metrics, name) for name in METRIC_COLUMNS]


def _line_columns() -> list[str]:
    return [
        "channel",
        *METRIC_COLUMNS,
        *(f"previous_{name}" for name in METRIC_COLUMNS),
        "change_posts_fraction",
        "change_views_fraction",
        "change_interactions_fraction",
        "change_reach_fraction",
        "change_engagement_rate_points",
    ]


def _line_values(line: ChannelLine) -> list[Any]:
    change = line.change
    return [
        line.channel,
        *_metric_values(line.current),
        *_metric_values(line.previous),
        _blank_none(change.posts),
        _blank_none(change.views),
        _blank_none(change.interactions),
        _blank_none(change.reach),
        _blank_none(change.engagement_rate_points),
    ]


def _blank_none(value: float | None) -> float | str:
    return "" if value is None else value


def _community_columns() -> list[str]:
    return ["community_slug", "community_name_th", "province"]


def _community_values(community: CommunityRef) -> list[Any]:
    return [community.slug, community.name_th, community.province]


def _rank_columns() -> list[str]:
    return ["rank_by_rate", "rank_by_interactions", "communities"]


def _rank_values(rank: Rank) -> list[Any]:
    return [rank.by_rate, rank.by_interactions, rank.of]


POST_COLUMNS: tuple[str, ...] = (
    "post_id",
    "campaign_slug",
    "community_slug",
    "channel",
    "state",
    "label",
    "scheduled_at",
    "published_at",
    "permalink",
    *engagement.SNAPSHOT_METRICS,
    "emails_sent",
    "opens",
    "unsubscribes",
    *engagement.DERIVED,
    "rate_meaningful",
    "last_error",
    "action_hint",
)


def _post_values(post: PostResult) -> list[Any]:
    values = []
    for name in POST_COLUMNS:
        value = getattr(post, name)
        if value is None:
            value = ""
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        values.append(value)
    return values


def _write(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    return csv_text(header, rows)


def to_csv(report: Report) -> str:
    """``report`` as CSV text (UTF-8 when written; see :func:`write_csv` for spreadsheets)."""
    if isinstance(report, CommunityReport):
        period = [report.period.start.isoformat(), report.period.end.isoformat()]
        return _write(
            [
                *_community_columns(),
                "period_start",
                "period_end",
                *_line_columns(),
                *_rank_columns(),
                "destination_clicks",
            ],
            (
                [
                    *_community_values(report.community),
                    *period,
                    *_line_values(line),
                    *_rank_values(report.rank),
                    sum(report.destination_clicks.values())
                    if line.channel == "all"
                    else report.destination_clicks.get(line.channel, 0),
                ]
                for line in report.channels
            ),
        )
    if isinstance(report, ProgrammeOverview):
        period = [report.period.start.isoformat(), report.period.end.isoformat()]
        return _write(
            [
                *_community_columns(),
                "period_start",
                "period_end",
                *_line_columns(),
                *_rank_columns(),
                "trend",
            ],
            (
                [
                    *_community_values(row.community),
                    *period,
                    *_line_values(line),
                    *_rank_values(row.rank),
                    row.trend,
                ]
                for row in report.rows
                for line in row.channels
            ),
        )
    return _write(POST_COLUMNS, (_post_values(post) for post in report.posts))


def to_json(report: Report) -> str:
    """``report`` as indented JSON, Thai kept as it is (not ``\\u`` escapes)."""
    return report.model_dump_json(indent=2) + "\n"
