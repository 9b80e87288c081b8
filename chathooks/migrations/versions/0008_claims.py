"""claims: each (webhook, chat) queue's head, so a claim costs the same whatever waits;
a lease tied to the claiming worker's connection, so a dead worker's chats move on at once

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("leased_by", sa.Integer(), nullable=True))
    op.create_table(
        "lanes",
        sa.Column("webhook_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("chat_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("head_id", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("webhook_id", "chat_id"),
    )
    op.create_index(
        "ix_lanes_due",
        "lanes",
        ["webhook_id", "due_at", "head_id"],
        sqlite_where=sa.text("head_id IS NOT NULL"),
        postgresql_where=sa.text("head_id IS NOT NULL"),
    )
    op.execute(
        "INSERT INTO lanes (webhook_id, chat_id, head_id, due_at) "
        "SELECT d.webhook_id, d.chat_id, d.id, d.due_at FROM deliveries d "
        "WHERE d.status = 'pending' AND NOT EXISTS (SELECT 1 FROM deliveries e "
        "WHERE e.webhook_id = d.webhook_id AND e.chat_id = d.chat_id "
        "AND e.status = 'pending' AND e.id < d.id)"
    )


def downgrade() -> None:
    op.drop_index("ix_lanes_due", table_name="lanes")
    op.drop_table("lanes")
    op.drop_column("deliveries", "leased_by")
