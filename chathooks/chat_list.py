"""The Chats list, for the page and ``GET /api/v1/chats``: a workspace's chats by their
latest message, newest first, found by name or phone, a page at a time.

Pages are joined by a cursor (where the last page ended), not an offset: a chat that
moves to the top while someone pages on is neither shown twice nor skipped over."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from chathooks.store import chats

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True, slots=True)
class ChatList:
    chats: list[Any]
    """Rows of ``store.chats.latest_chats``."""
    next_cursor: str | None
    """Where the next page starts; None on the last page."""


def encode_cursor(position: chats.Position) -> str:
    at, chat_id = position
    text = f"{at.astimezone(UTC).isoformat()}|{chat_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> chats.Position:
    """The position a cursor names; ValueError for text that names none."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, chat_id = text.split("|")
        moment = datetime.fromisoformat(at).astimezone(UTC)
        if not (chat_id.isdecimal() and len(chat_id) <= 18):  # a 64-bit id
            raise ValueError
        return moment, int(chat_id)
    except (ValueError, OverflowError, binascii.Error):
        raise ValueError("is not a cursor from a previous page") from None


def chat_list(
    session: Session,
    workspace_id: int,
    *,
    search: str = "",
    after: chats.Position | None = None,
    limit: int = PAGE_SIZE,
) -> ChatList:
    rows = chats.latest_chats(
        session, workspace_id, search=search.strip(), after=after, limit=limit + 1
    )
    if len(rows) <= limit:
        return ChatList(rows, None)
    last = rows[limit - 1]
    return ChatList(rows[:limit], encode_cursor((last.last_message_at, last.id)))
