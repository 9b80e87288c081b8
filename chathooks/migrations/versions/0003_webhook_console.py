"""webhook console: name, filters, secret overlap, last success/failure, activity's request

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chathooks.store.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("name", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("filters", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(
            sa.Column("previous_secret", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("previous_secret_until", chathooks.store.models.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("failed_requests", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("last_success_at", chathooks.store.models.UtcDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_failure_at", chathooks.store.models.UtcDateTime(), nullable=True)
        )
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.drop_column("request_id")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        for column in (
            "last_failure_at",
            "last_success_at",
            "failed_requests",
            "previous_secret_until",
            "previous_secret",
            "filters",
            "name",
        ):
            batch_op.drop_column(column)
