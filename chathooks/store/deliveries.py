"""The durable queue: delivery rows, bundle membership, and the claim that workers share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    any_,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy import table as sql_table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from chathooks.states import WebhookStatus
from chathooks.storable import text_problem
from chathooks.store.dialect import built, count_by, insert_for, insert_ignoring_conflicts, table
from chathooks.store.models import BundleMessage, Delivery, Lane, Message, Webhook

SENDABLE_STATUSES = (WebhookStatus.ENABLED, WebhookStatus.DISABLED)
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


LaneKey = tuple[int, int]
"""(webhook id, chat id): one queue, delivered in order."""

LAST_ID = 2**31 - 1
"""Above every id (the column is a 32-bit integer on PostgreSQL)."""

HEADS_PAGE_EXTRA = 100
"""Lane heads read per page beyond the claim's size and the heads its worker holds: room
for heads other workers hold."""

LANES_PER_STATEMENT = 2000
"""Lanes refreshed per statement: two parameters each, well under SQLite's limit."""


def insert_singles(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """New pending deliveries; a lane that had nothing pending gets its first as head.
    (Core statements on the session's connection: the ORM's ``execute`` adds its own
    work to each, and this runs for every group of messages.)

    On PostgreSQL the lanes are locked first, in order: a lane's deliveries then take
    their ids in the order their transactions commit. Without it, a transaction that
    took a lower id but committed after another had made its higher id the head left
    its delivery behind the head, where nothing ever looked (never delivered)."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(
            built(session, _locking_lanes),
            [{"webhook_id": w, "chat_id": c} for w, c in sorted(_lanes_of(rows))],
        )
    inserted = connection.execute(_INSERT_SINGLES, list(rows))
    heads: dict[LaneKey, tuple[int, datetime]] = {}
    for id_, webhook_id, chat_id, due_at in inserted:
        first = heads.get((webhook_id, chat_id))
        if first is None or id_ < first[0]:
            heads[(webhook_id, chat_id)] = (id_, due_at)
    connection.execute(
        built(session, _heading_lanes),
        [
            {"webhook_id": lane[0], "chat_id": lane[1], "head_id": id_, "due_at": due_at}
            for lane, (id_, due_at) in sorted(heads.items())
        ],
    )


def _lanes_of(rows: Sequence[dict[str, Any]]) -> set[LaneKey]:
    return {(row["webhook_id"], row["chat_id"]) for row in rows}


def _locking_lanes(session: Session) -> Any:
    """Lanes created if new and locked either way (an update that changes nothing)."""
    upsert = insert_for(session, Lane)
    return upsert.on_conflict_do_update(
        index_elements=["webhook_id", "chat_id"], set_={"head_id": _lanes.c.head_id}
    )


def _heading_lanes(session: Session) -> Any:
    """Lanes upserted with a new head where they had none (``insert_singles``)."""
    upsert = insert_for(session, Lane)
    return upsert.on_conflict_do_update(
        index_elements=["webhook_id", "chat_id"],
        set_={"head_id": upsert.excluded.head_id, "due_at": upsert.excluded.due_at},
        where=_lanes.c.head_id.is_(None),
    )


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
    if bundle.status == "pending":
        refresh_lanes(session, [(bundle.webhook_id, bundle.chat_id)])
    return bundle


def add_bundle_messages(session: Session, rows: Sequence[dict[str, int]]) -> None:
    if rows:
        session.execute(insert(table(BundleMessage)), list(rows))


def close_due_bundles(session: Session, now: datetime) -> int:
    """Bundles whose period has ended become pending: one statement, on the closing index."""
    closed = session.execute(
        update(_deliveries)
        .where(_deliveries.c.status == "open", _deliveries.c.due_at <= now)
        .values(status="pending")
        .returning(_deliveries.c.webhook_id, _deliveries.c.chat_id)
    ).all()
    refresh_lanes(session, [(w, c) for w, c in closed])
    return len(closed)


def close_bundles_now(session: Session, webhook_id: int, now: datetime) -> int:
    """Flush: every open bundle of one webhook is due now.

    Bundles a split closed early wait for their period's end as ``pending``; they are due
    now too, or a flush would send a period's last part before its first ones.
    """
    closed = session.execute(
        update(_deliveries)
        .where(
            _deliveries.c.webhook_id == webhook_id,
            or_(
                _deliveries.c.status == "open",
                and_(
                    _deliveries.c.status == "pending",
                    _deliveries.c.aggregation != "none",
                    _deliveries.c.due_at > now,
                ),
            ),
        )
        .values(status="pending", due_at=now)
        .returning(_deliveries.c.webhook_id, _deliveries.c.chat_id)
    ).all()
    refresh_lanes(session, [(w, c) for w, c in closed])
    return len(closed)


def refresh_lanes(session: Session, lanes: Iterable[LaneKey], *, delivered: bool = False) -> None:
    """Point each lane at its oldest pending delivery (none: no head), after deliveries
    became pending or delivered. On PostgreSQL the lane rows are locked first, in order:
    an ingest that adds to a lane holds its row until it commits, so the head read after
    the lock sees that ingest's deliveries, and one that comes later finds no head and
    sets its own (``insert_singles``). Nothing pending is ever left without a head.

    The lanes are found by their primary key (webhook ids, then chat ids); the pairs only
    filter what that finds: PostgreSQL matched 2,000 pairs against every lane otherwise.
    ``delivered``: after deliveries were delivered, whose lanes have their rows already."""
    ordered = sorted(set(lanes))
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(ordered), LANES_PER_STATEMENT):
        chunk = ordered[start : start + LANES_PER_STATEMENT]
        if not delivered:
            session.execute(
                insert_ignoring_conflicts(session, Lane),
                [{"webhook_id": w, "chat_id": c} for w, c in chunk],
            )
        these = and_(
            _lanes.c.webhook_id.in_(sorted({w for w, _ in chunk})),
            _lanes.c.chat_id.in_(sorted({c for _, c in chunk})),
            tuple_(_lanes.c.webhook_id, _lanes.c.chat_id).in_(chunk),
        )
        if postgres:
            session.execute(
                select(_lanes.c.webhook_id)
                .where(these)
                .order_by(_lanes.c.webhook_id, _lanes.c.chat_id)
                .with_for_update()
            )
        session.execute((_REFRESH_DELIVERED if delivered else _REFRESH).where(these))


_deliveries = table(Delivery)
_webhooks = table(Webhook)
_lanes = table(Lane)
_INSERT_SINGLES = insert(_deliveries).returning(
    _deliveries.c.id, _deliveries.c.webhook_id, _deliveries.c.chat_id, _deliveries.c.due_at
)
_head = (
    select(_deliveries.c.id, _deliveries.c.due_at)
    .where(
        _deliveries.c.webhook_id == _lanes.c.webhook_id,
        _deliveries.c.chat_id == _lanes.c.chat_id,
        _deliveries.c.status == "pending",
    )
    .order_by(_deliveries.c.id)
    .limit(1)
)
_REFRESH = update(_lanes).values(
    head_id=_head.with_only_columns(_deliveries.c.id).scalar_subquery(),
    due_at=_head.with_only_columns(_deliveries.c.due_at).scalar_subquery(),
)
"""Each lane's head, read from the lane index of the deliveries."""
_from_head = _deliveries.c.id >= func.coalesce(_lanes.c.head_id, 0)
"""Nothing pending in a lane is older than its head: a range of the lane index that starts
there skips the lane's delivered rows, whose entries PostgreSQL's partial index keeps until
a vacuum (a chat with 100 delivered messages made every head lookup step over 100)."""
_head_after_delivered = _head.where(_from_head)
_REFRESH_DELIVERED = update(_lanes).values(
    head_id=_head_after_delivered.with_only_columns(_deliveries.c.id).scalar_subquery(),
    due_at=_head_after_delivered.with_only_columns(_deliveries.c.due_at).scalar_subquery(),
)
"""``_REFRESH`` after deliveries were delivered: the new head is no older than the old one
(one that became pending meanwhile, a closing bundle, moved the head to it first)."""
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

_SENDABLE = select(_webhooks.c.id).where(
    _webhooks.c.status.in_(SENDABLE_STATUSES),
    or_(_webhooks.c.retry_at.is_(None), _webhooks.c.retry_at <= _now),
)
"""Webhooks that may send now, looked up before the deliveries: a webhook backing off with
a large backlog would otherwise make every claim walk its whole backlog (200,000 waiting
deliveries: 850 ms a claim on SQLite, holding the writer lock; now nothing to walk)."""


def _heads_page(*, after: bool) -> Any:
    """Due lane heads of the webhooks that may send, oldest first: for each such webhook
    a range of ``ix_lanes_due`` as long as the page, whatever waits behind the heads or
    behind a webhook backing off; the next page (``after``) starts past the last head
    read. Each webhook's range is read on its own (a lateral join): a plan that no
    estimate of how many lanes the webhooks have can turn into a scan of every lane."""
    sendable = _SENDABLE.subquery("sendable")
    own = [
        _lanes.c.webhook_id == sendable.c.id,
        _lanes.c.head_id.is_not(None),
        _lanes.c.due_at <= _now,
    ]
    if after:
        own.append(
            tuple_(_lanes.c.due_at, _lanes.c.head_id)
            > tuple_(bindparam("after_due", type_=_lanes.c.due_at.type), bindparam("after_id"))
        )
    page = bindparam("page", type_=Integer)
    ranges = (
        select(_lanes.c.due_at, _lanes.c.head_id)
        .where(*own)
        .order_by(_lanes.c.due_at, _lanes.c.head_id)
        .limit(page)
        .lateral("webhook_heads")
    )
    return (
        select(ranges.c.due_at, ranges.c.head_id)
        .select_from(sendable.join(ranges, true()))
        .order_by(ranges.c.due_at, ranges.c.head_id)
        .limit(page)
    )


_behind = _deliveries.alias("behind")


def _has_followers(pending: Any) -> Any:
    """Whether anything is pending behind a head (one probe of the lane index): a claim
    reads followers only for lanes that have some, and most claims then skip that
    statement. ``pending``: the status, as a parameter or written into the statement."""
    return (
        exists()
        .where(
            _behind.c.webhook_id == _deliveries.c.webhook_id,
            _behind.c.chat_id == _deliveries.c.chat_id,
            _behind.c.status == pending,
            _behind.c.id > _deliveries.c.id,
        )
        .label("has_followers")
    )


_WEBHOOK_COLUMNS = (
    _webhooks.c.url,
    _webhooks.c.secret,
    _webhooks.c.previous_secret,
    _webhooks.c.previous_secret_until,
    _webhooks.c.max_requests_per_second,
)
"""What a worker needs of a claimed delivery's webhook (``Claimed``'s next fields)."""
_CLAIM_COLUMNS = (*_DELIVERY_COLUMNS, *_WEBHOOK_COLUMNS, _has_followers("pending"))


def _free(live: Any) -> ColumnElement[bool]:
    """A head no live worker holds: ``live``, the holders alive now."""
    return and_(
        _deliveries.c.status == "pending",
        or_(
            _deliveries.c.lease_until.is_(None),
            _deliveries.c.lease_until < _now,
            and_(_deliveries.c.leased_by.is_not(None), _deliveries.c.leased_by.not_in(live)),
        ),
    )


_CLAIM_JOINED = (
    select(*_CLAIM_COLUMNS)
    .select_from(_lanes)
    .join(_deliveries, _deliveries.c.id == _lanes.c.head_id)
    .join(_webhooks, _webhooks.c.id == _lanes.c.webhook_id)
    .where(
        _lanes.c.webhook_id.in_(bindparam("sendable", expanding=True)),
        _lanes.c.head_id.is_not(None),
        _lanes.c.due_at <= _now,
        _free(bindparam("live", expanding=True)),
    )
    .order_by(_lanes.c.due_at, _lanes.c.head_id)
    .limit(bindparam("limit", type_=Integer))
)
"""The claim in one statement, for SQLite: its planner, without statistics, walks
``ix_lanes_due`` in order and stops at the limit, and a page of heads brought into Python
and back cost a serve delivering ``none`` 4.5 % of its samples (the joined claim: 0.9 %)."""


_by_ids = _deliveries.c.id.in_(bindparam("ids", expanding=True))
_LEASE = (
    update(_deliveries)
    .where(_by_ids)
    .values(lease_until=bindparam("until"), leased_by=bindparam("holder"))
)
_DELIVERED = (
    update(_deliveries)
    .where(_by_ids)
    .values(
        status="delivered",
        delivered_at=bindparam("at"),
        lease_until=None,
        attempts=_deliveries.c.attempts + 1,
    )
    .returning(_deliveries.c.webhook_id, _deliveries.c.chat_id)
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


_ahead = _deliveries.alias("ahead")
_run_end = (
    select(_ahead.c.id)
    .where(
        _ahead.c.webhook_id == _lanes.c.webhook_id,
        _ahead.c.chat_id == _lanes.c.chat_id,
        _ahead.c.status == "pending",
        _ahead.c.id >= func.coalesce(_lanes.c.head_id, 0),
    )
    .order_by(_ahead.c.id)
    .offset(bindparam("last", type_=Integer))
    .limit(1)
    .correlate(_lanes)
    .scalar_subquery()
)
"""The id of a lane's last pending delivery a run may take (none: the lane is shorter)."""
_FOLLOWERS = (
    select(
        *_DELIVERY_COLUMNS,
        _deliveries.c.due_at,
        _deliveries.c.lease_until,
        _deliveries.c.leased_by,
    )
    .select_from(_lanes)
    .outerjoin(
        _deliveries,
        and_(
            _deliveries.c.webhook_id == _lanes.c.webhook_id,
            _deliveries.c.chat_id == _lanes.c.chat_id,
            _deliveries.c.status == "pending",
            _from_head,
            _deliveries.c.id <= func.coalesce(_run_end, LAST_ID),
        ),
    )
    .where(
        _lanes.c.webhook_id.in_(bindparam("webhooks", expanding=True)),
        _lanes.c.chat_id.in_(bindparam("chats", expanding=True)),
        tuple_(_lanes.c.webhook_id, _lanes.c.chat_id).in_(bindparam("lanes", expanding=True)),
    )
    .order_by(_lanes.c.webhook_id, _lanes.c.chat_id, _deliveries.c.id)
)
"""The first pending deliveries of the claimed lanes: a range of the lane index each, as
long as the run and no longer, however many wait behind it (the outer join keeps both
planners walking the lanes first). No row lock is needed: while a lane's head stays
pending, the claim gives nobody else the rows behind it, and by the time it is delivered
they carry this worker's lease."""


HOLDERS = 0x6368
"""The class of PostgreSQL advisory locks that say a worker is alive: each running worker
holds ``(HOLDERS, its holder number)`` on a connection of its own while it runs."""

_LIVE_HOLDERS = (
    "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND objsubid = 2 AND classid::bigint = %s"
)


_pg_locks = sql_table(
    "pg_locks",
    column("locktype"),
    column("granted"),
    column("objsubid"),
    column("classid"),
    column("objid"),
)
_live = select(cast(_pg_locks.c.objid, BigInteger).label("holder")).where(
    _pg_locks.c.locktype == "advisory",
    _pg_locks.c.granted,
    _pg_locks.c.objsubid == 2,
    cast(_pg_locks.c.classid, BigInteger) == HOLDERS,
)
"""``_LIVE_HOLDERS`` inside a statement."""


def _claimed_heads(*, after: bool) -> Any:
    """PostgreSQL's claim of heads, in one round trip (each statement is one; a claim once
    took six): the webhooks that may send, the live workers, a page of due heads
    (``_heads_page``), and those free among them locked and leased, returned after one more
    row that says how full the page was and who is alive (the next page's start, and the
    followers' liveness test).

    Only a lane's head, its oldest pending delivery, is claimable: the next one waits until
    the head is delivered. The heads are taken by their ids, an array built before the
    deliveries are read: no statistics can turn that into a walk of the backlog
    (estimating from before 10,000 bundles closed, PostgreSQL once joined the lanes to the
    deliveries backwards: 2.9 s a claim). A head's ``due_at`` is its lane's, so the order is
    the lanes' order. Per-chat order holds across workers, even under READ COMMITTED: a
    head another worker holds is locked (skipped) or leased, and the lane moves to its
    next delivery only in the transaction that records the head delivered.

    ``'pending'`` is written into the probe for followers: psycopg prepares a statement
    run five times, and PostgreSQL's generic plan for it, with the status a parameter,
    could not use the partial lane index and stepped over every later delivery (the
    drain of 100,000: 11 ms → 500 ms a claim)."""
    heads = _heads_page(after=after).cte("heads")
    live = _live.cte("live")
    picked = (
        select(_deliveries.c.id)
        .where(
            _deliveries.c.id == any_(func.array(select(heads.c.head_id).scalar_subquery())),
            _free(select(live.c.holder)),
        )
        .order_by(_deliveries.c.due_at, _deliveries.c.id)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    claimed = (
        update(_deliveries)
        .where(
            _deliveries.c.id == any_(func.array(picked.scalar_subquery())),
            _webhooks.c.id == _deliveries.c.webhook_id,
        )
        .values(lease_until=bindparam("until"), leased_by=bindparam("holder"))
        .returning(
            *_DELIVERY_COLUMNS,
            *_WEBHOOK_COLUMNS,
            _has_followers(literal_column("'pending'")),
        )
        .cte("claimed")
    )
    last = (
        select(heads.c.due_at, heads.c.head_id)
        .order_by(heads.c.due_at.desc(), heads.c.head_id.desc())
        .limit(1)
    )
    page = select(
        select(func.count()).select_from(heads).scalar_subquery().label("read"),
        last.with_only_columns(heads.c.due_at).scalar_subquery().label("last_due"),
        last.with_only_columns(heads.c.head_id).scalar_subquery().label("last_id"),
        func.array(select(live.c.holder).scalar_subquery()).label("live"),
    ).subquery("page")
    return (
        select(page, *claimed.c).select_from(page.outerjoin(claimed, true())).order_by(claimed.c.id)
    )


_CLAIMED_HEADS = _claimed_heads(after=False)
_CLAIMED_HEADS_AFTER = _claimed_heads(after=True)


async def hold(conn: psycopg.AsyncConnection[Any], holder: int) -> None:
    """Take a worker's liveness lock, on a connection it keeps open while it runs."""
    await conn.execute("SELECT pg_advisory_lock(%s, %s)", (HOLDERS, holder))


async def holders_alive(conn: psycopg.AsyncConnection[Any]) -> set[int]:
    """``live_holders`` on a worker's own connection."""
    cursor = await conn.execute(_LIVE_HOLDERS, (HOLDERS,))
    return {row[0] for row in await cursor.fetchall()}


def live_holders(session: Session) -> list[int]:
    """The workers alive now (PostgreSQL): those whose liveness lock is held."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    return list(session.connection().exec_driver_sql(_LIVE_HOLDERS, (HOLDERS,)).scalars())


def claim(
    session: Session,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    run: int = 1,
    holder: int | None = None,
    held: int = 0,
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries, oldest first, skipping rows other workers hold.

    Each lane (webhook, chat) comes with up to ``run`` of its due deliveries in order, to
    be sent one after another without a database round trip between them. A lease taken
    by a ``holder`` (a worker's liveness lock, PostgreSQL) ends when that worker's
    connection does, or at its end, whichever comes first. ``held``: deliveries the
    claiming worker holds already (their heads come first, and are skipped)."""
    until = now + lease
    page = limit + held + HEADS_PAGE_EXTRA
    heads, followed, live = _heads(session, now, until, page=page, limit=limit, holder=holder)
    followers = _followers(
        session,
        [h for h in heads if (h.webhook_id, h.chat_id) in followed],
        now,
        run=run,
        room=limit - len(heads),
        live=live,
    )
    claimed = heads + followers
    unleased = followers if session.get_bind().dialect.name == "postgresql" else claimed
    if unleased:
        session.execute(_LEASE, {"ids": [c.id for c in unleased], "until": until, "holder": holder})
    claimed.sort(key=lambda c: c.id)
    return claimed


def _heads(
    session: Session,
    now: datetime,
    until: datetime,
    *,
    page: int,
    limit: int,
    holder: int | None,
) -> tuple[list[Claimed], set[LaneKey], set[int]]:
    """Up to ``limit`` lane heads free to claim, oldest first; the lanes with more pending
    behind their head; the live workers. SQLite: one joined statement (``claim`` leases
    what it finds). PostgreSQL: one statement a page of heads, which leases them to
    ``holder`` (``_claimed_heads``); the first heads are often still held (in flight at
    this or another worker), so a page reads more than ``limit``, and the next page is
    read only if too few were free."""
    heads: list[Claimed] = []
    followed: set[LaneKey] = set()

    def take(found: Iterable[Any]) -> None:
        for *row, has_followers in found:
            head = Claimed._make((*row, until))
            heads.append(head)
            if has_followers:
                followed.add((head.webhook_id, head.chat_id))

    params: dict[str, Any] = {"now": now, "until": until, "holder": holder}
    if session.get_bind().dialect.name == "sqlite":
        sendable = list(session.scalars(_SENDABLE, {"now": now}))
        if sendable:
            claim_params = {"now": now, "sendable": sendable, "live": [], "limit": limit}
            take(session.execute(_CLAIM_JOINED, claim_params))
        return heads, followed, set()
    params |= {"page": page}
    statement = _CLAIMED_HEADS
    live: set[int] = set()
    while len(heads) < limit:
        rows = session.execute(statement, {**params, "limit": limit - len(heads)}).all()
        read, last_due, last_id, live_now = rows[0][:4]
        live = set(live_now)
        take(row[4:] for row in rows if row.id is not None)
        if read < page:
            break
        statement = _CLAIMED_HEADS_AFTER
        params |= {"after_due": last_due, "after_id": last_id}
    return heads, followed, live


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
    session: Session,
    heads: Sequence[Claimed],
    now: datetime,
    *,
    run: int,
    room: int,
    live: set[int],
) -> list[Claimed]:
    """Behind each claimed head, the lane's next deliveries while they are due and free."""
    if run <= 1 or room < len(heads) or not heads:
        return []
    by_lane = {(h.webhook_id, h.chat_id): h for h in heads}
    per_lane = min(run, room // len(by_lane) + 1)  # the head is the lane's first row
    rows = session.execute(
        _FOLLOWERS,
        {
            "webhooks": sorted({w for w, _ in by_lane}),
            "chats": sorted({c for _, c in by_lane}),
            "lanes": list(by_lane),
            "last": per_lane - 1,
        },
    )
    followers: list[Claimed] = []
    cut: set[tuple[int, int]] = set()
    for row in rows:
        if row.id is None:  # the outer join's row for a lane with nothing pending
            continue
        lane = (row.webhook_id, row.chat_id)
        head = by_lane[lane]
        if row.id == head.id or lane in cut:
            continue
        held = row.lease_until and row.lease_until >= now
        if held and row.leased_by is not None and row.leased_by not in live:
            held = False  # its worker died
        if row.id < head.id or row.due_at > now or held:
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
    """Delivered, and their lanes move on to the next pending delivery."""
    if ids:
        lanes = session.execute(_DELIVERED, {"ids": list(ids), "at": now}).all()
        refresh_lanes(session, [(w, c) for w, c in lanes], delivered=True)


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
    session.execute(delete(_lanes).where(_lanes.c.webhook_id == webhook_id))
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
