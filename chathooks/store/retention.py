"""What retention reads and deletes, batch by batch, walking primary keys.

Ids grow with arrival (``received_at``, ``created_at``), so the oldest rows are the first
ones by primary key: each batch is a range read on the primary key, and no index is added
for retention (each one would cost every insert on the hot path).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, text
from sqlalchemy.orm import Session

from chathooks.states import DeliveryStatus, OutgoingStatus
from chathooks.store.models import (
    Activity,
    Alert,
    Attempt,
    Base,
    BundleMessage,
    Delivery,
    Message,
    Outgoing,
)

LOCK_KEY = 0x636874_726574
"""PostgreSQL advisory lock: one worker sweeps at a time."""


def try_lock(session: Session) -> bool:
    """This transaction may sweep (no other worker is sweeping right now)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}))


def deliveries_after(session: Session, after: int, limit: int) -> Sequence[Any]:
    return session.execute(
        select(Delivery.id, Delivery.status, Delivery.created_at, Delivery.delivered_at)
        .where(Delivery.id > after)
        .order_by(Delivery.id)
        .limit(limit)
    ).all()


def delete_deliveries(session: Session, ids: Sequence[int]) -> tuple[int, int]:
    """Delete deliveries and their bundle links; returns (deliveries, links)."""
    if not ids:
        return 0, 0
    links = session.execute(delete(BundleMessage).where(BundleMessage.delivery_id.in_(ids)))
    rows = session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
    return int(rows.rowcount), int(links.rowcount)  # type: ignore[attr-defined]


def messages_after(session: Session, after: int, limit: int) -> Sequence[Any]:
    return session.execute(
        select(Message.id, Message.received_at)
        .where(Message.id > after)
        .order_by(Message.id)
        .limit(limit)
    ).all()


def delete_messages(session: Session, ids: Sequence[int]) -> int:
    return _delete(session, Message, ids)


def outgoing_after(session: Session, after: int, limit: int) -> Sequence[Any]:
    """Sends by id (``created_at`` grows with it), with what says they are finished."""
    return session.execute(
        select(
            Outgoing.id, Outgoing.status, Outgoing.created_at, Outgoing.queued_at, Outgoing.sent_at
        )
        .where(Outgoing.id > after)
        .order_by(Outgoing.id)
        .limit(limit)
    ).all()


def finished_before(row: Any, horizon: datetime) -> bool:
    """A sent or failed send whose last step (queued, or sent) was before ``horizon``."""
    last = max(row.queued_at, row.sent_at or row.queued_at)
    return row.status in (OutgoingStatus.SENT, OutgoingStatus.FAILED) and last < horizon


def delete_outgoing(session: Session, ids: Sequence[int]) -> int:
    return _delete(session, Outgoing, ids)


def _delete(session: Session, model: type[Base], ids: Sequence[int]) -> int:
    if not ids:
        return 0
    rows = session.execute(delete(model).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return int(rows.rowcount)  # type: ignore[attr-defined]


def messages_still_needed(connection: Connection) -> set[int]:
    """Messages that a delivery not yet delivered will send: the pending and open rows
    (through their partial indexes), streamed, then the bundles' links by primary key.
    Costs as much as the backlog is long, so a sweep asks only when it has old messages
    to judge."""
    waiting = (
        select(Delivery.id, Delivery.message_id)
        .where(Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.OPEN)))
        .execution_options(yield_per=5000)
    )
    needed: set[int] = set()
    bundles: list[int] = []
    for delivery_id, message_id in connection.execute(waiting):
        if message_id is None:
            bundles.append(delivery_id)
        else:
            needed.add(message_id)
    for start in range(0, len(bundles), 1000):
        needed.update(
            connection.scalars(
                select(BundleMessage.message_id).where(
                    BundleMessage.delivery_id.in_(bundles[start : start + 1000])
                )
            )
        )
    return needed


def delete_logs_before(session: Session, horizon: datetime, limit: int) -> dict[str, int]:
    """Request log, activity and sent alert e-mails older than ``horizon``, at most ``limit``
    rows of each (the logs keep at most 100 and 10 rows per webhook anyway)."""
    removed = {}
    for name, model, column in (
        ("attempts", Attempt, Attempt.at),
        ("activity", Activity, Activity.at),
        ("alerts", Alert, Alert.sent_at),
    ):
        oldest = select(model.id).where(column < horizon).order_by(model.id).limit(limit)
        ids = list(session.scalars(oldest))
        if ids:
            session.execute(delete(model).where(model.id.in_(ids)))
        removed[name] = len(ids)
    return removed
