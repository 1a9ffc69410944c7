"""breaches judged on incomplete data name the sources that could not be read

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 03:30:00

- ``breach.unreadable``: the team's sources that could not be read when the breach opened or became a
  breach (space-separated; empty when it was judged on complete data).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("breach") as batch:
        batch.add_column(sa.Column("unreadable", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("breach") as batch:
        batch.drop_column("unreadable")
