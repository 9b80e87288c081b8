"""operations: the shared rate limit's slots; retention-friendly references

Revision ID: 0005
Revises: 0004

Retention deletes messages and delivered deliveries in batches. A foreign key pointing
at them from a column without an index makes PostgreSQL scan the referencing table for
every deleted row, so the three references from the queue and the request log to
messages and deliveries become plain ids (SQLite never enforced them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}
"""Names for SQLite's unnamed foreign keys, so batch mode can drop them."""

DROPPED = [
    ("deliveries", "message_id", "messages", "id"),
    ("bundle_messages", "message_id", "messages", "id"),
    ("attempts", "delivery_id", "deliveries", "id"),
]


def _name(table: str, column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"{table}_{column}_fkey"
    return f"fk_{table}_{column}"


def upgrade() -> None:
    op.create_table(
        "send_slots",
        sa.Column("webhook_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("webhook_id"),
    )
    for table, column, _, _ in DROPPED:
        with op.batch_alter_table(table, naming_convention=NAMES) as batch_op:
            batch_op.drop_constraint(_name(table, column), type_="foreignkey")


def downgrade() -> None:
    for table, column, referred, referred_column in DROPPED:
        with op.batch_alter_table(table, naming_convention=NAMES) as batch_op:
            batch_op.create_foreign_key(_name(table, column), referred, [column], [referred_column])
    op.drop_table("send_slots")
