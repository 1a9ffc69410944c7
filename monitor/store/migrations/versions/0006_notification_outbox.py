"""the notification outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 03:20:00

- ``notification``: one row per breach, escalation step and recipient, written with the breach transition
  that caused it and sent by the dispatcher.
- ``ix_breach_subject``: finds a team's breach by rule and subject (the outbox looks up the breach it just
  opened; breach history and evaluation look breaches up by subject).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("breach_id", sa.Integer(), sa.ForeignKey("breach.id"), nullable=False),
        sa.Column("team", sa.String(200), nullable=False),
        sa.Column("notifier", sa.String(200), nullable=False),
        sa.Column("step", sa.String(50), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.UniqueConstraint("breach_id", "step", "recipient", name="uq_notification_breach_step_recipient"),
    )
    op.create_index("ix_notification_pending", "notification", ["outcome", "due_at"])
    op.create_index("ix_breach_subject", "breach", ["team", "rule", "subject"])


def downgrade() -> None:
    op.drop_index("ix_breach_subject", "breach")
    op.drop_index("ix_notification_pending", "notification")
    op.drop_table("notification")
