"""The ``marketing`` command: one group, one module per area (db, communities, ...).

Each area is imported only when its command runs (:class:`~marketing.cli.base.LazyGroup`);
the short help below is what ``marketing --help`` shows without importing it.
"""

from __future__ import annotations

from marketing.cli.base import main

main.lazy.update(
    {
        "accounts": (
            "marketing.cli.posts:accounts",
            "Channel accounts and their health.",
        ),
        "backup": (
            "marketing.cli.backup:backup",
            "Write the database and every media file to the archive PATH (safe while workers run).",
        ),
        "campaign": (
            "marketing.cli.campaign:campaign",
            "Campaign files and the campaigns applied from them (format: docs/campaigns.md).",
        ),
        "communities": (
            "marketing.cli.communities:communities",
            "Communities, their channel accounts, subscribers and highlights.",
        ),
        "db": (
            "marketing.cli.db:db",
            "Create, upgrade and inspect the database.",
        ),
        "demo": (
            "marketing.cli.demo:demo",
            (
                "Run a whole campaign on embedded defaults: ten sample communities, a Thai "
                "campaign on Facebook, YouTube and email (local sandboxes), a real worker, "
                "engagement, reports."
            ),
        ),
        "doctor": (
            "marketing.cli.doctor:doctor",
            (
                "Check this host's settings and surroundings: secrets, file permissions, URLs "
                "and TLS, the database and its migrations, Redis, the clock, the SMTP relay and "
                "every account's health."
            ),
        ),
        "posts": (
            "marketing.cli.posts:posts",
            "Scheduled and published posts, and the ones that need a person.",
        ),
        "restore": (
            "marketing.cli.backup:restore",
            "Restore the archive PATH into the configured database and media folder.",
        ),
        "report": (
            "marketing.cli.report:report",
            (
                "Engagement reports: per community, the programme overview, per campaign, and "
                "best times."
            ),
        ),
        "sandbox": (
            "marketing.cli.demo:sandbox",
            (
                "Serve the Graph API, YouTube and SMTP sandboxes until Ctrl-C, knowing every "
                "account in the database (token: sandbox-<secret name>), and print the settings "
                "that use them."
            ),
        ),
        "serve": (
            "marketing.cli.serve:serve",
            (
                "Run the web app for the marketing staff: pages, email tracking endpoints and the"
                " JSON API."
            ),
        ),
        "status": (
            "marketing.cli.pipeline:status",
            (
                "Show whether publishing is moving: posts by state, what is due, problems, the "
                "last sign of life of each component, and queue depths."
            ),
        ),
        "subscribers": (
            "marketing.cli.subscribers:subscribers",
            "Requests from subscribers under the PDPA: export or erase what is held about them.",
        ),
        "users": (
            "marketing.cli.users:users",
            "Staff accounts of the web app (roles: viewer < editor < approver < admin).",
        ),
        "worker": (
            "marketing.cli.pipeline:worker",
            (
                "Run a Celery worker and the scheduler (beat) in one process: the whole pipeline "
                "on one machine."
            ),
        ),
    }
)

__all__ = ["main"]
