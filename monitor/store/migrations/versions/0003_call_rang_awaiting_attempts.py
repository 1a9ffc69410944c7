"""calls' rung extensions, awaiting attempts and outside-hours flag

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 03:00:00

- ``call.rang``: the extensions a call rang (comma-separated), for the owner of a missed call.
- ``awaiting.attempts``: repeated missed calls from one number while it waits are one item.
- ``awaiting.outside_hours``: the customer called while the team's calendar was closed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("rang", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("awaiting") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("outside_hours", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("awaiting") as batch:
        batch.drop_column("outside_hours")
        batch.drop_column("attempts")
    with op.batch_alter_table("call") as batch:
        batch.drop_column("rang")
