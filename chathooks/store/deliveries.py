"""The durable queue: delivery rows, bundle membership, and the claim that workers share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from chathooks.storable import text_problem
from chathooks.store.dialect import count_by, table
from chathooks.store.models import BundleMessage, Delivery, Message, Webhook

SENDABLE_STATUSES = ("enabled", "disabled")
"""A webhook disabled by hand still sends what was queued before; an auto-disabled one holds."""


class Claimed(NamedTuple):
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
    previous_secret: str
    previous_secret_until: datetime | None
    max_requests_per_second: float | None
    lease_until: datetime


Lease = tuple[int, datetime]
"""A claimed delivery's id and the end of the lease its worker holds on it."""


def insert_singles(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(table(Delivery)), list(rows))


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


def open_bundles(
    session: Session, webhook_id: int, chat_ids: Iterable[int], period_start: datetime
) -> dict[int, Delivery]:
    """``open_bundle`` for many chats in one query, locked in chat order (no deadlocks)."""
    rows = session.scalars(
        select(Delivery)
        .where(
            Delivery.webhook_id == webhook_id,
            Delivery.chat_id.in_(sorted(set(chat_ids))),
            Delivery.period_start == period_start,
            Delivery.status == "open",
        )
        .order_by(Delivery.chat_id)
        .with_for_update()
    )
    return {bundle.chat_id: bundle for bundle in rows}


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
        session.execute(insert(table(BundleMessage)), list(rows))


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


_deliveries = table(Delivery)
_webhooks = table(Webhook)
_earlier = _deliveries.alias("earlier")
_now: BindParameter[datetime] = bindparam("now")

_DELIVERY_COLUMNS = (
    _deliveries.c.id,
    _deliveries.c.uuid,
    _deliveries.c.webhook_id,
    _deliveries.c.chat_id,
    _deliveries.c.message_id,
    _deliveries.c.aggregation,
    _deliveries.c.attempts,
)
"""What a worker needs of a claimed delivery (``Claimed``'s first fields)."""

_CLAIM = (
    select(
        *_DELIVERY_COLUMNS,
        _webhooks.c.url,
        _webhooks.c.secret,
        _webhooks.c.previous_secret,
        _webhooks.c.previous_secret_until,
        _webhooks.c.max_requests_per_second,
    )
    .join_from(_deliveries, _webhooks, _webhooks.c.id == _deliveries.c.webhook_id)
    .where(
        _deliveries.c.status == "pending",
        _deliveries.c.due_at <= _now,
        or_(_deliveries.c.lease_until.is_(None), _deliveries.c.lease_until < _now),
        # "+ 0" keeps the planners on the due index: on the lane index they sorted every due row
        (_deliveries.c.webhook_id + 0).in_(bindparam("sendable", expanding=True)),
        ~exists().where(
            _earlier.c.webhook_id == _deliveries.c.webhook_id,
            _earlier.c.chat_id == _deliveries.c.chat_id,
            _earlier.c.status == "pending",
            _earlier.c.id < _deliveries.c.id,
        ),
    )
    .order_by(_deliveries.c.id)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(of=_deliveries, skip_locked=True)
)
_SENDABLE = select(_webhooks.c.id).where(
    _webhooks.c.status.in_(SENDABLE_STATUSES),
    or_(_webhooks.c.retry_at.is_(None), _webhooks.c.retry_at <= _now),
)
"""Webhooks that may send now, looked up before the deliveries: a webhook backing off with
a large backlog would otherwise make every claim walk its whole backlog (200,000 waiting
deliveries: 850 ms a claim on SQLite, holding the writer lock; now nothing to walk)."""

"""Built once: the claim runs many times a second, and building it costs more than running it.

Only the oldest pending delivery of each (webhook, chat) is claimable: the next one waits
until it is delivered. Per-chat order then holds across workers, even under READ
COMMITTED, where one worker cannot see another's uncommitted lease — it sees the earlier
row still pending (or skips it, locked) and leaves the later one alone."""

_by_ids = _deliveries.c.id.in_(bindparam("ids", expanding=True))
_LEASE = update(_deliveries).where(_by_ids).values(lease_until=bindparam("until"))
_DELIVERED = (
    update(_deliveries)
    .where(_by_ids)
    .values(
        status="delivered",
        delivered_at=bindparam("at"),
        lease_until=None,
        attempts=_deliveries.c.attempts + 1,
    )
)
_FAILED = (
    update(_deliveries).where(_by_ids).values(lease_until=None, attempts=_deliveries.c.attempts + 1)
)
_RELEASE = (
    update(_deliveries)
    .where(
        _deliveries.c.id == bindparam("released_id"),
        _deliveries.c.lease_until == bindparam("held_until"),
    )
    .values(lease_until=None)
)
_EXTEND = (
    update(_deliveries)
    .where(_by_ids, _deliveries.c.lease_until == bindparam("held_until"))
    .values(lease_until=bindparam("until"))
    .returning(_deliveries.c.id)
)
"""Only leases still the worker's own: a row handed back, recorded, or taken over by
another worker after its lease ran out stays as it is."""


_lane_rank = (
    func.row_number()
    .over(
        partition_by=(_deliveries.c.webhook_id, _deliveries.c.chat_id),
        order_by=_deliveries.c.id,
    )
    .label("lane_rank")
)
_lanes = (
    select(
        *_DELIVERY_COLUMNS,
        _deliveries.c.due_at,
        _deliveries.c.lease_until,
        _lane_rank,
    )
    .where(
        _deliveries.c.status == "pending",
        tuple_(_deliveries.c.webhook_id, _deliveries.c.chat_id).in_(
            bindparam("lanes", expanding=True)
        ),
    )
    .subquery()
)
_FOLLOWERS = (
    select(_lanes)
    .where(_lanes.c.lane_rank <= bindparam("run", type_=Integer))
    .order_by(_lanes.c.webhook_id, _lanes.c.chat_id, _lanes.c.id)
)
"""The first pending deliveries of the claimed lanes, on the lane index. No row lock is
needed: while a lane's head stays pending, the claim gives nobody else the rows behind it,
and by the time it is delivered they carry this worker's lease."""


def claim(
    session: Session, now: datetime, lease: timedelta, limit: int, run: int = 1
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries, oldest first, skipping rows other workers hold.

    Each lane (webhook, chat) comes with up to ``run`` of its due deliveries in order, to
    be sent one after another without a database round trip between them."""
    until = now + lease
    sendable = list(session.scalars(_SENDABLE, {"now": now}))
    if not sendable:
        return []
    heads = [
        Claimed._make((*row, until))
        for row in session.execute(_CLAIM, {"now": now, "limit": limit, "sendable": sendable})
    ]
    claimed = heads + _followers(session, heads, now, run, limit - len(heads))
    if claimed:
        session.execute(_LEASE, {"ids": [c.id for c in claimed], "until": until})
    claimed.sort(key=lambda c: c.id)
    return claimed


_NEXT_DUE = select(
    select(func.min(_webhooks.c.retry_at))
    .where(_webhooks.c.status.in_(SENDABLE_STATUSES), _webhooks.c.retry_at > _now)
    .scalar_subquery(),
    select(_deliveries.c.due_at)
    .where(_deliveries.c.status == "pending", _deliveries.c.due_at > _now)
    .order_by(_deliveries.c.due_at)
    .limit(1)
    .scalar_subquery(),
    select(_deliveries.c.due_at)
    .where(_deliveries.c.status == "open")
    .order_by(_deliveries.c.due_at)
    .limit(1)
    .scalar_subquery(),
)
"""Three index lookups in one round trip: the webhooks table is small, the deliveries'
are the first entries of the due and closing indexes."""


def next_due(session: Session, now: datetime) -> datetime | None:
    """When something not due at ``now`` becomes due: a webhook's back-off ends, a
    delivery's ``due_at`` or a bundle period's end. Nobody announces these moments, so a
    worker that sleeps until the next notification must wake at the earliest of them."""
    moments = session.execute(_NEXT_DUE, {"now": now}).one()
    return min((m for m in moments if m is not None), default=None)


def _followers(
    session: Session, heads: Sequence[Claimed], now: datetime, run: int, room: int
) -> list[Claimed]:
    """Behind each claimed head, the lane's next deliveries while they are due and free."""
    if run <= 1 or room < len(heads) or not heads:
        return []
    by_lane = {(h.webhook_id, h.chat_id): h for h in heads}
    per_lane = min(run, room // len(by_lane) + 1)  # the head is the lane's first row
    rows = session.execute(_FOLLOWERS, {"lanes": list(by_lane), "run": per_lane})
    followers: list[Claimed] = []
    cut: set[tuple[int, int]] = set()
    for row in rows:
        lane = (row.webhook_id, row.chat_id)
        head = by_lane[lane]
        if row.id == head.id or lane in cut:
            continue
        if row.id < head.id or row.due_at > now or (row.lease_until and row.lease_until >= now):
            cut.add(lane)  # the run ends where the lane's order would be broken
            continue
        followers.append(
            head._replace(
                id=row.id,
                uuid=row.uuid,
                message_id=row.message_id,
                aggregation=row.aggregation,
                attempts=row.attempts,
            )
        )
        if len(followers) == room:
            break
    return followers


def extend_leases(session: Session, leases: Sequence[Lease], until: datetime) -> list[int]:
    """A worker still holds these (they wait for their turn): the leases that are still the
    ones it took run to ``until``; returns those deliveries' ids."""
    by_held: dict[datetime, list[int]] = {}
    for delivery_id, held_until in leases:
        by_held.setdefault(held_until, []).append(delivery_id)
    extended: list[int] = []
    for held_until, ids in by_held.items():
        found = session.scalars(_EXTEND, {"ids": ids, "held_until": held_until, "until": until})
        extended += found.all()
    return extended


def mark_delivered(session: Session, ids: Sequence[int], now: datetime) -> None:
    if ids:
        session.execute(_DELIVERED, {"ids": list(ids), "at": now})


def mark_failed(session: Session, ids: Sequence[int]) -> None:
    if ids:
        session.execute(_FAILED, {"ids": list(ids)})


def release(session: Session, leases: Sequence[Lease]) -> None:
    """Give back deliveries that were claimed but not attempted, each only while its lease
    is still the one this worker took: one that ran out meanwhile may be another's now."""
    if leases:
        session.execute(
            _RELEASE, [{"released_id": id_, "held_until": until} for id_, until in leases]
        )


def release_all_leases(session: Session) -> None:
    """On a single-process start nobody else can hold a lease: a crash's leases end now."""
    session.execute(
        update(Delivery)
        .where(Delivery.status == "pending", Delivery.lease_until.is_not(None))
        .values(lease_until=None)
        .execution_options(synchronize_session=False)
    )


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


def pending_counts(session: Session, webhook_ids: Iterable[int]) -> dict[int, int]:
    """Deliveries waiting to be sent, per webhook (absent: none), on the lane index."""
    return count_by(
        session,
        Delivery.webhook_id,
        Delivery.webhook_id.in_(list(webhook_ids)),
        Delivery.status == "pending",
    )


def by_uuid(session: Session, uuid: str) -> Delivery | None:
    """A bundle by the uuid of its permalink; text no row can hold (NUL) finds nothing."""
    if text_problem(uuid):
        return None
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
