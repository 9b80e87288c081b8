"""The chat page (every payload's ``chat_url``), bundle permalinks that open it, and the
chat's responsible teammate, set from the page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from chathooks import workspaces
from chathooks.store import deliveries, messages
from chathooks.web.csrf import require_csrf
from chathooks.web.pages import PageNotFound
from chathooks.web.render import flash, render, runtime, see_other
from chathooks.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)


def _chat_path(chat_id: int) -> str:
    return f"/chat/{chat_id}/messages/"


@router.get("/chat/{chat_id}/messages/")
def chat_page(request: Request, chat_id: int, viewer: ViewerDep) -> HTMLResponse:
    """All of a chat's messages by timestamp, then arrival; ``#m{id}`` marks one."""
    with runtime(request).transaction() as session:
        try:
            ctx = workspaces.get_chat(session, viewer.workspace_id, chat_id)
        except workspaces.NotFound:
            raise PageNotFound() from None
        return render(
            request,
            "chat.html",
            viewer,
            ctx=ctx,
            messages=messages.chat_messages(session, chat_id),
            teammates=workspaces.list_teammates(session, viewer.workspace_id),
        )


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
    except workspaces.NotFound:
        raise PageNotFound() from None
    except workspaces.BadField as error:
        flash(request, f"Not changed: {error}.", "error")
        return see_other(_chat_path(chat_id))
    flash(request, f"Responsible set to {email}." if email else "This chat has no responsible now.")
    return see_other(_chat_path(chat_id))


@router.get("/permalink/{uuid}/")
def permalink(request: Request, uuid: str, viewer: ViewerDep) -> Response:
    """A bundle's stable link: the chat page at the bundle's first message."""
    with runtime(request).transaction() as session:
        delivery = deliveries.by_uuid(session, uuid)
        chat = delivery and messages.get_chat(session, viewer.workspace_id, delivery.chat_id)
        if delivery is None or chat is None:
            raise PageNotFound()
        first = deliveries.first_bundle_message(session, delivery.id)
        target = _chat_path(delivery.chat_id) + (f"#m{first.id}" if first else "")
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
