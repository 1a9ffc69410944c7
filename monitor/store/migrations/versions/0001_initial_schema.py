"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 00:43:03.284015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "awaiting",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("item_key", sa.String(length=500), nullable=False),
        sa.Column("conversation", sa.String(length=500), nullable=False),
        sa.Column("customer", sa.String(length=320), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_id", sa.String(length=500), nullable=True),
        sa.Column("responder", sa.String(length=320), nullable=True),
        sa.Column("business_seconds", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team", "channel", "item_key", name="uq_awaiting_team_channel_key"),
    )
    with op.batch_alter_table("awaiting", schema=None) as batch_op:
        batch_op.create_index("ix_awaiting_open", ["team", "responded_at"], unique=False)

    op.create_table(
        "breach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("breach", schema=None) as batch_op:
        batch_op.create_index("ix_breach_open", ["team", "rule", "resolved_at"], unique=False)

    op.create_table(
        "mailbox_count",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("folder", sa.String(length=200), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("unseen", sa.Integer(), nullable=False),
        sa.Column("unanswered", sa.Integer(), nullable=False),
        sa.Column("oldest", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "folder"),
    )
    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=False),
        sa.Column("folder", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=500), nullable=True),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_addr", sa.String(length=320), nullable=True),
        sa.Column("from_name", sa.Text(), nullable=False),
        sa.Column("sender_addr", sa.String(length=320), nullable=True),
        sa.Column("reply_to", sa.Text(), nullable=False),
        sa.Column("to_addrs", sa.Text(), nullable=False),
        sa.Column("cc_addrs", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("in_reply_to", sa.String(length=500), nullable=True),
        sa.Column("references", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.String(length=200), nullable=True),
        sa.Column("automated", sa.String(length=50), nullable=True),
        sa.Column("flags", sa.String(length=200), nullable=False),
        sa.Column("holding_marker", sa.Boolean(), nullable=False),
        sa.Column("preview", sa.Text(), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "external_id", name="uq_message_source_external"),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_date"), ["date"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_ingested_at"), ["ingested_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_message_id"), ["message_id"], unique=False)

    op.create_table(
        "source_cursor",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:

    op.drop_table("source_cursor")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_message_id"))
        batch_op.drop_index(batch_op.f("ix_message_ingested_at"))
        batch_op.drop_index(batch_op.f("ix_message_date"))

    op.drop_table("message")
    op.drop_table("mailbox_count")
    with op.batch_alter_table("breach", schema=None) as batch_op:
        batch_op.drop_index("ix_breach_open")

    op.drop_table("breach")
    with op.batch_alter_table("awaiting", schema=None) as batch_op:
        batch_op.drop_index("ix_awaiting_open")

    op.drop_table("awaiting")
