"""report summaries: performance per community and month, and per programme day (#19)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:20:00.000000

Both tables are derived from ``community_performance`` (``marketing.performance.summarise``
keeps them); the upgrade fills them from the records already there.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUMS = (
    "posts",
    "views",
    "reactions",
    "comments",
    "shares",
    "clicks",
    "opens",
    "unsubscribes",
    "emails_sent",
)


def _channel() -> sa.Enum:
    return sa.Enum("facebook", "youtube", "email", name="channelkind", native_enum=False, length=32)


def _sums() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in SUMS]


def upgrade() -> None:
    op.create_table(
        "community_month_performance",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("channel", _channel(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        *_sums(),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["community.id"],
            name=op.f("fk_community_month_performance_community_id_community"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_month_performance")),
        sa.UniqueConstraint(
            "community_id",
            "channel",
            "month",
            name=op.f("uq_community_month_performance_community_id_channel_month"),
        ),
    )
    with op.batch_alter_table("community_month_performance", schema=None) as batch_op:
        batch_op.create_index(
            "ix_community_month_performance_month", ["month", "community_id"], unique=False
        )
    op.create_table(
        "programme_day_performance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", _channel(), nullable=False),
        *_sums(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_day_performance")),
        sa.UniqueConstraint(
            "day", "channel", name=op.f("uq_programme_day_performance_day_channel")
        ),
    )

    sums = ", ".join(f"SUM({name})" for name in SUMS)
    names = ", ".join(SUMS)
    month = (
        "CAST(date_trunc('month', day) AS DATE)"
        if op.get_bind().dialect.name == "postgresql"
        else "date(day, 'start of month')"
    )
    op.execute(
        f"INSERT INTO community_month_performance (community_id, channel, month, {names}) "
        f"SELECT community_id, channel, {month}, {sums} FROM community_performance "
        f"GROUP BY community_id, channel, {month}"
    )
    op.execute(
        f"INSERT INTO programme_day_performance (day, channel, {names}) "
        f"SELECT day, channel, {sums} FROM community_performance GROUP BY day, channel"
    )


def downgrade() -> None:
    op.drop_table("programme_day_performance")
    with op.batch_alter_table("community_month_performance", schema=None) as batch_op:
        batch_op.drop_index("ix_community_month_performance_month")
    op.drop_table("community_month_performance")
