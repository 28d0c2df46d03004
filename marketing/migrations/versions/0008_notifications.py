"""notifications: staff e-mail addresses and choices, events, digests, reconnect links (#13)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(
            sa.Column("notifications_off", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.alter_column("notifications_off", server_default=None)

    op.create_table(
        "reconnect_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_from", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["channel_account.id"],
            name=op.f("fk_reconnect_link_account_id_channel_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconnect_link")),
        sa.UniqueConstraint("nonce_hash", name=op.f("uq_reconnect_link_nonce_hash")),
    )
    with op.batch_alter_table("reconnect_link", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconnect_link_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "notification_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "account_reconnect",
                "post_problem",
                "draft_waiting",
                "youtube_quota",
                name="notificationkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_event")),
        sa.UniqueConstraint("key", name=op.f("uq_notification_event_key")),
    )
    with op.batch_alter_table("notification_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_event_window", ["window_start", "kind"], unique=False
        )

    op.create_table(
        "notification_digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "account_reconnect",
                "post_problem",
                "draft_waiting",
                "youtube_quota",
                name="notificationkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "sending",
                "sent",
                "failed",
                "unconfirmed",
                name="digeststate",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_notification_digest_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_digest")),
        sa.UniqueConstraint(
            "user_id",
            "kind",
            "window_start",
            name=op.f("uq_notification_digest_user_id_kind_window_start"),
        ),
    )


def downgrade() -> None:
    op.drop_table("notification_digest")
    with op.batch_alter_table("notification_event", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_event_window")
    op.drop_table("notification_event")
    with op.batch_alter_table("reconnect_link", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconnect_link_account_id"))
    op.drop_table("reconnect_link")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("notifications_off")
        batch_op.drop_column("email")
