"""chat activity: each chat's latest message time, indexed for the Chats list

Revision ID: 0007
Revises: 0006

The Chats list (page and ``GET /api/v1/chats``) shows a workspace's chats by their latest
message, newest first, a page at a time. Kept on the chat and indexed there, a page reads
its own rows; derived from the messages, every page would read every message.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chats") as batch_op:
        batch_op.add_column(sa.Column("last_message_at", sa.DateTime(), nullable=True))
    # One pass over the messages (UPDATE … FROM: SQLite 3.33+ and PostgreSQL); a chat
    # whose messages retention removed keeps its creation time.
    op.execute(
        "UPDATE chats SET last_message_at = latest.at FROM "
        "(SELECT chat_id, max(timestamp) AS at FROM messages GROUP BY chat_id) AS latest "
        "WHERE latest.chat_id = chats.id"
    )
    op.execute("UPDATE chats SET last_message_at = created_at WHERE last_message_at IS NULL")
    op.create_index(
        "ix_chats_activity", "chats", ["workspace_id", "last_message_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_chats_activity", table_name="chats")
    with op.batch_alter_table("chats") as batch_op:
        batch_op.drop_column("last_message_at")
