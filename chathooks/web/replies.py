"""The chat page's reply box: a teammate answers the chat through its account's source
(``chathooks.send``); each reply's state (queued, sent, failed with the sender's reason)
is shown live, and a failed one can be retried.

Each rendered form carries a random token, the send's idempotency key: a double-click or
a resubmitted form queues one message. With htmx the form and each retry swap the reply
section in place; without it they post and come back to the page.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import Response

from chathooks import errors
from chathooks.send import queue
from chathooks.web.chats import chat_path, render_chat
from chathooks.web.csrf import require_csrf
from chathooks.web.errors import PageNotFound
from chathooks.web.forms import sentence
from chathooks.web.render import flash, render, runtime, see_other
from chathooks.web.reply_box import ReplyBox, checked_text, fingerprinted, reply_box
from chathooks.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)
CsrfChecked = [Depends(require_csrf)]

TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""A form's token as ``reply_box.new_token`` makes it; anything else is no form of ours."""
STALE = "This form is out of date: reload the page and send the reply again."
REUSED = (
    "This form was sent before with another text: press Send again to send this one as a new reply."
)


def _answer(request: Request, viewer: Viewer, box: ReplyBox, fragment: str) -> Response:
    """htmx: the ``fragment`` in place (the section after a send, the replies after a
    retry, so a reply being written stays). A plain form: back to the page with a notice,
    or the page again with the error and the text kept (422)."""
    if request.headers.get("hx-request"):
        return render(request, fragment, viewer, box=fingerprinted(request, viewer, box))
    if box.error:
        return render_chat(request, viewer, box.chat_id, box, status.HTTP_422_UNPROCESSABLE_CONTENT)
    flash(request, box.notice)
    return see_other(chat_path(box.chat_id))


@router.post("/chat/{chat_id}/replies", dependencies=CsrfChecked)
def send_reply(
    request: Request,
    chat_id: int,
    viewer: ViewerDep,
    text: Annotated[str, Form()] = "",
    reply_token: Annotated[str, Form()] = "",
) -> Response:
    """Queue the teammate's reply, sent as them; a form posted twice queues it once."""
    rt = runtime(request)
    given = text.replace("\r\n", "\n")  # a form's line breaks, as the text box counts them
    valid, problem = checked_text(given)
    if not problem and not TOKEN.fullmatch(reply_token):
        problem = STALE
    with rt.transaction() as session:
        try:
            box = reply_box(session, viewer, chat_id)
        except errors.NotFound:
            raise PageNotFound() from None
        if box.problem:
            problem = sentence(f"Not sent: {box.problem}")
        if not problem:
            try:
                queued = queue.enqueue_to_chat(
                    session,
                    viewer.workspace_id,
                    box.chat_id,
                    text=valid,
                    now=rt.clock.now(),
                    teammate_id=viewer.teammate_id,
                    idempotency_key=f"page-{reply_token}",
                )
            except errors.Conflict:  # a form sent before, then edited (Back)
                problem, reply_token = REUSED, ""
            else:
                box.notice = "Reply already queued." if queued.replayed else "Reply queued."
                box.sends = queue.chat_sends(session, viewer.workspace_id, box.chat_id)
    if problem:
        box.text, box.error = given, problem
        box.token = reply_token if TOKEN.fullmatch(reply_token) else box.token
    return _answer(request, viewer, box, "_reply.html")


@router.post("/chat/{chat_id}/replies/{outgoing_id}/retry", dependencies=CsrfChecked)
def retry_reply(request: Request, chat_id: int, outgoing_id: int, viewer: ViewerDep) -> Response:
    """Queue a failed reply of this chat again."""
    rt = runtime(request)
    with rt.transaction() as session:
        try:
            box = reply_box(session, viewer, chat_id)
            if queue.get(session, viewer.workspace_id, outgoing_id).chat_id != box.chat_id:
                raise errors.NotFound("reply")
            queue.retry(session, viewer.workspace_id, outgoing_id, rt.clock.now())
            box.notice = "Queued again."
        except errors.NotFound:
            raise PageNotFound() from None
        except errors.Conflict:  # a second click: it was queued again already
            box.notice = "This reply is not failed any more: nothing to retry."
        box.sends = queue.chat_sends(session, viewer.workspace_id, box.chat_id)
    return _answer(request, viewer, box, "_replies.html")


@router.get("/chat/{chat_id}/replies")
def replies_live(request: Request, chat_id: int, viewer: ViewerDep, seen: str = "") -> Response:
    """What the page polls every 2 s while a reply is queued: the replies with their
    states; 204 when they are as the page shows them (its focus and scroll stay)."""
    with runtime(request).transaction() as session:
        try:
            box = reply_box(session, viewer, chat_id)
        except errors.NotFound:
            raise PageNotFound() from None
    box = fingerprinted(request, viewer, box)
    if box.polling and box.seen == seen:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return render(request, "_replies.html", viewer, box=box)
