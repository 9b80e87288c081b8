"""The send queue: outgoing rows, the per-chat claim that workers share, and their results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Integer, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from chathooks.states import OutgoingStatus
from chathooks.store.deliveries import Lease, live_holders
from chathooks.store.dialect import changed, table
from chathooks.store.ids import ID_MAX, ID_MIN, get_by_id
from chathooks.store.models import Chat, Message, Outgoing, Source, WhatsappAccount

QUEUED = OutgoingStatus.QUEUED
BEHIND = datetime(9999, 12, 31, tzinfo=UTC)
"""The ``next_try_at`` of a send queued behind another of its lane (chat): never due by
itself, so neither a claim nor the due index sees the sends waiting in a busy chat; the
send ahead hands its lane on (``_hand_on``) when it is sent or fails."""


class Claimed(NamedTuple):
    """A send a worker now owns until its lease ends, with what it needs to make it."""

    id: int
    workspace_id: int
    account_id: int
    source_id: int
    chat_key: str
    is_group: bool
    phone: str
    text: str
    template: dict[str, Any] | None
    sender_name: str
    attempts: int
    """Attempts since it was last queued."""
    queued_at: datetime
    account_phone: str
    kind: str | None
    """None: the source was removed since the send was queued."""
    secrets: dict[str, Any] | None
    chat_name: str | None
    """The stored chat's name (None: a chat started by phone, not stored yet)."""
    lease_until: datetime


_out = table(Outgoing)
_ahead = _out.alias("ahead")
_sources = table(Source)
_accounts = table(WhatsappAccount)
_chats = table(Chat)
_now: BindParameter[datetime] = bindparam("now")

_CLAIM = (
    select(
        _out.c.id,
        _out.c.workspace_id,
        _out.c.account_id,
        _out.c.source_id,
        _out.c.chat_key,
        _out.c.is_group,
        _out.c.phone,
        _out.c.text,
        _out.c.template,
        _out.c.sender_name,
        _out.c.attempts,
        _out.c.queued_at,
        _accounts.c.phone,
        _sources.c.kind,
        _sources.c.secrets,
        _chats.c.full_name,
    )
    .select_from(_out)
    .join(_accounts, _accounts.c.id == _out.c.account_id)
    .outerjoin(_sources, _sources.c.id == _out.c.source_id)
    .outerjoin(_chats, _chats.c.id == _out.c.chat_id)
    .where(
        _out.c.status == QUEUED,
        _out.c.next_try_at <= _now,
        or_(
            _out.c.lease_until.is_(None),
            _out.c.lease_until < _now,
            and_(
                _out.c.leased_by.is_not(None),
                _out.c.leased_by.not_in(bindparam("live", expanding=True)),
            ),
        ),
        ~select(_ahead.c.id)
        .where(
            _ahead.c.account_id == _out.c.account_id,
            _ahead.c.chat_key == _out.c.chat_key,
            _ahead.c.status == QUEUED,
            _ahead.c.id < _out.c.id,
            _ahead.c.next_try_at < BEHIND,
        )
        .exists(),
    )
    .order_by(_out.c.next_try_at, _out.c.id)
    .limit(bindparam("limit", type_=Integer))
    .with_for_update(of=_out, skip_locked=True)
)
"""Only a lane's oldest queued send is claimable (the ``NOT EXISTS`` is one step on
``ix_outgoing_lane``): the next one waits until it is sent or failed, also while it backs
off. An older send waiting ``BEHIND`` (a failed one retried while its lane was busy) does
not hold the lane: it comes next, handed on like any send queued behind. Across workers,
even under READ COMMITTED, a head another worker holds is locked (skipped) or leased, and
it stays queued, holding back its lane, until recorded."""

_LANE_HEAD = (
    select(_out.c.id)
    .where(
        _out.c.account_id == bindparam("account"),
        _out.c.chat_key == bindparam("chat_key"),
        _out.c.status == QUEUED,
    )
    .order_by(_out.c.id)
    .limit(1)
    .with_for_update()
)
_lane = _out.alias("lane")
_finished = _out.alias("finished")
_HAND_ON = (
    update(_out)
    .where(
        _out.c.id
        == select(func.min(_lane.c.id))
        .join(
            _finished,
            and_(
                _finished.c.account_id == _lane.c.account_id,
                _finished.c.chat_key == _lane.c.chat_key,
            ),
        )
        .where(_finished.c.id == bindparam("finished"), _lane.c.status == QUEUED)
        .scalar_subquery(),
        _out.c.next_try_at == BEHIND,
    )
    .values(next_try_at=_now)
)
"""Built once (as ``_LANE_HEAD``): composing it for every record cost about 1 ms."""

_by_ids = _out.c.id.in_(bindparam("ids", expanding=True))
_LEASE = (
    update(_out)
    .where(_by_ids)
    .values(lease_until=bindparam("until"), leased_by=bindparam("holder"))
)
_NEXT_DUE = (
    select(_out.c.next_try_at)
    .where(_out.c.status == QUEUED, _out.c.next_try_at > _now, _out.c.next_try_at < BEHIND)
    .order_by(_out.c.next_try_at)
    .limit(1)
)


def add(session: Session, row: dict[str, Any]) -> Outgoing | None:
    """A new queued send, or None if its idempotency key is taken (by now committed:
    ``by_key`` finds it)."""
    if _lane_taken(session, row["account_id"], row["chat_key"]):
        row = {**row, "next_try_at": BEHIND}
    outgoing = Outgoing(**row)
    try:
        with session.begin_nested():
            session.add(outgoing)
            session.flush()
    except IntegrityError:
        return None
    return outgoing


def _lane_taken(session: Session, account_id: int, chat_key: str) -> bool:
    """Whether a send of the lane is still queued. Its head is locked (PostgreSQL), so a
    head being recorded meanwhile either hands on to this send (its record waits for this
    transaction) or is seen finished here (this waits for the record)."""
    lane = {"account": account_id, "chat_key": chat_key}
    return session.execute(_LANE_HEAD, lane).first() is not None


def _hand_on(session: Session, finished_id: int, now: datetime) -> None:
    """The lane of a send just finished: its next queued send (waiting ``BEHIND``) is due."""
    session.execute(_HAND_ON, {"finished": finished_id, "now": now})


def by_key(session: Session, workspace_id: int, key: str) -> Outgoing | None:
    return session.scalars(
        select(Outgoing).where(
            Outgoing.workspace_id == workspace_id, Outgoing.idempotency_key == key
        )
    ).one_or_none()


def get(session: Session, workspace_id: int, outgoing_id: int) -> Outgoing | None:
    found = get_by_id(session, Outgoing, outgoing_id)
    return found if found is not None and found.workspace_id == workspace_id else None


def for_chat(session: Session, workspace_id: int, chat_id: int, limit: int) -> list[Outgoing]:
    """A chat's latest sends, newest first (started by phone: once the chat exists)."""
    if not ID_MIN <= chat_id <= ID_MAX:
        return []
    return list(
        session.scalars(
            select(Outgoing)
            .where(Outgoing.workspace_id == workspace_id, Outgoing.chat_id == chat_id)
            .order_by(Outgoing.id.desc())
            .limit(limit)
        )
    )


def claim(
    session: Session, now: datetime, *, lease: timedelta, limit: int, holder: int | None
) -> list[Claimed]:
    """Take up to ``limit`` due sends, each its lane's head, oldest due first."""
    until = now + lease
    rows = session.execute(
        _CLAIM, {"now": now, "limit": limit, "live": live_holders(session)}
    ).all()
    claimed = [Claimed._make((*row, until)) for row in rows]
    if claimed:
        ids = [c.id for c in claimed]
        session.execute(_LEASE, {"ids": ids, "until": until, "holder": holder})
    return claimed


def next_due(connection: Connection, now: datetime) -> datetime | None:
    """When the earliest send backing off comes due (nobody announces that moment)."""
    due: datetime | None = connection.execute(_NEXT_DUE, {"now": now}).scalar()
    return due


_ANY_DUE = (
    select(_out.c.id)
    .where(
        _out.c.status == QUEUED,
        _out.c.next_try_at <= _now,
        or_(_out.c.lease_until.is_(None), _out.c.lease_until < _now),
    )
    .limit(1)
)


def any_due(connection: Connection, now: datetime) -> bool:
    """Whether a queued send is due and not leased (SQLite: one process, so a lease is its
    own), read without the writer's turn: every stored message wakes the send worker too,
    and a claim that finds nothing would still queue behind ingest for the writer lock."""
    return connection.execute(_ANY_DUE, {"now": now}).first() is not None


def _owned(lease: Lease) -> Any:
    """A row still held under the lease its worker took: one that ran out and was taken
    over by another worker stays as that worker leaves it."""
    outgoing_id, held_until = lease
    return and_(_out.c.id == outgoing_id, _out.c.status == QUEUED, _out.c.lease_until == held_until)


def mark_sent(
    session: Session, lease: Lease, *, message_id: str, chat_id: int | None, now: datetime
) -> bool:
    """Sent, with the sender's message id and the chat it is stored in; False if the
    lease was no longer this worker's (nothing changed)."""
    values = {
        "status": OutgoingStatus.SENT,
        "sender_message_id": message_id,
        "chat_id": chat_id,
        "sent_at": now,
        "attempts": _out.c.attempts + 1,
        "last_error": "",
    }
    return _finish(session, lease, values, now)


def _finish(session: Session, lease: Lease, values: dict[str, Any], now: datetime) -> bool:
    """A held send sent or failed for good, its lease ended and its lane handed on."""
    done = changed(
        session,
        update(_out).where(_owned(lease)).values(lease_until=None, leased_by=None, **values),
    )
    if done:
        _hand_on(session, lease[0], now)
    return bool(done)


def attribute_sent(session: Session, workspace_id: int, message_id: str, sender_name: str) -> None:
    """A sent message stored from its echo before its send was recorded takes the send's
    author as its sender (a delivery of it that has not gone out yet shows them too)."""
    changed(
        session,
        update(Message)
        .where(
            Message.workspace_id == workspace_id,
            Message.external_id == message_id,
            Message.direction == "sent",
        )
        .values(sender_name=sender_name),
    )


def retry_later(session: Session, lease: Lease, *, error: str, at: datetime) -> None:
    changed(
        session,
        update(_out)
        .where(_owned(lease))
        .values(
            next_try_at=at,
            last_error=error,
            lease_until=None,
            leased_by=None,
            attempts=_out.c.attempts + 1,
        ),
    )


def mark_failed(
    session: Session, lease: Lease, *, error: str, attempted: bool, now: datetime
) -> bool:
    """Failed for good; False if the lease was no longer this worker's."""
    values = {
        "status": OutgoingStatus.FAILED,
        "last_error": error,
        "attempts": _out.c.attempts + int(attempted),
    }
    return _finish(session, lease, values, now)


def release(session: Session, leases: Sequence[Lease]) -> None:
    """Give back claimed sends that were not attempted."""
    for lease in leases:
        changed(session, update(_out).where(_owned(lease)).values(lease_until=None, leased_by=None))


def release_all_leases(session: Session) -> None:
    """On a single-process start nobody else can hold a lease: a crash's leases end now."""
    changed(
        session,
        update(_out)
        .where(_out.c.status == QUEUED, _out.c.lease_until.is_not(None))
        .values(lease_until=None, leased_by=None),
    )


def extend_leases(session: Session, leases: Sequence[Lease], until: datetime) -> list[int]:
    """The leases still the ones a worker took now run to ``until``; their sends' ids."""
    extended: list[int] = []
    for lease in leases:
        if changed(session, update(_out).where(_owned(lease)).values(lease_until=until)):
            extended.append(lease[0])
    return extended


def fail_reported(session: Session, source_id: int, message_id: str, error: str) -> list[int]:
    """The sender reported our sent message ``message_id`` failed: its send is failed, with
    the reason; returns the ids of the sends that changed (none: not ours, or failed)."""
    return list(
        session.scalars(
            update(_out)
            .where(
                _out.c.source_id == source_id,
                _out.c.sender_message_id == message_id,
                _out.c.sender_message_id != "",
                _out.c.status != OutgoingStatus.FAILED,
            )
            .values(status=OutgoingStatus.FAILED, last_error=error)
            .returning(_out.c.id)
        )
    )


def requeue(session: Session, workspace_id: int, outgoing_id: int, now: datetime) -> bool:
    """A failed send queued again (the chat page's retry), as a new one: its attempts,
    back-off and give-up time start over; False if it is not failed. If its chat has sends
    queued (one may be in flight), it waits behind them and goes next: never two at once."""
    found = session.execute(
        select(_out.c.account_id, _out.c.chat_key).where(
            _out.c.id == outgoing_id,
            _out.c.workspace_id == workspace_id,
            _out.c.status == OutgoingStatus.FAILED,
        )
    ).first()
    if found is None:
        return False
    due = BEHIND if _lane_taken(session, found.account_id, found.chat_key) else now
    return bool(
        changed(
            session,
            update(_out)
            .where(_out.c.id == outgoing_id, _out.c.status == OutgoingStatus.FAILED)
            .values(
                status=QUEUED,
                next_try_at=due,
                queued_at=now,
                attempts=0,
                last_error="",
                sender_message_id="",
            ),
        )
    )


def queue_depth(session: Session) -> tuple[int, datetime | None]:
    """(queued sends, when the oldest of them was queued), on the due index."""
    count, oldest = session.execute(
        select(func.count(), func.min(_out.c.created_at)).where(_out.c.status == QUEUED)
    ).one()
    return int(count), oldest
