"""pipeline: heartbeats, metric days, collection schedule

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 00:11:27.136924
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        # Existing rows get a value through a server default that is dropped afterwards.
        batch_op.add_column(
            sa.Column(
                "heartbeat_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
        batch_op.add_column(
            sa.Column("reconcile_tries", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("attempt", schema=None) as batch_op:
        batch_op.alter_column("heartbeat_at", server_default=None)
        batch_op.alter_column("reconcile_tries", server_default=None)

    with op.batch_alter_table("email_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("day", sa.Date(), nullable=True))
    # Rows from before this revision: the UTC+7 day (every community so far is in Bangkok).
    op.execute(
        "UPDATE email_event SET day = "
        + (
            "DATE(occurred_at, '+7 hours')"
            if op.get_bind().dialect.name == "sqlite"
            else "CAST((occurred_at AT TIME ZONE 'Asia/Bangkok') AS DATE)"
        )
    )
    with op.batch_alter_table("email_event", schema=None) as batch_op:
        batch_op.alter_column("day", existing_type=sa.Date(), nullable=False)
        batch_op.create_index("ix_email_event_day", ["day"], unique=False)

    with op.batch_alter_table("metric_snapshot", schema=None) as batch_op:
        batch_op.add_column(sa.Column("day", sa.Date(), nullable=True))
    # Rows from before this revision: the UTC+7 day (every community so far is in Bangkok).
    op.execute(
        "UPDATE metric_snapshot SET day = "
        + (
            "DATE(collected_at, '+7 hours')"
            if op.get_bind().dialect.name == "sqlite"
            else "CAST((collected_at AT TIME ZONE 'Asia/Bangkok') AS DATE)"
        )
    )
    with op.batch_alter_table("metric_snapshot", schema=None) as batch_op:
        batch_op.alter_column("day", existing_type=sa.Date(), nullable=False)
        batch_op.create_index("ix_metric_snapshot_day", ["day"], unique=False)

    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.add_column(sa.Column("metrics_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("transient_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(
            batch_op.f("ix_post_metrics_due_at"), ["metrics_due_at"], unique=False
        )
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.alter_column("transient_failures", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_metrics_due_at"))
        batch_op.drop_column("transient_failures")
        batch_op.drop_column("metrics_due_at")

    with op.batch_alter_table("metric_snapshot", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_snapshot_day")
        batch_op.drop_column("day")

    with op.batch_alter_table("email_event", schema=None) as batch_op:
        batch_op.drop_index("ix_email_event_day")
        batch_op.drop_column("day")

    with op.batch_alter_table("attempt", schema=None) as batch_op:
        batch_op.drop_column("reconcile_tries")
        batch_op.drop_column("heartbeat_at")
