"""send_slots keyed by what is paced (a webhook or a WhatsApp account); outgoing.queued_at

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _slots(column: sa.Column[object]) -> None:
    """The schedules are seconds-long bookings: recreated empty, nothing is lost."""
    op.drop_table("send_slots")
    op.create_table(
        "send_slots",
        column,
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(column.name),
    )


def upgrade() -> None:
    _slots(sa.Column("target", sa.String(length=40), nullable=False))
    with op.batch_alter_table("outgoing") as batch_op:
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE outgoing SET queued_at = created_at")
    with op.batch_alter_table("outgoing") as batch_op:
        batch_op.alter_column("queued_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("outgoing") as batch_op:
        batch_op.drop_column("queued_at")
    _slots(sa.Column("webhook_id", sa.Integer(), autoincrement=False, nullable=False))
