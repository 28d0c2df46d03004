"""privacy: consent evidence, takedowns, tallies of purged e-mail events (#18)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 11:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_form", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("consent_address", sa.String(length=100), nullable=True))
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taken_down_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("takedown_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("takedown_reason", sa.Text(), nullable=True))
    op.create_table(
        "email_event_tally",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "facebook",
                "youtube",
                "email",
                name="channelkind",
                native_enum=False,
                create_constraint=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("unsubscribes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_email_event_tally_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_event_tally")),
        sa.UniqueConstraint(
            "community_id",
            "channel",
            "day",
            name=op.f("uq_email_event_tally_community_id_channel_day"),
        ),
    )


def downgrade() -> None:
    op.drop_table("email_event_tally")
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.drop_column("takedown_reason")
        batch_op.drop_column("takedown_by")
        batch_op.drop_column("taken_down_at")
    with op.batch_alter_table("subscriber", schema=None) as batch_op:
        batch_op.drop_column("consent_address")
        batch_op.drop_column("consent_form")
