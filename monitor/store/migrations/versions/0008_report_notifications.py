"""the outbox carries reports

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 05:00:00

- ``notification.breach_id`` may be empty: a report's row belongs to no breach.
- ``notification.report_period``: the period a report row covers (``2026-10``, ``2026-W44``); empty for
  alerts. One report row per team, period and recipient, so a report goes out once per period even across
  restarts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.alter_column("breach_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("report_period", sa.String(20), nullable=True))
        batch.create_unique_constraint("uq_notification_report", ["team", "report_period", "recipient"])


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE breach_id IS NULL")
    with op.batch_alter_table("notification") as batch:
        batch.drop_constraint("uq_notification_report", type_="unique")
        batch.drop_column("report_period")
        batch.alter_column("breach_id", existing_type=sa.Integer(), nullable=False)
