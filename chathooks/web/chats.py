"""The chat page (every payload's ``chat_url``) and bundle permalinks that open it."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from chathooks import workspaces
from chathooks.runtime import Runtime
from chathooks.store import deliveries, messages
from chathooks.web.pages import PageNotFound
from chathooks.web.render import render
from chathooks.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


@router.get("/chat/{chat_id}/messages/")
def chat_page(request: Request, chat_id: int, viewer: ViewerDep) -> HTMLResponse:
    """All of a chat's messages by timestamp, then arrival; ``#m{id}`` marks one."""
    with _rt(request).transaction() as session:
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
        )


@router.get("/permalink/{uuid}/")
def permalink(request: Request, uuid: str, viewer: ViewerDep) -> Response:
    """A bundle's stable link: the chat page at the bundle's first message."""
    with _rt(request).transaction() as session:
        delivery = deliveries.by_uuid(session, uuid)
        chat = delivery and messages.get_chat(session, viewer.workspace_id, delivery.chat_id)
        if delivery is None or chat is None:
            raise PageNotFound()
        first = deliveries.first_bundle_message(session, delivery.id)
        target = f"/chat/{delivery.chat_id}/messages/" + (f"#m{first.id}" if first else "")
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
