"""Chats and messages: looked up and stored in bulk, one statement per kind of row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from chathooks.store.dialect import built, changed, count_by, insert_ignoring_conflicts, table
from chathooks.store.ids import get_by_id
from chathooks.store.models import BundleMessage, Chat, Message, Teammate, WhatsappAccount

ChatKey = tuple[int, str]


_chats = table(Chat)
_messages = table(Message)
_CHATS_BY_KEY = select(
    _chats.c.id,
    _chats.c.account_id,
    _chats.c.external_id,
    _chats.c.full_name,
    _chats.c.is_group,
    _chats.c.phone,
    _chats.c.has_deliverable,
).where(
    # Two IN lists, not one IN of (account, external id) pairs: SQLite searches its unique
    # index for pairs by the account alone, reading every chat of it on each request.
    _chats.c.account_id.in_(bindparam("accounts", expanding=True)),
    _chats.c.external_id.in_(bindparam("external_ids", expanding=True)),
)


def chats_by_key(session: Session, keys: Iterable[ChatKey]) -> dict[ChatKey, Any]:
    """Existing chats by (account id, external id), as plain rows (id, account_id,
    external_id, full_name, is_group, phone, has_deliverable)."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = session.connection().execute(
        _CHATS_BY_KEY,
        {
            "accounts": sorted({account for account, _ in wanted}),
            "external_ids": sorted({external for _, external in wanted}),
        },
    )
    found = {(row.account_id, row.external_id): row for row in rows}
    return {key: row for key, row in found.items() if key in wanted}


def _inserting_chats(session: Session) -> Any:
    return insert_ignoring_conflicts(session, Chat).returning(
        _chats.c.id, _chats.c.account_id, _chats.c.external_id
    )


def insert_chats(session: Session, rows: Sequence[dict[str, Any]]) -> dict[ChatKey, int]:
    """Insert chats, skipping any a concurrent request created; returns the ones inserted."""
    if not rows:
        return {}
    stmt = built(session, _inserting_chats)
    return {
        (account, external): chat_id
        for chat_id, account, external in session.connection().execute(stmt, list(rows))
    }


def claim_first_deliverable(session: Session, chat_ids: Iterable[int]) -> set[int]:
    """Mark chats as having a deliverable message; returns those that had none until now.

    One statement, so of two concurrent requests only one sees a chat as still new.
    """
    chat_ids = list(chat_ids)
    if not chat_ids:
        return set()
    stmt = (
        update(Chat)
        .where(Chat.id.in_(chat_ids), Chat.has_deliverable.is_(False))
        .values(has_deliverable=True)
        .returning(Chat.id)
        .execution_options(synchronize_session=False)
    )
    return set(session.scalars(stmt))


def update_chat(session: Session, chat_id: int, values: dict[str, Any]) -> None:
    """Set some of a chat's columns (its name, its phone)."""
    session.execute(update(Chat).where(Chat.id == chat_id).values(**values))


_STORED_MESSAGE_CHATS = select(_messages.c.external_id, _messages.c.chat_id).where(
    _messages.c.workspace_id == bindparam("workspace"),
    _messages.c.external_id.in_(bindparam("external_ids", expanding=True)),
)


def stored_message_chats(
    session: Session, workspace_id: int, external_ids: Iterable[str]
) -> dict[str, int]:
    """Of these message ids, the ones already stored, with their chat ids."""
    rows = session.connection().execute(
        _STORED_MESSAGE_CHATS, {"workspace": workspace_id, "external_ids": list(set(external_ids))}
    )
    return {external_id: chat_id for external_id, chat_id in rows}


def _inserting_messages(session: Session) -> Any:
    return insert_ignoring_conflicts(session, Message).returning(
        _messages.c.id, _messages.c.external_id
    )


def insert_messages(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert messages, skipping ids stored meanwhile, and move their chats' latest
    activity on; returns external id -> row id."""
    if not rows:
        return {}
    stmt = built(session, _inserting_messages)
    result = session.connection().execute(stmt, list(rows))
    inserted = {external_id: row_id for row_id, external_id in result}
    _note_activity(session, [row for row in rows if row["external_id"] in inserted])
    return inserted


_NOTE_ACTIVITY = (
    update(_chats)
    .where(
        _chats.c.id == bindparam("chat"),
        or_(_chats.c.last_message_at.is_(None), _chats.c.last_message_at < bindparam("at")),
    )
    .values(last_message_at=bindparam("at"))
)


def _note_activity(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Each chat's ``last_message_at`` becomes its newest message's timestamp (an older
    message arriving late leaves it). In chat id order: concurrent requests lock the
    same chats in the same order."""
    latest: dict[int, datetime] = {}
    for row in rows:
        chat, at = row["chat_id"], row["timestamp"]
        if chat not in latest or at > latest[chat]:
            latest[chat] = at
    if latest:
        session.connection().execute(
            _NOTE_ACTIVITY, [{"chat": chat, "at": latest[chat]} for chat in sorted(latest)]
        )


def get_chat(session: Session, workspace_id: int, chat_id: int) -> Chat | None:
    chat = get_by_id(session, Chat, chat_id)
    return chat if chat and chat.workspace_id == workspace_id else None


def set_responsible(session: Session, chat_id: int, teammate_id: int | None) -> None:
    session.execute(update(Chat).where(Chat.id == chat_id).values(responsible_id=teammate_id))


def unassign(session: Session, teammate_id: int) -> int:
    """No chat keeps this teammate as its responsible; returns how many had them."""
    return changed(
        session, update(Chat).where(Chat.responsible_id == teammate_id).values(responsible_id=None)
    )


def responsible_counts(session: Session, workspace_id: int) -> dict[int, int]:
    """Chats per responsible teammate."""
    return count_by(session, Chat.responsible_id, Chat.workspace_id == workspace_id)


def chat_counts(session: Session, workspace_id: int) -> dict[int, int]:
    """Chats per WhatsApp account."""
    return count_by(session, Chat.account_id, Chat.workspace_id == workspace_id)


def chat_messages(session: Session, chat_id: int) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .where(Message.chat_id == chat_id)
            .order_by(Message.timestamp, Message.id)
        )
    )


def latest_message(session: Session, workspace_id: int) -> Message | None:
    return session.scalars(
        select(Message)
        .where(Message.workspace_id == workspace_id, Message.has_attachments.is_(False))
        .order_by(Message.id.desc())
        .limit(1)
    ).first()


_messages = table(Message)
_bundled = table(BundleMessage)
PAYLOAD_FIELDS = (
    "id",
    "chat_id",
    "external_id",
    "direction",
    "timestamp",
    "received_at",
    "sender_name",
    "sender_phone",
    "recipient_name",
    "recipient_phone",
    "text",
    "is_first_in_chat",
)
"""A message's columns that a payload shows (and when it arrived, for the latency metric)."""
_PAYLOAD_COLUMNS = [_messages.c[name] for name in PAYLOAD_FIELDS]
_MESSAGES_BY_ID = select(*_PAYLOAD_COLUMNS).where(
    _messages.c.id.in_(bindparam("ids", expanding=True))
)
_BUNDLED = (
    select(_bundled.c.delivery_id, *_PAYLOAD_COLUMNS)
    .join_from(_bundled, _messages, _messages.c.id == _bundled.c.message_id)
    .where(_bundled.c.delivery_id.in_(bindparam("ids", expanding=True)))
)


def messages_by_id(session: Session, ids: Iterable[int]) -> dict[int, Any]:
    """The columns a payload shows (and when each arrived, for the latency metric), as
    plain rows (attribute access like the model)."""
    ids = list(set(ids))
    if not ids:
        return {}
    return {row.id: row for row in session.execute(_MESSAGES_BY_ID, {"ids": ids})}


def bundled_messages(session: Session, delivery_ids: Iterable[int]) -> dict[int, list[Any]]:
    """Each bundle's messages, as ``messages_by_id`` gives them, in one query."""
    ids = list(set(delivery_ids))
    members: dict[int, list[Any]] = {}
    if ids:
        for row in session.execute(_BUNDLED, {"ids": ids}):
            members.setdefault(row.delivery_id, []).append(row)
    return members


def _rows_by_id(session: Session, model: Any, ids: Iterable[int]) -> dict[int, Any]:
    rows = table(model)
    return {row.id: row for row in session.execute(select(rows).where(rows.c.id.in_(set(ids))))}


def chat_contexts(session: Session, chat_ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    """Around each chat, as plain rows: (chat, its account, the account's owner, the
    responsible teammate or None) — everything a payload names."""
    chat_ids = list(set(chat_ids))
    if not chat_ids:
        return {}
    chats = list(_rows_by_id(session, Chat, chat_ids).values())
    accounts = _rows_by_id(session, WhatsappAccount, {c.account_id for c in chats})
    people_ids = {a.teammate_id for a in accounts.values()}
    people_ids |= {c.responsible_id for c in chats if c.responsible_id is not None}
    people = _rows_by_id(session, Teammate, people_ids)
    out: dict[int, tuple[Any, ...]] = {}
    for chat in chats:
        account = accounts[chat.account_id]
        responsible = people.get(chat.responsible_id) if chat.responsible_id else None
        out[chat.id] = (chat, account, people[account.teammate_id], responsible)
    return out


def received_between(
    session: Session, workspace_id: int, since: datetime, until: datetime
) -> list[Message]:
    """Forwardable messages received in [since, until), in arrival order (for replay)."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.workspace_id == workspace_id,
                Message.received_at >= since,
                Message.received_at < until,
                Message.has_attachments.is_(False),
            )
            .order_by(Message.id)
        )
    )


def chat_facts(session: Session, chat_ids: Iterable[int]) -> dict[int, tuple[bool, str]]:
    """Per chat: (is it a group, its account's phone), what webhook filters look at."""
    rows = session.execute(
        select(Chat.id, Chat.is_group, WhatsappAccount.phone)
        .join(WhatsappAccount, WhatsappAccount.id == Chat.account_id)
        .where(Chat.id.in_(list(chat_ids)))
    )
    return {chat_id: (is_group, phone) for chat_id, is_group, phone in rows}
