"""Message events in, and the chats they create."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from chathooks import ingest, metrics, payloads, workspaces
from chathooks.api.deps import (
    RuntimeDep,
    TokenHashDep,
    WorkspaceDep,
    unauthorized,
    workspace_of,
)
from chathooks.api.errors import ERRORS
from chathooks.group_commit import (
    EventAnswer,
    GroupCommit,
    TokenEvent,
    UnknownToken,
    event_answers,
    store_token_events,
)
from chathooks.runtime import Runtime
from chathooks.schemas import (
    BatchResult,
    ChatOut,
    ChatPatch,
    MessageBatch,
    MessageEvent,
    MessageResult,
)

router = APIRouter(prefix="/api/v1", responses=ERRORS)


def _ingest(rt: Runtime, token: str, events: list[MessageEvent]) -> list[EventAnswer]:
    """The caller's workspace is read in the same transaction that stores the events."""
    with rt.transaction() as session:
        workspace = workspace_of(session.connection(), token)
        outcomes = ingest.ingest(session, workspace, events, rt.clock.now(), rt.settings.base_url)
    rt.wake_local()  # other processes' workers were notified by the commit (ingest)
    answers = event_answers(outcomes)
    metrics.count_ingested("api", sum(a["status"] != "duplicate" for a in answers))
    return answers


@router.post(
    "/messages",
    summary="Send a message",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageResult,
    responses={200: {"description": "A duplicate message_id: nothing re-sent."}},
)
async def post_message(event: MessageEvent, token: TokenHashDep, request: Request) -> JSONResponse:
    """Store one message event and queue it for every webhook; 202 once stored. (Stored
    together with the other requests that arrive meanwhile: see ``group_commit``.) The
    answer is rendered without FastAPI validating it, which cost about a tenth of a
    request."""
    try:
        return await stored(request.app.state.group_commit, token, event)
    except UnknownToken:
        raise unauthorized() from None


async def stored(group_commit: GroupCommit, token: str, event: MessageEvent) -> JSONResponse:
    """A single message stored, as the route and ``api.lean`` answer it; raises
    ``UnknownToken`` if no workspace has the token (hash), ``ingest.UnknownAccount`` if the
    event names an account its workspace has not added (nothing stored either way)."""
    result = await group_commit.store(store_token_events, TokenEvent(token, event))
    duplicate = result["status"] == "duplicate"
    metrics.count_ingested("api", 0 if duplicate else 1)
    return JSONResponse(result, status.HTTP_200_OK if duplicate else status.HTTP_202_ACCEPTED)


@router.post(
    "/messages/batch",
    summary="Send up to 1,000 messages at once",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchResult,
)
def post_batch(batch: MessageBatch, token: TokenHashDep, rt: RuntimeDep) -> JSONResponse:
    """Up to 1,000 events in one transaction: all stored, or (on any bad item) none."""
    return JSONResponse({"results": _ingest(rt, token, batch.messages)}, status.HTTP_202_ACCEPTED)


def _chat_out(ctx: payloads.ChatContext, base_url: str) -> ChatOut:
    obj = payloads.chat_object(ctx, base_url, is_new_chat=False)
    return ChatOut(
        chat_id=obj["chat_id"],
        full_name=obj["full_name"],
        is_group=obj["is_group"],
        phone=obj["phone"],
        whatsapp_account_phone=ctx.account.phone,
        responsible_name=obj["responsible_name"],
        responsible_email=obj["responsible_email"],
        chat_url=obj["chat_url"],
    )


@router.get("/chats/{chat_id}", summary="Get a chat", response_model=ChatOut)
def get_chat(chat_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> ChatOut:
    """A chat as payloads show it, with its account and responsible teammate."""
    with rt.transaction() as session:
        return _chat_out(workspaces.get_chat(session, workspace, chat_id), rt.settings.base_url)


@router.patch(
    "/chats/{chat_id}", summary="Set a chat's responsible teammate", response_model=ChatOut
)
def patch_chat(chat_id: int, body: ChatPatch, workspace: WorkspaceDep, rt: RuntimeDep) -> ChatOut:
    """Assign the responsible teammate (by e-mail), or remove it with null."""
    with rt.transaction() as session:
        ctx = workspaces.get_chat(session, workspace, chat_id)
        email = str(body.responsible_email) if body.responsible_email else None
        workspaces.set_responsible(session, workspace, ctx.chat.id, email)
    with rt.transaction() as session:
        return _chat_out(workspaces.get_chat(session, workspace, chat_id), rt.settings.base_url)
