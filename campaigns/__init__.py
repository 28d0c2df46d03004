"""Campaign definitions: what to publish, for which communities, on which channels, when.

A campaign is a YAML file (``docs/campaigns.md``; examples in ``campaigns/examples/``).  The
flow is::

    file --load--> CampaignDefinition --plan (reads the database)--> Plan --apply--> rows
          (schema, schedule,             (communities, accounts,            Campaign (draft)
           template syntax)               rendering, channel limits)        + one Post per
                                                                            (community, account,
                                                                             occurrence)

Modules: :mod:`~campaigns.schema` (the format), :mod:`~campaigns.loader` (reading with exact
errors), :mod:`~campaigns.schedule` (time zones, recurrence, quiet hours),
:mod:`~campaigns.besttime` (best-time slots from a snapshot of the figures),
:mod:`~campaigns.templates` (sandboxed Jinja2), :mod:`~campaigns.formatting` (Thai dates,
numbers, tracked links), :mod:`~campaigns.planning` (posts from a definition) and
:mod:`~campaigns.lifecycle` (apply, approve, pause, resume, cancel, status).  The planner
reads its reference data (communities, accounts, highlights, subscribers' tags, earlier posts)
through :class:`campaigns.reference.Reference` as plain values and imports no model;
:mod:`marketing.plan_reference` answers from the database.

Pure code: no Celery and no network.  Every problem with a file is reported at once as
:class:`marketing.problems.InvalidInput`, each with its file, line, column and field.
"""

from campaigns.lifecycle import (
    ApplySummary,
    ApprovalOutdated,
    CampaignNotFound,
    CampaignReport,
    CampaignStateError,
    apply_campaign,
    approval_hash,
    approve_campaign,
    campaign_report,
    cancel_campaign,
    list_campaigns,
    pause_campaign,
    plan_file,
    resume_campaign,
)
from campaigns.loader import CampaignDefinition, load_campaign, load_campaign_text, read_campaign
from campaigns.planning import Plan, PlannedPost, idempotency_key, plan_campaign

__all__ = [
    "ApplySummary",
    "ApprovalOutdated",
    "CampaignDefinition",
    "CampaignNotFound",
    "CampaignReport",
    "CampaignStateError",
    "Plan",
    "PlannedPost",
    "apply_campaign",
    "approval_hash",
    "approve_campaign",
    "campaign_report",
    "cancel_campaign",
    "idempotency_key",
    "list_campaigns",
    "load_campaign",
    "load_campaign_text",
    "pause_campaign",
    "plan_campaign",
    "plan_file",
    "read_campaign",
    "resume_campaign",
]
