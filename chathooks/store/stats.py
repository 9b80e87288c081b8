"""Cheap questions an operator asks of the database: what waits, how big, since when.

Each is one statement on an index (or a small table), so a scrape or a readiness probe
never scans the big tables.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from chathooks.states import DeliveryStatus, FailureClass, WebhookState, WebhookStatus
from chathooks.store.models import Attempt, Delivery, Message, Webhook


def waiting(session: Session) -> tuple[int, datetime | None]:
    """(pending deliveries, the earliest time one of them became due): both read from the
    partial index ``ix_deliveries_due`` (pending rows only, ordered by ``due_at``)."""
    pending = Delivery.status == DeliveryStatus.PENDING
    count, earliest = session.execute(
        select(func.count(), func.min(Delivery.due_at)).where(pending)
    ).one()
    return int(count), earliest


_FAILING = Webhook.consecutive_failures > 0


def webhooks_by_state(session: Session) -> Counter[WebhookState]:
    """A scan of the webhooks table, which holds one row per configured webhook."""
    rows = session.execute(
        select(Webhook.status, _FAILING, func.count()).group_by(Webhook.status, _FAILING)
    )
    counts: Counter[WebhookState] = Counter()
    for status, failing, count in rows:
        counts[WebhookState.of(status, int(bool(failing)))] += int(count)
    return counts


def failing_by_class(session: Session) -> dict[FailureClass, tuple[int, int]]:
    """Failing webhooks (enabled, latest attempt failed) by the class of their latest
    failed request: (webhooks, their failed attempts). One look per failing webhook at the
    newest rows of its request log (``ix_attempts_webhook``)."""
    failing = select(Webhook.id, Webhook.consecutive_failures).where(
        Webhook.status == WebhookStatus.ENABLED, _FAILING
    )
    found: dict[FailureClass, tuple[int, int]] = {}
    for webhook_id, failures in session.execute(failing):
        latest = session.execute(
            select(Attempt.response_status, Attempt.error)
            .where(Attempt.webhook_id == webhook_id, Attempt.delivery_id.is_not(None))
            .order_by(Attempt.id.desc())
            .limit(1)
        ).first()
        why = FailureClass.of(*latest) if latest else FailureClass.OTHER
        webhooks, attempts = found.get(why, (0, 0))
        found[why] = (webhooks + 1, attempts + int(failures))
    return found


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
