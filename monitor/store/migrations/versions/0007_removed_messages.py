"""removed messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 05:00:00

- ``message.removed_at``: when the source reported the message deleted or moved out of its folder.
- ``awaiting.removed_at``: when an unanswered item was closed as ``removed``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("awaiting") as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("awaiting") as batch_op:
        batch_op.drop_column("removed_at")
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_column("removed_at")
