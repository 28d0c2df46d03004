"""approved versions: the campaign file and posts as last approved, for the approver's diff (#14)

Revision ID: 0010
Revises: 0009 (account tokens)
Create Date: 2026-12-01 14:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(sa.Column("approved_source_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("approved_posts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("approved_posts")
        batch.drop_column("approved_source_text")
