"""The ``marketing`` command: one group, one module per area (db, communities, ...)."""

from __future__ import annotations

from marketing.cli import (
    backup,
    campaign,
    communities,
    db,
    demo,
    doctor,
    pipeline,
    posts,
    report,
    serve,
    subscribers,
    users,
)
from marketing.cli.base import main

main.add_command(db.db)
main.add_command(communities.communities)
main.add_command(campaign.campaign)
main.add_command(posts.posts)
main.add_command(posts.accounts)
main.add_command(pipeline.worker)
main.add_command(pipeline.status)
main.add_command(report.report)
main.add_command(demo.demo)
main.add_command(demo.sandbox)
main.add_command(serve.serve)
main.add_command(users.users)
main.add_command(doctor.doctor)
main.add_command(backup.backup)
main.add_command(backup.restore)
main.add_command(subscribers.subscribers)

__all__ = ["main"]
