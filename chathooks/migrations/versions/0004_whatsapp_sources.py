"""WhatsApp sources, their inbound request log, and chats that have a deliverable message

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chathooks.store.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("teammate_id", sa.Integer(), nullable=True),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("last_event_at", chathooks.store.models.UtcDateTime(), nullable=True),
        sa.Column("created_at", chathooks.store.models.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["teammate_id"], ["teammates.id"]),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sources_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "inbound_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("at", chathooks.store.models.UtcDateTime(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inbound_requests", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_requests_source", ["source_id", "id"], unique=False)

    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("has_deliverable", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Chats that already hold a message without attachments are no longer new.
    chats = sa.table("chats", sa.column("id"), sa.column("has_deliverable", sa.Boolean))
    messages = sa.table("messages", sa.column("chat_id"), sa.column("has_attachments", sa.Boolean))
    deliverable = sa.exists().where(
        messages.c.chat_id == chats.c.id, messages.c.has_attachments.is_(False)
    )
    op.execute(chats.update().where(deliverable).values(has_deliverable=True))


def downgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("has_deliverable")
    with op.batch_alter_table("inbound_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_requests_source")
    op.drop_table("inbound_requests")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sources_workspace_id"))
    op.drop_table("sources")
