"""accounts: a name, the source that feeds each, and removal that keeps what was delivered

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chathooks.store.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("whatsapp_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("source_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("removed_at", chathooks.store.models.UtcDateTime(), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_whatsapp_accounts_source_id", "sources", ["source_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("whatsapp_accounts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_whatsapp_accounts_source_id", type_="foreignkey")
        batch_op.drop_column("removed_at")
        batch_op.drop_column("source_id")
        batch_op.drop_column("name")
