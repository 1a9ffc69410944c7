"""calls, per-source engine stamp, wall seconds, breached_at

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 02:45:00

- ``call``: one row per phone call (all its legs), unique on (source, external_id).
- ``source_cursor.engine_changed_at``: moves only when a source adds an event or changes a field the engine
  reads; a flag change (``\\Seen``) no longer rebuilds a team's items.
- ``awaiting.owner``: the member who answers for an item.
- ``awaiting.wall_seconds`` beside ``business_seconds`` (which now always holds business time).
- ``breach.escalated_at`` -> ``breached_at`` (when it became a breach; set for breaches opened as one).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(length=20), nullable=False),
        sa.Column("caller", sa.String(length=100), nullable=False),
        sa.Column("callee", sa.String(length=100), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("answered_by", sa.String(length=100), nullable=True),
        sa.Column("line", sa.String(length=100), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=False),
        sa.Column("talk_seconds", sa.Float(), nullable=False),
        sa.Column("legs", sa.Integer(), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "external_id", name="uq_call_source_external"),
    )
    op.create_index("ix_call_started_at", "call", ["started_at"])
    with op.batch_alter_table("source_cursor") as batch:
        batch.add_column(sa.Column("engine_changed_at", sa.DateTime(timezone=True), nullable=True))
    # Every source that has messages starts with the time its last message was stored.
    op.execute(
        "UPDATE source_cursor SET engine_changed_at = "
        "(SELECT MAX(message.ingested_at) FROM message WHERE message.source = source_cursor.source)"
    )
    with op.batch_alter_table("awaiting") as batch:
        batch.add_column(sa.Column("wall_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("owner", sa.String(length=320), nullable=True))
    # Items inside the lookback get both figures (business_seconds held wall time for wall-clock rules)
    # at the first evaluation after the upgrade, which re-judges every item of the window.
    with op.batch_alter_table("breach") as batch:
        batch.alter_column("escalated_at", new_column_name="breached_at")
    op.execute("UPDATE breach SET breached_at = opened_at WHERE level = 'breach' AND breached_at IS NULL")


def downgrade() -> None:
    op.execute("UPDATE breach SET breached_at = NULL WHERE breached_at = opened_at")
    with op.batch_alter_table("breach") as batch:
        batch.alter_column("breached_at", new_column_name="escalated_at")
    with op.batch_alter_table("awaiting") as batch:
        batch.drop_column("owner")
        batch.drop_column("wall_seconds")
    with op.batch_alter_table("source_cursor") as batch:
        batch.drop_column("engine_changed_at")
    op.drop_index("ix_call_started_at", table_name="call")
    op.drop_table("call")
