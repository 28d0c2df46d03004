"""A subscriber's linked LINE user id, for multicasts to consenting subscribers (#16).

Revision ID: 0014
Revises: 0013 (learning)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriber") as batch:
        batch.add_column(sa.Column("line_user_id", sa.String(length=33), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriber") as batch:
        batch.drop_column("line_user_id")
