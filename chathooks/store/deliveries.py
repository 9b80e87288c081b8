"""The durable queue: delivery rows, bundle membership, and the claim that workers share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from chathooks.store.models import BundleMessage, Delivery, Message, Webhook

SENDABLE_STATUSES = ("enabled", "disabled")
"""A webhook disabled by hand still sends what was queued before; an auto-disabled one holds."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker now owns until its lease ends, with what it needs to send it."""

    id: int
    uuid: str
    webhook_id: int
    chat_id: int
    message_id: int | None
    aggregation: str
    attempts: int
    url: str
    secret: str
    max_requests_per_second: float | None


def insert_singles(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(Delivery), list(rows))


def open_bundle(
    session: Session, webhook_id: int, chat_id: int, period_start: datetime
) -> Delivery | None:
    """The chat's open bundle, locked: concurrent gathers add to it in turn (exact counters),
    and a flush or a closing worker waits until the message that joins it is committed."""
    return session.scalars(
        select(Delivery)
        .where(
            Delivery.webhook_id == webhook_id,
            Delivery.chat_id == chat_id,
            Delivery.period_start == period_start,
            Delivery.status == "open",
        )
        .with_for_update()
    ).one_or_none()


def add_open_bundle(session: Session, row: dict[str, Any]) -> Delivery | None:
    """A new open bundle, or None if a concurrent transaction opened the chat's bundle for
    this period first (by now committed: ``open_bundle`` finds it)."""
    try:
        with session.begin_nested():
            return add_bundle(session, row)
    except IntegrityError:
        return None


def add_bundle(session: Session, row: dict[str, Any]) -> Delivery:
    bundle = Delivery(**row)
    session.add(bundle)
    session.flush()
    return bundle


def add_bundle_messages(session: Session, rows: Sequence[dict[str, int]]) -> None:
    if rows:
        session.execute(insert(BundleMessage), list(rows))


def close_due_bundles(session: Session, now: datetime) -> int:
    """Bundles whose period has ended become pending: one statement, on the closing index."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.status == "open", Delivery.due_at <= now)
        .values(status="pending")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def close_bundles_now(session: Session, webhook_id: int, now: datetime) -> int:
    """Flush: every open bundle of one webhook is due now.

    Bundles a split closed early wait for their period's end as ``pending``; they are due
    now too, or a flush would send a period's last part before its first ones.
    """
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.webhook_id == webhook_id,
            or_(
                Delivery.status == "open",
                and_(
                    Delivery.status == "pending",
                    Delivery.aggregation != "none",
                    Delivery.due_at > now,
                ),
            ),
        )
        .values(status="pending", due_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def claim(session: Session, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
    """Take up to ``limit`` due deliveries, oldest first, skipping rows other workers hold.

    A delivery is skipped while an earlier one of the same webhook and chat is leased,
    so per-chat order holds across workers.
    """
    earlier = aliased(Delivery)
    leased_before = exists().where(
        earlier.webhook_id == Delivery.webhook_id,
        earlier.chat_id == Delivery.chat_id,
        earlier.status == "pending",
        earlier.id < Delivery.id,
        earlier.lease_until >= now,
    )
    stmt = (
        select(
            Delivery.id,
            Delivery.uuid,
            Delivery.webhook_id,
            Delivery.chat_id,
            Delivery.message_id,
            Delivery.aggregation,
            Delivery.attempts,
            Webhook.url,
            Webhook.secret,
            Webhook.max_requests_per_second,
        )
        .join(Webhook, Webhook.id == Delivery.webhook_id)
        .where(
            Delivery.status == "pending",
            Delivery.due_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
            Webhook.status.in_(SENDABLE_STATUSES),
            or_(Webhook.retry_at.is_(None), Webhook.retry_at <= now),
            ~leased_before,
        )
        .order_by(Delivery.id)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    )
    claimed = [Claimed(**row._asdict()) for row in session.execute(stmt)]
    if claimed:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([c.id for c in claimed]))
            .values(lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
    return claimed


def mark_delivered(session: Session, ids: Sequence[int], now: datetime) -> None:
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(
                status="delivered",
                delivered_at=now,
                lease_until=None,
                attempts=Delivery.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )


def mark_failed(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(lease_until=None, attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )


def release(session: Session, ids: Sequence[int]) -> None:
    """Give back deliveries that were claimed but not attempted."""
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )


def release_all_leases(session: Session) -> None:
    """On a single-process start nobody else can hold a lease: a crash's leases end now."""
    session.execute(
        update(Delivery)
        .where(Delivery.status == "pending", Delivery.lease_until.is_not(None))
        .values(lease_until=None)
        .execution_options(synchronize_session=False)
    )


def bundle_message_ids(session: Session, delivery_ids: Iterable[int]) -> dict[int, list[int]]:
    rows = session.execute(
        select(BundleMessage.delivery_id, BundleMessage.message_id).where(
            BundleMessage.delivery_id.in_(list(delivery_ids))
        )
    )
    out: dict[int, list[int]] = {}
    for delivery_id, message_id in rows:
        out.setdefault(delivery_id, []).append(message_id)
    return out


def open_bundle_totals(session: Session, webhook_id: int) -> tuple[int, int, datetime | None]:
    """(messages, chats, earliest due time) gathered in a webhook's open bundles."""
    messages, chats, due = session.execute(
        select(
            func.coalesce(func.sum(Delivery.message_count), 0),
            func.count(func.distinct(Delivery.chat_id)),
            func.min(Delivery.due_at),
        ).where(Delivery.webhook_id == webhook_id, Delivery.status == "open")
    ).one()
    return int(messages), int(chats), due


def pending_count(session: Session, webhook_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.webhook_id == webhook_id, Delivery.status == "pending")
        )
        or 0
    )


def by_uuid(session: Session, uuid: str) -> Delivery | None:
    return session.scalars(
        select(Delivery).where(Delivery.uuid == uuid, Delivery.aggregation != "none")
    ).one_or_none()


def first_bundle_message(session: Session, delivery_id: int) -> Message | None:
    return session.scalars(
        select(Message)
        .join(BundleMessage, and_(BundleMessage.message_id == Message.id))
        .where(BundleMessage.delivery_id == delivery_id)
        .order_by(Message.timestamp, Message.id)
        .limit(1)
    ).first()


def delete_for_webhook(session: Session, webhook_id: int) -> None:
    ids = select(Delivery.id).where(Delivery.webhook_id == webhook_id)
    session.execute(delete(BundleMessage).where(BundleMessage.delivery_id.in_(ids)))
    session.execute(delete(Delivery).where(Delivery.webhook_id == webhook_id))


def add_test_bundle(
    session: Session, uuid: str, webhook: Webhook, message: Message, now: datetime
) -> None:
    """A record of a test bundle, so the permalink in its note leads somewhere real."""
    bundle = add_bundle(
        session,
        {
            "uuid": uuid,
            "webhook_id": webhook.id,
            "chat_id": message.chat_id,
            "status": "test",
            "due_at": now,
            "aggregation": webhook.aggregation,
            "created_at": now,
        },
    )
    add_bundle_messages(session, [{"delivery_id": bundle.id, "message_id": message.id}])
