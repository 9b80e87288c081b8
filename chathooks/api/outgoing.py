"""Sending to WhatsApp through the account's source: to a chat, or to a phone number, and
following the send (``chathooks.send``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, status
from fastapi.responses import JSONResponse

from chathooks.api.deps import RuntimeDep, WorkspaceDep
from chathooks.api.errors import ERRORS
from chathooks.schemas import ChatSendIn, ErrorOut, OutgoingOut, PhoneSendIn, TemplateIn
from chathooks.send import queue
from chathooks.sources.protocol import Template

router = APIRouter(prefix="/api/v1", tags=["sending"], responses=ERRORS)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Any unique text of yours: a retry with the same key and body is answered "
        "as the first request was and sends nothing more; the same key with another body is "
        "a 409.",
    ),
]
QUEUED: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued; follow it with `GET /api/v1/outgoing/{id}`."},
    409: {
        "model": ErrorOut,
        "description": "The chat's WhatsApp account has no source that can send (what to set "
        "up is in `detail`), or the Idempotency-Key was used for a different request.",
    },
}


def _template(given: TemplateIn | None) -> Template | None:
    if given is None:
        return None
    return Template(given.name, given.language, tuple(given.parameters))


def _answer(queued: queue.Queued) -> JSONResponse:
    """The first answer again for a replayed key (as it was then, not the send's state now)."""
    return JSONResponse(
        OutgoingOut.model_validate(queued.answer).model_dump(mode="json"),
        status.HTTP_202_ACCEPTED,
    )


@router.post(
    "/chats/{chat_id}/messages",
    summary="Send a message to a chat",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OutgoingOut,
    responses=QUEUED,
)
def send_to_chat(
    chat_id: int,
    body: ChatSendIn,
    workspace: WorkspaceDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue a text to a chat (direct or group), sent through the source of the chat's
    WhatsApp account, in order with the chat's other sends. Once sent it comes back to your
    webhooks as a `sent` message, once."""
    with rt.transaction() as session:
        queued = queue.enqueue_to_chat(
            session,
            workspace,
            chat_id,
            text=body.text,
            template=_template(body.template),
            idempotency_key=idempotency_key,
            now=rt.clock.now(),
        )
    return _answer(queued)


@router.post(
    "/messages/send",
    summary="Send a message to a phone number",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OutgoingOut,
    responses=QUEUED,
)
def send_to_phone(
    body: PhoneSendIn,
    workspace: WorkspaceDep,
    rt: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Queue a text to a phone number from one of your WhatsApp accounts; the chat with that
    number is started when the message is sent, if it is new."""
    with rt.transaction() as session:
        queued = queue.enqueue_to_phone(
            session,
            workspace,
            account_phone=body.whatsapp_account_phone,
            phone=body.phone,
            text=body.text,
            template=_template(body.template),
            idempotency_key=idempotency_key,
            now=rt.clock.now(),
        )
    return _answer(queued)


@router.get("/outgoing/{outgoing_id}", summary="Follow a sent message", response_model=OutgoingOut)
def get_outgoing(outgoing_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> OutgoingOut:
    """Where a send is: `queued → sent`, or `failed` with the sender's reason."""
    with rt.transaction() as session:
        return OutgoingOut.model_validate(
            queue.answer_of(queue.get(session, workspace, outgoing_id))
        )


@router.post(
    "/outgoing/{outgoing_id}/retry",
    summary="Send a failed message again",
    response_model=OutgoingOut,
    responses={409: {"model": ErrorOut, "description": "The send is not `failed`."}},
)
def retry_outgoing(outgoing_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> OutgoingOut:
    """Queue a `failed` send again, as the chat page's **Retry** does: it goes out after the
    chat's sends queued before it, with its attempts counted afresh."""
    with rt.transaction() as session:
        retried = queue.retry(session, workspace, outgoing_id, rt.clock.now())
        return OutgoingOut.model_validate(queue.answer_of(retried))
