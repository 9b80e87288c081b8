"""What the chat page's reply section shows: the chat's replies with their states, and the
form to write one, or why this chat cannot be answered from here and where to set it up."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from fastapi import Request
from sqlalchemy.orm import Session

from chathooks import errors
from chathooks.schemas import SEND_TEXT_CHARS, ChatSendIn
from chathooks.send import queue
from chathooks.states import OutgoingStatus
from chathooks.store import messages, tenants
from chathooks.store.models import Outgoing
from chathooks.web.forms import checked
from chathooks.web.render import fragment_digest
from chathooks.web.viewer import Viewer

TOO_LONG = (
    f"The reply is longer than {SEND_TEXT_CHARS:,} characters (WhatsApp's limit): shorten it "
    "or send it in parts."
)
EMPTY = "Write a reply first: the text is empty."


def new_token() -> str:
    """A form's idempotency token: a second post of the same form sends nothing more."""
    return secrets.token_urlsafe(18)


@dataclass
class ReplyBox:
    """The reply section: the text is kept after an error, the token renewed after a send."""

    chat_id: int
    sends: list[Outgoing]
    problem: str
    setup_url: str
    setup_label: str
    token: str = field(default_factory=new_token)
    text: str = ""
    error: str = ""
    notice: str = ""
    max_chars: int = SEND_TEXT_CHARS
    seen: str = ""
    """The replies' fingerprint as shown: a poll that finds them unchanged answers 204."""

    @property
    def polling(self) -> bool:
        """Only while a reply is queued: the page stops asking once all have settled."""
        return any(send.status is OutgoingStatus.QUEUED for send in self.sends)


def reply_box(session: Session, viewer: Viewer, chat_id: int) -> ReplyBox:
    """The reply section of a chat of the viewer's workspace (``NotFound`` otherwise)."""
    chat = messages.get_chat(session, viewer.workspace_id, chat_id)
    if chat is None:
        raise errors.NotFound("chat")
    account = tenants.get_account(session, viewer.workspace_id, chat.account_id)
    source_id = account.source_id if account is not None else None
    return ReplyBox(
        chat_id=chat.id,
        sends=queue.chat_sends(session, viewer.workspace_id, chat.id),
        problem=queue.sending_problem(session, viewer.workspace_id, chat.account_id),
        setup_url=f"/whatsapp/sources/{source_id}" if source_id else "/whatsapp/sources",
        setup_label="Open the source's page" if source_id else "Open the WhatsApp sources",
    )


def fingerprinted(request: Request, viewer: Viewer, box: ReplyBox) -> ReplyBox:
    """``box`` with the fingerprint of its replies as a poll would render them now (only
    while one is queued: nothing polls otherwise)."""
    if box.polling:
        polled = replace(box, notice="", seen="")
        box.seen = fragment_digest(request, "_replies.html", viewer, box=polled)
    return box


def checked_text(text: str) -> tuple[str, str]:
    """The text as the API would send it, or why it cannot be sent (what the page says)."""
    if len(text) > SEND_TEXT_CHARS:
        return "", TOO_LONG
    valid, problems = checked(ChatSendIn, {"text": text})
    if valid is not None:
        return valid.text, ""
    if not text.strip():
        return "", EMPTY
    return "", "The reply " + next(iter(problems.values())).removesuffix(".") + "."
