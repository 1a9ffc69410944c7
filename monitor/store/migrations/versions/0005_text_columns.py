"""text columns for what messages and call logs can make long

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:30:00

A 613-character Message-ID or a 200,000-character References id stopped ingest on PostgreSQL
(``varchar(500)``), where SQLite took them: ids, addresses, flags, numbers, awaiting keys and breach
subjects become ``text`` so both databases accept the same messages.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDENED: dict[str, dict[str, int]] = {
    "message": {
        "external_id": 500,
        "message_id": 500,
        "from_addr": 320,
        "sender_addr": 320,
        "in_reply_to": 500,
        "thread_id": 200,
        "flags": 200,
    },
    "call": {"external_id": 500, "caller": 100, "callee": 100, "answered_by": 100, "line": 100},
    "awaiting": {
        "item_key": 500,
        "conversation": 500,
        "customer": 320,
        "response_id": 500,
        "responder": 320,
        "owner": 320,
    },
    "breach": {"subject": 500},
}


def upgrade() -> None:
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column, length in columns.items():
                batch.alter_column(column, type_=sa.Text(), existing_type=sa.String(length))


def downgrade() -> None:
    for table, columns in WIDENED.items():
        with op.batch_alter_table(table) as batch:
            for column, length in columns.items():
                batch.alter_column(column, type_=sa.String(length), existing_type=sa.Text())
