"""media library: uploaded photos, videos and e-mail templates; chunked uploads (#14)

Revision ID: 0012
Revises: 0011 (search)
Create Date: 2026-12-01 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.String(length=400), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "image",
                "video",
                "template",
                name="mediakind",
                native_enum=False,
                create_constraint=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("container", sa.String(length=100), nullable=True),
        sa.Column("video_codec", sa.String(length=40), nullable=True),
        sa.Column("audio_codec", sa.String(length=40), nullable=True),
        sa.Column("thumbnail", sa.String(length=400), nullable=True),
        sa.Column("fit", sa.JSON(), nullable=False),
        sa.Column(
            "people",
            sa.Enum(
                "unknown",
                "none",
                "yes",
                name="peopleshown",
                native_enum=False,
                create_constraint=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "consent",
            sa.Enum(
                "not-needed",
                "missing",
                "written",
                "electronic",
                name="consent",
                native_enum=False,
                create_constraint=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("consent_note", sa.String(length=500), nullable=False),
        sa.Column("uploaded_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_item")),
        sa.UniqueConstraint("name", name=op.f("uq_media_item_name")),
        sa.UniqueConstraint("sha256", name=op.f("uq_media_item_sha256")),
    )
    op.create_table(
        "media_upload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_upload")),
        sa.UniqueConstraint("key", name=op.f("uq_media_upload_key")),
    )


def downgrade() -> None:
    op.drop_table("media_upload")
    op.drop_table("media_item")
