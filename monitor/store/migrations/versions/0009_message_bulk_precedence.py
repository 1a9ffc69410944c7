"""message.bulk_precedence

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 05:00:00

- ``message.bulk_precedence``: ``Precedence: bulk|junk|list`` on a message that is no discussion-list post;
  the engine counts it as bulk mail unless it was addressed to the team personally (issue 8). Messages
  stored before read as False until a resync reads them again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(
            sa.Column("bulk_precedence", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("bulk_precedence")
