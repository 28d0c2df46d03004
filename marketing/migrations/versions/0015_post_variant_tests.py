"""Variant tests over a campaign's posts (Facebook): one decision per test (#17).

Revision ID: 0015
Revises: 0014 (LINE subscribers)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("variant_decision") as batch:
        batch.add_column(sa.Column("test", sa.String(length=200), nullable=True))
        batch.create_unique_constraint(op.f("uq_variant_decision_test"), ["test"])


def downgrade() -> None:
    with op.batch_alter_table("variant_decision") as batch:
        batch.drop_constraint(op.f("uq_variant_decision_test"), type_="unique")
        batch.drop_column("test")
