"""The Chats list: a workspace's chats by their latest message, newest first, a page at a
time, read along ``ix_chats_activity`` (each page reads its own rows, not the messages)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Row, literal, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from chathooks.store.models import Chat, Teammate, WhatsappAccount

Position = tuple[datetime, int]
"""Where a page ended: the last chat's (last_message_at, id)."""

_responsible = aliased(Teammate)
_PHONE_LIKE = re.compile(r"[+\d\s().-]*\d[+\d\s().-]*")


def latest_chats(
    session: Session,
    workspace_id: int,
    *,
    search: str,
    after: Position | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to ``limit`` chats after ``after``, each with its account's phone and its
    responsible teammate. ``search`` keeps chats whose name or phone contains it (any
    case); one written like a phone number is also looked for by its digits, so
    "+972 54-000" finds "+97254000…"."""
    query = (
        select(
            Chat.id,
            Chat.full_name,
            Chat.is_group,
            Chat.phone,
            Chat.last_message_at,
            WhatsappAccount.phone.label("account_phone"),
            _responsible.full_name.label("responsible_name"),
            _responsible.email.label("responsible_email"),
        )
        .join(WhatsappAccount, WhatsappAccount.id == Chat.account_id)
        .outerjoin(_responsible, _responsible.id == Chat.responsible_id)
        .where(Chat.workspace_id == workspace_id, Chat.last_message_at.is_not(None))
        .order_by(Chat.last_message_at.desc(), Chat.id.desc())
        .limit(limit)
    )
    if after is not None:
        at, chat_id = after
        position = tuple_(literal(at, Chat.last_message_at.type), literal(chat_id))
        query = query.where(tuple_(Chat.last_message_at, Chat.id) < position)
    if search:
        matches = [
            Chat.full_name.icontains(search, autoescape=True),
            Chat.phone.icontains(search, autoescape=True),
        ]
        if _PHONE_LIKE.fullmatch(search):
            digits = "".join(c for c in search if c.isdigit())
            matches.append(Chat.phone.contains(digits, autoescape=True))
        query = query.where(or_(*matches))
    return list(session.execute(query))
