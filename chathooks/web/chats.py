"""The Chats list, the chat page (every payload's ``chat_url``, with its reply section:
``replies.py``), bundle permalinks that open it, and the chat's responsible teammate, set
from the page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from chathooks import chat_list, errors, retention, workspaces
from chathooks.store import deliveries, messages
from chathooks.web.csrf import require_csrf
from chathooks.web.errors import PageNotFound
from chathooks.web.render import flash, render, runtime, see_other
from chathooks.web.reply_box import ReplyBox, fingerprinted, reply_box
from chathooks.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)


def chat_path(chat_id: int) -> str:
    return f"/chat/{chat_id}/messages/"


@router.get("/chats")
def chats_page(request: Request, viewer: ViewerDep, q: str = "", after: str = "") -> HTMLResponse:
    """The workspace's chats, latest message first, a page at a time (``after`` is where
    the previous page ended; one that names nothing starts over)."""
    try:
        position = chat_list.decode_cursor(after) if after else None
    except ValueError:
        position = None
    search = q.strip()[:200]
    rt = runtime(request)
    with rt.transaction() as session:
        found = chat_list.chat_list(session, viewer.workspace_id, search=search, after=position)
    return render(
        request,
        "chats.html",
        viewer,
        chats=found.chats,
        next_cursor=found.next_cursor,
        search=search,
        later_page=position is not None,
        now=rt.clock.now(),
    )


@router.get("/chat/{chat_id}/messages/")
def chat_page(request: Request, chat_id: int, viewer: ViewerDep) -> HTMLResponse:
    """All of a chat's messages by timestamp, then arrival; ``#m{id}`` marks one."""
    return render_chat(request, viewer, chat_id)


def render_chat(
    request: Request,
    viewer: Viewer,
    chat_id: int,
    box: ReplyBox | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    """The chat page, with its reply section as ``box`` has it (a refused reply's text and
    error) or fresh."""
    rt = runtime(request)
    kept_since = retention.horizon(rt)
    with rt.transaction() as session:
        try:
            ctx = workspaces.get_chat(session, viewer.workspace_id, chat_id)
            box = fingerprinted(request, viewer, box or reply_box(session, viewer, chat_id))
        except errors.NotFound:
            raise PageNotFound() from None
        return render(
            request,
            "chat.html",
            viewer,
            status_code=status_code,
            ctx=ctx,
            messages=messages.chat_messages(session, chat_id),
            teammates=workspaces.list_teammates(session, viewer.workspace_id),
            removed_before=kept_since if _older(session, viewer, chat_id, kept_since) else None,
            retention_days=rt.settings.retention_days,
            box=box,
        )


def _older(session: Session, viewer: Viewer, chat_id: int, moment: datetime) -> bool:
    """The chat began before ``moment``: retention may have removed its first messages."""
    chat = messages.get_chat(session, viewer.workspace_id, chat_id)
    return chat is not None and chat.created_at < moment


@router.post("/chat/{chat_id}/responsible", dependencies=[Depends(require_csrf)])
def set_responsible(
    request: Request,
    chat_id: int,
    viewer: ViewerDep,
    responsible_email: Annotated[str, Form()] = "",
) -> Response:
    """The teammate named in every payload of this chat from now on (empty: nobody)."""
    email = responsible_email.strip() or None
    try:
        with runtime(request).transaction() as session:
            chat = workspaces.get_chat(session, viewer.workspace_id, chat_id).chat
            workspaces.set_responsible(session, viewer.workspace_id, chat.id, email)
    except errors.NotFound:
        raise PageNotFound() from None
    except errors.BadField as error:
        flash(request, f"Not changed: {error}.", "error")
        return see_other(chat_path(chat_id))
    flash(request, f"Responsible set to {email}." if email else "This chat has no responsible now.")
    return see_other(chat_path(chat_id))


@router.get("/permalink/{uuid}/")
def permalink(request: Request, uuid: str, viewer: ViewerDep) -> Response:
    """A bundle's stable link: the chat page at the bundle's first message. A bundle older
    than the retention horizon is gone, which the page says."""
    rt = runtime(request)
    with rt.transaction() as session:
        delivery = deliveries.by_uuid(session, uuid)
        chat = delivery and messages.get_chat(session, viewer.workspace_id, delivery.chat_id)
        if delivery is None:
            return render(
                request,
                "removed.html",
                viewer,
                status_code=status.HTTP_404_NOT_FOUND,
                removed_before=retention.horizon(rt),
                retention_days=rt.settings.retention_days,
            )
        if chat is None:
            raise PageNotFound()
        first = deliveries.first_bundle_message(session, delivery.id)
        target = chat_path(delivery.chat_id) + (f"#m{first.id}" if first else "")
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
