"""Engagement reports: per community, the programme overview, and per campaign.

Query functions (:mod:`marketing.reports.queries`) return report objects
(:mod:`marketing.reports.rows`); renderers turn them into a terminal table, CSV, JSON or one
self-contained HTML file.
"""

from __future__ import annotations

from marketing.reports.period import Period, resolve_period
from marketing.reports.queries import (
    SORT_KEYS,
    ReportSubjectNotFound,
    campaign_report,
    community_report,
    programme_overview,
)
from marketing.reports.rows import CampaignReport, CommunityReport, ProgrammeOverview

__all__ = [
    "SORT_KEYS",
    "CampaignReport",
    "CommunityReport",
    "Period",
    "ProgrammeOverview",
    "ReportSubjectNotFound",
    "campaign_report",
    "community_report",
    "programme_overview",
    "resolve_period",
]
