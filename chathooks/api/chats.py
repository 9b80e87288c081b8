"""The workspace's chats, latest message first. (One chat, and its responsible teammate,
are in ``api.messages``, beside the events that create chats.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from chathooks import chat_list, payloads
from chathooks.api.deps import RuntimeDep, WorkspaceDep
from chathooks.api.errors import ERRORS
from chathooks.schemas import ChatListed, ChatListOut
from chathooks.storable import text_problem

router = APIRouter(prefix="/api/v1", responses=ERRORS)


def _storable(text: str) -> str:
    if problem := text_problem(text):
        raise ValueError(problem)
    return text


def _a_cursor(cursor: str | None) -> str | None:
    if cursor:
        chat_list.decode_cursor(cursor)
    return cursor


Search = Annotated[
    str,
    Query(
        max_length=200,
        description="Only chats whose name or phone contains this (any case); the digits "
        "of a phone are enough: `+972 54-000` finds +97254000….",
    ),
    AfterValidator(_storable),
]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page."),
    AfterValidator(_a_cursor),
]
Limit = Annotated[
    int, Query(ge=1, le=chat_list.MAX_PAGE_SIZE, description="Chats per page, at most 200.")
]


def _listed(row: Any, base_url: str) -> ChatListed:
    return ChatListed(
        chat_id=str(row.id),
        full_name=row.full_name,
        is_group=row.is_group,
        phone="" if row.is_group else row.phone,
        whatsapp_account_phone=row.account_phone,
        responsible_name=row.responsible_name or "",
        responsible_email=row.responsible_email or "",
        chat_url=payloads.chat_url(base_url, row.id),
        last_message_at=row.last_message_at,
    )


@router.get("/chats", summary="List the chats, latest message first", response_model=ChatListOut)
def list_chats(
    workspace: WorkspaceDep,
    rt: RuntimeDep,
    q: Search = "",
    cursor: Cursor = None,
    limit: Limit = chat_list.PAGE_SIZE,
) -> ChatListOut:
    """The workspace's chats by their latest message, newest first, `limit` at a time;
    `next_cursor` leads to the next page. Each links to its page in chathooks."""
    after = chat_list.decode_cursor(cursor) if cursor else None
    with rt.transaction() as session:
        found = chat_list.chat_list(session, workspace, search=q, after=after, limit=limit)
    return ChatListOut(
        chats=[_listed(row, rt.settings.base_url) for row in found.chats],
        next_cursor=found.next_cursor,
    )
