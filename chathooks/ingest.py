"""A message event in: stored, and queued for every webhook in the same transaction.

Nothing here commits; the caller's unit of work does, so a message is stored and queued
together or not at all, and a bad batch changes nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from chathooks import filters, payloads
from chathooks.filters import ChatFacts
from chathooks.schedule import period_of
from chathooks.schemas import MessageEvent
from chathooks.store import deliveries, logs, messages, notices, tenants, webhooks
from chathooks.store.models import Delivery

BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
"""Meta's business-scoped user id (``US.13491208655302741918``; a parent one has
``ENT.``): how the Cloud API names a WhatsApp user to one business, with or without the
user's phone."""


class UnknownAccount(Exception):
    """The event names a WhatsApp account that this workspace has not added."""

    def __init__(self, index: int, phone: str) -> None:
        super().__init__(f"no WhatsApp account with phone {phone!r} in this workspace")
        self.index = index


Status = Literal["accepted", "skipped", "duplicate"]


@dataclass(frozen=True, slots=True)
class Outcome:
    message_id: str
    chat_id: int
    status: Status


def new_delivery_uuid() -> str:
    return str(uuid.uuid4())


def ingest(
    session: Session,
    workspace_id: int,
    events: Sequence[MessageEvent],
    now: datetime,
    base_url: str,
    *,
    accounts: Mapping[str, int] | None = None,
    owner_names: Mapping[str, str] | None = None,
) -> list[Outcome]:
    """Store the events and queue them; one outcome per event, in order. An unknown
    account raises ``UnknownAccount`` before anything is written, so a caller may go on
    without that event in the same transaction. ``accounts`` (phone → id), when the
    caller read them in this transaction already, spares reading them again.
    ``owner_names`` (phone → its owner's name) names the business's side of a message
    that leaves it unnamed, as the payload's ``whatsapp_account`` is (a source's events)."""
    if accounts is None:
        accounts = tenants.account_ids_by_phone(
            session, workspace_id, (e.whatsapp_account_phone for e in events)
        )
    for index, event in enumerate(events):
        if event.whatsapp_account_phone not in accounts:
            raise UnknownAccount(index, event.whatsapp_account_phone)

    stored = messages.stored_message_chats(session, workspace_id, (e.message_id for e in events))
    fresh: list[MessageEvent] = []
    seen = set(stored)
    for event in events:
        if event.message_id not in seen:
            seen.add(event.message_id)
            fresh.append(event)

    chat_ids, firsts, groups = _chats_for(session, workspace_id, fresh, accounts, now)
    rows = _message_rows(
        workspace_id,
        fresh,
        accounts=accounts,
        chat_ids=chat_ids,
        firsts=firsts,
        owner_names=owner_names or {},
        now=now,
    )
    new_ids = messages.insert_messages(session, rows)
    inserted = [
        _as_message(new_ids[row["external_id"]], row)
        for row in rows
        if row["external_id"] in new_ids
    ]
    phones = {account_id: phone for phone, account_id in accounts.items()}
    chats = {
        chat_id: ChatFacts(chat_id in groups, phones[account_id])
        for (account_id, _), chat_id in chat_ids.items()
    }
    _queue(session, workspace_id, inserted, chats=chats, now=now, base_url=base_url)

    chat_of = stored | {row["external_id"]: row["chat_id"] for row in rows}
    by_external = {m.external_id: m for m in inserted}
    outcomes = []
    for event in events:
        message = by_external.pop(event.message_id, None)
        if message is None:
            outcomes.append(Outcome(event.message_id, chat_of[event.message_id], "duplicate"))
        else:
            status: Status = "skipped" if message.has_attachments else "accepted"
            outcomes.append(Outcome(event.message_id, message.chat_id, status))
    return outcomes


def _chats_for(
    session: Session,
    workspace_id: int,
    events: Sequence[MessageEvent],
    accounts: Mapping[str, int],
    now: datetime,
) -> tuple[dict[messages.ChatKey, int], set[int], set[int]]:
    """Chat ids for the events' chats, by the (account, external id) each event names,
    creating missing ones; returns (those ids, the chats whose first deliverable message is
    among these events, the group chats).

    A chat named by Meta's business-scoped user id and given with a phone is the chat of
    that phone, ``<digits>@c.us``, while no chat has the user id yet: a customer whose
    chat began before Meta sent user ids keeps it. The phone ids ride along in the one
    lookup by (account, external id), the chats' unique key."""
    named = {_key(e, accounts): e for e in events}
    by_phone: dict[messages.ChatKey, messages.ChatKey] = {}
    for event in events:
        key = _key(event, accounts)
        if event.chat.phone and not event.chat.is_group and BSUID.fullmatch(key[1]):
            by_phone[key] = (key[0], _phone_chat_id(event.chat.phone))
    existing = messages.chats_by_key(session, {*named, *by_phone.values()})
    resolved = {
        key: by_phone[key] if key not in existing and by_phone.get(key) in existing else key
        for key in named
    }
    latest = {resolved[key]: event.chat for key, event in named.items()}
    names = {  # the latest name given: a sent message often does not know the contact's
        resolved[_key(e, accounts)]: e.chat.full_name for e in events if e.chat.full_name
    }
    phones = {  # a customer first known by a hidden id gets the phone a later message gives
        resolved[_key(e, accounts)]: e.chat.phone
        for e in events
        if e.chat.phone and not e.chat.is_group
    }
    deliverable = {resolved[_key(e, accounts)] for e in events if not e.attachments}
    # In key order: two batches creating the same chats lock them in the same order
    # (in arrival order they could deadlock each other on PostgreSQL).
    missing = sorted(key for key in latest if key not in existing)
    created = messages.insert_chats(
        session,
        [
            {
                "workspace_id": workspace_id,
                "account_id": key[0],
                "external_id": key[1],
                "full_name": names.get(key, ""),
                "is_group": latest[key].is_group,
                "phone": phones.get(key, ""),
                "created_at": now,
                "has_deliverable": key in deliverable,
            }
            for key in missing
        ],
    )
    raced = messages.chats_by_key(session, [key for key in missing if key not in created])
    found = existing | raced
    _update_chats(session, found, names, phones)
    ids = {key: chat.id for key, chat in found.items()} | created
    # A chat opened with a photo is still new when its first text arrives (SPEC §3).
    unannounced = [
        chat.id for key, chat in found.items() if key in deliverable and not chat.has_deliverable
    ]
    firsts = messages.claim_first_deliverable(session, unannounced)
    firsts |= {chat_id for key, chat_id in created.items() if key in deliverable}
    groups = {chat.id for chat in found.values() if chat.is_group}
    groups |= {chat_id for key, chat_id in created.items() if latest[key].is_group}
    return {key: ids[resolved[key]] for key in named}, firsts, groups


def _key(event: MessageEvent, accounts: Mapping[str, int]) -> messages.ChatKey:
    return accounts[event.whatsapp_account_phone], event.chat.external_id


def _phone_chat_id(phone: str) -> str:
    """The id WhatsApp gives a person's chat by phone: ``+972540000000`` is
    ``972540000000@c.us`` (as every source writes it)."""
    return phone.removeprefix("+") + "@c.us"


def _update_chats(
    session: Session,
    chats: Mapping[messages.ChatKey, Any],
    names: Mapping[messages.ChatKey, str],
    phones: Mapping[messages.ChatKey, str],
) -> None:
    """Stored chats take the latest name, and a phone when they had none; in id order, so
    concurrent batches lock the rows in the same order."""
    for key, chat in sorted(chats.items(), key=lambda item: item[1].id):
        values = {}
        if names.get(key, chat.full_name) != chat.full_name:
            values["full_name"] = names[key]
        if not chat.phone and not chat.is_group and phones.get(key):
            values["phone"] = phones[key]
        if values:
            messages.update_chat(session, chat.id, values)


def _message_rows(
    workspace_id: int,
    events: Sequence[MessageEvent],
    *,
    accounts: Mapping[str, int],
    chat_ids: dict[messages.ChatKey, int],
    firsts: set[int],
    owner_names: Mapping[str, str],
    now: datetime,
) -> list[dict[str, Any]]:
    rows = []
    firsts = set(firsts)
    for event in events:
        chat_id = chat_ids[_key(event, accounts)]
        is_first = chat_id in firsts and not event.attachments
        if is_first:
            firsts.discard(chat_id)
        sender_name, recipient_name = event.sender.full_name, event.recipient.full_name
        owner_name = owner_names.get(event.whatsapp_account_phone, "")
        if event.direction == "sent":
            sender_name = sender_name or owner_name
        elif not event.chat.is_group:
            recipient_name = recipient_name or owner_name
        rows.append(
            {
                "workspace_id": workspace_id,
                "chat_id": chat_id,
                "external_id": event.message_id,
                "direction": event.direction,
                "timestamp": event.timestamp,
                "received_at": now,
                "sender_name": sender_name,
                "sender_phone": event.sender.phone,
                "recipient_name": recipient_name,
                "recipient_phone": "" if event.chat.is_group else event.recipient.phone,
                "text": event.text,
                "attachments": event.attachments,
                "has_attachments": bool(event.attachments),
                "is_first_in_chat": is_first,
            }
        )
    return rows


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message just stored, kept as plain values to queue it without reading it back."""

    id: int
    workspace_id: int
    chat_id: int
    external_id: str
    direction: str
    timestamp: datetime
    received_at: datetime
    sender_name: str
    sender_phone: str
    recipient_name: str
    recipient_phone: str
    text: str
    attachments: list[Any]
    has_attachments: bool
    is_first_in_chat: bool


class Queueable(payloads.MessageRow, Protocol):
    """A stored message as queueing needs it: a fresh ``StoredMessage`` or a model row."""

    @property
    def chat_id(self) -> int: ...
    @property
    def has_attachments(self) -> bool: ...


def _as_message(row_id: int, row: dict[str, Any]) -> StoredMessage:
    return StoredMessage(id=row_id, **row)


class Target(Protocol):
    """A webhook as queueing needs it: a model row, or a plain row read for ingest."""

    @property
    def id(self) -> int: ...
    @property
    def aggregation(self) -> str: ...


def _queue(
    session: Session,
    workspace_id: int,
    inserted: Sequence[Queueable],
    *,
    chats: Mapping[int, ChatFacts],
    now: datetime,
    base_url: str,
) -> None:
    """Each webhook gets the messages its filters want; one with attachments is logged as
    skipped instead (for the webhooks that want it)."""
    if not inserted:
        return
    skipped = []
    queued = 0
    for webhook in webhooks.queueing(session, workspace_id):
        wanted = filters.wanted(webhook.filters, inserted, chats)
        skipped += [
            {
                "webhook_id": webhook.id,
                "at": now,
                "action": "skipped",
                "chat_id": m.chat_id,
                "message_count": 1,
                "error": "message has attachments",
            }
            for m in wanted
            if m.has_attachments
        ]
        queued += queue(
            session, webhook, [m for m in wanted if not m.has_attachments], now, base_url
        )
    logs.add_activity(session, skipped)
    if queued:
        notices.notify(session)  # every worker wakes when this commits (PostgreSQL)


def queue(
    session: Session,
    webhook: Target,
    forwardable: Sequence[Queueable],
    now: datetime,
    base_url: str,
    *,
    due_now: bool = False,
) -> int:
    """Queue messages for one webhook in its format; returns the deliveries created."""
    if webhook.aggregation == "none":
        queue_singles(session, webhook.id, forwardable, now)
        return len(forwardable)
    return gather(session, webhook, forwardable, now, base_url, due_now=due_now)


def queue_singles(
    session: Session, webhook_id: int, queued: Sequence[Queueable], now: datetime
) -> None:
    deliveries.insert_singles(
        session,
        [
            {
                "uuid": new_delivery_uuid(),
                "webhook_id": webhook_id,
                "chat_id": m.chat_id,
                "message_id": m.id,
                "status": "pending",
                "due_at": now,
                "aggregation": "none",
                "created_at": now,
            }
            for m in queued
        ],
    )


def gather(
    session: Session,
    webhook: Target,
    gathered: Sequence[Queueable],
    now: datetime,
    base_url: str,
    *,
    due_now: bool = False,
) -> int:
    """Add messages to their chat's open bundle for the current period; returns new bundles.

    A bundle that would pass a size limit is closed (it stays due at its period's end) and
    a new one opened, so a busy chat goes out as several bundles, in order.
    """
    start, end = period_of(webhook.aggregation, now)
    footer = len(payloads.note_footer(payloads.permalink(base_url, new_delivery_uuid())))
    chat_ids = {m.chat_id for m in gathered}
    found = {} if due_now else deliveries.open_bundles(session, webhook.id, chat_ids, start)
    open_bundles: dict[int, Delivery | None] = {c: found.get(c) for c in chat_ids}
    links = []
    opened = 0
    for message in gathered:
        bundle = open_bundles[message.chat_id]
        body, note = payloads.bundle_costs(message, footer)
        while bundle is None or (
            bundle.message_count
            and not payloads.bundle_fits(
                bundle.message_count + 1,
                bundle.body_bytes + body,
                bundle.note_chars + note,
                footer,
            )
        ):
            if bundle is not None:
                bundle.status = "pending"
                session.flush()
            row = {
                "uuid": new_delivery_uuid(),
                "webhook_id": webhook.id,
                "chat_id": message.chat_id,
                "status": "pending" if due_now else "open",
                "due_at": now if due_now else end,
                "period_start": start,
                "aggregation": webhook.aggregation,
                "message_count": 0,
                "body_bytes": 0,
                "note_chars": 0,
                "created_at": now,
            }
            if due_now:
                bundle = deliveries.add_bundle(session, row)
            else:
                bundle = deliveries.add_open_bundle(session, row)
                if bundle is None:  # a concurrent request opened it first: join that one
                    bundle = deliveries.open_bundle(session, webhook.id, message.chat_id, start)
                    continue
            opened += 1
        open_bundles[message.chat_id] = bundle
        bundle.message_count += 1
        bundle.body_bytes += body
        bundle.note_chars += note
        links.append({"delivery_id": bundle.id, "message_id": message.id})
    deliveries.add_bundle_messages(session, links)
    return opened
