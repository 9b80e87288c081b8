"""Cheap questions an operator asks of the database: what waits, how big, since when.

Each is one statement on an index (or a small table), so a scrape or a readiness probe
never scans the big tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from chathooks.store.models import Delivery, Message, Webhook


def waiting(session: Session) -> tuple[int, datetime | None]:
    """(pending deliveries, the earliest time one of them became due): both read from the
    partial index ``ix_deliveries_due`` (pending rows only, ordered by ``due_at``)."""
    count, earliest = session.execute(
        select(func.count(), func.min(Delivery.due_at)).where(Delivery.status == "pending")
    ).one()
    return int(count), earliest


def webhooks_by_status(session: Session) -> dict[str, int]:
    """A scan of the webhooks table, which holds one row per configured webhook."""
    rows = session.execute(select(Webhook.status, func.count()).group_by(Webhook.status))
    return {status: int(count) for status, count in rows}


def oldest_message(session: Session) -> datetime | None:
    """When the oldest kept message arrived: the first row by primary key (ids grow with
    arrival)."""
    return session.scalar(select(Message.received_at).order_by(Message.id).limit(1))


def database_bytes(session: Session) -> int:
    if session.get_bind().dialect.name == "postgresql":
        return int(session.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    pages = session.scalar(text("PRAGMA page_count")) or 0
    size = session.scalar(text("PRAGMA page_size")) or 0
    return int(pages) * int(size)


def schema_revision(session: Session) -> str | None:
    revision = session.scalar(text("SELECT version_num FROM alembic_version"))
    return None if revision is None else str(revision)
