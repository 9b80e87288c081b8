"""Message events for ingest, and the raw client's body in the delivered wire shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

ACCOUNT_PHONE = "+972500000000"
ACCOUNT_NAME = "Amnon Haha"
ACCOUNT_EMAIL = "amnon@bench.example"
TEXT_CHARS = 560
"""Text length that makes a delivered ``none`` payload about 1 KB."""

_WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor 🙂 "


def text_for(index: int, chars: int = TEXT_CHARS) -> str:
    head = f"#{index} "
    return (head + _WORDS * (chars // len(_WORDS) + 1))[:chars]


def chat_external_id(chat: int) -> str:
    return f"9725{chat:08d}@c.us"


def chat_phone(chat: int) -> str:
    return f"+9725{chat:08d}"


def event(run: str, index: int, chat: int, at: datetime) -> dict[str, Any]:
    """One message event as ``POST /api/v1/messages`` takes it (schemas.MessageEvent)."""
    received = index % 2 == 0
    contact = {"full_name": f"Contact {chat}", "phone": chat_phone(chat)}
    account = {"full_name": ACCOUNT_NAME, "phone": ACCOUNT_PHONE}
    return {
        "whatsapp_account_phone": ACCOUNT_PHONE,
        "chat": {
            "external_id": chat_external_id(chat),
            "full_name": f"Contact {chat}",
            "is_group": False,
            "phone": chat_phone(chat),
        },
        "message_id": f"{run}-{index}",
        "direction": "received" if received else "sent",
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sender": contact if received else account,
        "recipient": account if received else contact,
        "text": text_for(index),
        "attachments": [],
    }


def batches(
    run: str, chats: int, per_chat: int, batch_size: int, *, chat_major: bool
) -> list[list[dict[str, Any]]]:
    """``chats * per_chat`` events in batches. ``chat_major`` keeps a chat's messages in
    one batch (fewer chats per batch); otherwise each round visits every chat once."""
    return list(iter_batches(run, chats, per_chat, batch_size, chat_major=chat_major))


def iter_batches(
    run: str, chats: int, per_chat: int, batch_size: int, *, chat_major: bool
) -> Iterator[list[dict[str, Any]]]:
    """:func:`batches`, made one batch at a time (a backlog of a million stays small)."""
    now = datetime.now(UTC)
    total = chats * per_chat
    for first in range(0, total, batch_size):
        indexes = range(first, min(first + batch_size, total))
        yield [event(run, i, i // per_chat if chat_major else i % chats, now) for i in indexes]


def raw_body(index: int) -> bytes:
    """A body shaped and sized like chathooks' ``none`` payload for message ``index``."""
    chat = index % 1000
    ev = event("raw", index, chat, datetime.now(UTC))
    return json.dumps(
        {
            "whatsapp_account": {
                "full_name": ACCOUNT_NAME,
                "email": ACCOUNT_EMAIL,
                "phone": ACCOUNT_PHONE,
            },
            "chat": {
                "full_name": f"Contact {chat}",
                "responsible_name": "",
                "responsible_email": "",
                "chat_url": f"http://127.0.0.1:8000/chat/{chat}/messages/",
                "chat_id": str(chat),
                "is_new_chat": False,
                "is_group": False,
                "phone": chat_phone(chat),
            },
            "message": {
                "direction": ev["direction"],
                "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                "message_id": ev["message_id"],
                "sender": ev["sender"],
                "recipient": ev["recipient"],
                "text": ev["text"],
            },
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
