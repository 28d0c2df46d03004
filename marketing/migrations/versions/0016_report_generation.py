"""The performance summaries' change counter, the key of the web app's cached overview (#19).

Revision ID: 0016
Revises: 0015 (post variant tests)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "report_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "generation", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_generation")),
    )
    op.bulk_insert(table, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("report_generation")
