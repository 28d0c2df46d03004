"""each community's shop, booking and product pages, and the click-throughs to them per
destination, channel and day (#17)

Revision ID: 0017
Revises: 0016 (report generation)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "community_destination",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("label_th", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_community_destination_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_destination")),
        sa.UniqueConstraint(
            "community_id", "kind", name=op.f("uq_community_destination_community_id_kind")
        ),
    )
    op.create_table(
        "destination_click_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("destination_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["community_destination.id"],
            name=op.f("fk_destination_click_day_destination_id_community_destination"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_destination_click_day_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destination_click_day")),
        sa.UniqueConstraint(
            "destination_id",
            "channel",
            "day",
            name=op.f("uq_destination_click_day_destination_id_channel_day"),
        ),
    )
    op.create_index(
        op.f("ix_destination_click_day_community_id"),
        "destination_click_day",
        ["community_id"],
    )
    op.create_index(op.f("ix_destination_click_day_day"), "destination_click_day", ["day"])


def downgrade() -> None:
    op.drop_index(op.f("ix_destination_click_day_day"), table_name="destination_click_day")
    op.drop_index(op.f("ix_destination_click_day_community_id"), table_name="destination_click_day")
    op.drop_table("destination_click_day")
    op.drop_table("community_destination")
