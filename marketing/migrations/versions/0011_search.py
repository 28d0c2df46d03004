"""search: trigram indexes for the one search box (pg_trgm on PostgreSQL, FTS5 trigram tables
kept by triggers on SQLite); post overrides: a person's change to one post (#14)

Revision ID: 0011
Revises: 0010 (approved versions)
Create Date: 2026-12-01 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from marketing import search

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "post_override",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("changed_by", sa.String(length=80), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["post.id"],
            name=op.f("fk_post_override_post_id_post"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_override")),
        sa.UniqueConstraint("post_id", name=op.f("uq_post_override_post_id")),
    )
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        search.install_pg_index(connection)
    elif connection.dialect.name == "sqlite":
        search.install_sqlite_index(connection)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        search.drop_pg_index(connection)
    elif connection.dialect.name == "sqlite":
        search.drop_sqlite_index(connection)
    op.drop_table("post_override")
