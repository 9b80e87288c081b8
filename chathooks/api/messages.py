"""Message events in, and the chats they create."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from chathooks import ingest, metrics, payloads, workspaces
from chathooks.api.deps import RuntimeDep, TokenHashDep, WorkspaceDep, unauthorized, workspace_of
from chathooks.api.errors import ERRORS
from chathooks.runtime import Runtime
from chathooks.schemas import (
    BatchResult,
    ChatOut,
    ChatPatch,
    MessageBatch,
    MessageEvent,
    MessageResult,
)
from chathooks.store import tenants

router = APIRouter(prefix="/api/v1", responses=ERRORS)

Answer = dict[str, str]
"""A ``MessageResult`` as JSON, rendered without FastAPI validating the answer (which
cost about a tenth of a single-message request)."""


def _answers(outcomes: list[ingest.Outcome]) -> list[Answer]:
    return [
        {"message_id": o.message_id, "chat_id": str(o.chat_id), "status": o.status}
        for o in outcomes
    ]


def _stored(rt: Runtime, outcomes: list[ingest.Outcome]) -> None:
    """After the commit: wake this process' workers (other processes' were notified by
    the commit) and count what was new."""
    rt.wake_local()
    metrics.count_ingested("api", sum(o.status != "duplicate" for o in outcomes))


def _ingest(rt: Runtime, token: str, events: list[MessageEvent]) -> list[Answer]:
    """The caller's workspace is read in the same transaction that stores the events."""
    with rt.transaction() as session:
        workspace = workspace_of(session.connection(), token)
        outcomes = ingest.ingest(session, workspace, events, rt.clock.now(), rt.settings.base_url)
    _stored(rt, outcomes)
    return _answers(outcomes)


@dataclass(frozen=True, slots=True)
class _Waiting:
    token: str
    event: MessageEvent
    answer: asyncio.Future[Answer]


class SingleMessages:
    """Single-message requests that arrive while a transaction runs are stored together in
    the next one, each still answered on its own.

    Senders post one message per request, and a transaction's fixed cost (the token,
    account and webhook reads, the commit, a thread hop) was most of each request's;
    shared, it is paid once per group. Every guarantee of a request stays: its message and
    deliveries are committed together before it is answered, a duplicate is a duplicate
    (also of an earlier request in the same group), and a request that fails (an unknown
    token or account, or anything else) fails alone: a group that raises is stored again
    one request per transaction.
    """

    MAX_GROUP = 500

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.parallel = 1 if rt.settings.is_sqlite else 4
        """Groups stored at once: SQLite has one writer; PostgreSQL takes a few."""
        self.waiting: list[_Waiting] = []
        self.storing = 0
        """Tasks storing groups; each stops once it finds nothing waiting."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def store(self, token: str, event: MessageEvent) -> Answer:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # a new event loop (the app restarted in tests)
            self.loop, self.waiting, self.storing, self.tasks = loop, [], 0, set()
        answer: asyncio.Future[Answer] = loop.create_future()
        self.waiting.append(_Waiting(token, event, answer))
        if self.storing < self.parallel:
            self.storing += 1
            task = loop.create_task(self._store_waiting())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await answer

    async def _store_waiting(self) -> None:
        try:
            await self._store_groups()
        finally:
            self.storing -= 1  # no await since the last look at ``waiting``

    async def _store_groups(self) -> None:
        while self.waiting:
            group = self.waiting[: self.MAX_GROUP]
            del self.waiting[: self.MAX_GROUP]
            try:
                # FastAPI's thread pool, as a sync route's: the default executor's few
                # threads are the delivery worker's.
                results = await run_in_threadpool(self._store_group, group)
            except asyncio.CancelledError:  # the loop is stopping
                for waiting in group:
                    waiting.answer.cancel()
                raise
            for waiting, result in zip(group, results, strict=True):
                if waiting.answer.done():  # the client went away
                    continue
                if isinstance(result, Exception):
                    waiting.answer.set_exception(result)
                else:
                    waiting.answer.set_result(result)

    def _store_group(self, group: list[_Waiting]) -> list[Answer | Exception]:
        try:
            with self.rt.transaction() as session:
                results, outcomes = self._ingest_group(session, group)
        except Exception as error:
            if len(group) == 1:
                return [error]
            return [self._store_group([waiting])[0] for waiting in group]
        _stored(self.rt, outcomes)
        return results

    def _ingest_group(
        self, session: Session, group: list[_Waiting]
    ) -> tuple[list[Answer | Exception], list[ingest.Outcome]]:
        """Each request's answer, or the error to raise for it; and what was stored."""
        results: dict[int, Answer | Exception] = {}
        by_workspace: dict[int, list[int]] = {}
        workspaces: dict[str, int | None] = {}
        for index, waiting in enumerate(group):
            if waiting.token not in workspaces:
                connection = session.connection()
                workspaces[waiting.token] = tenants.workspace_id_by_token_hash(
                    connection, waiting.token
                )
            found = workspaces[waiting.token]
            if found is None:
                results[index] = unauthorized()
            else:
                by_workspace.setdefault(found, []).append(index)
        stored: list[ingest.Outcome] = []
        now, base_url = self.rt.clock.now(), self.rt.settings.base_url
        for workspace, indexes in by_workspace.items():
            while indexes:
                events = [group[i].event for i in indexes]
                try:
                    outcomes = ingest.ingest(session, workspace, events, now, base_url)
                except ingest.UnknownAccount as error:  # raised before anything is written
                    results[indexes.pop(error.index)] = error
                    continue
                for index, answer in zip(indexes, _answers(outcomes), strict=True):
                    results[index] = answer
                stored += outcomes
                break
        return [results[index] for index in range(len(group))], stored


def _single_messages(request: Request) -> SingleMessages:
    """The app's one ``SingleMessages``, made on first use. (Called, not a dependency:
    FastAPI's bookkeeping per dependency is a noticeable part of a request.)"""
    state = request.app.state
    if not hasattr(state, "single_messages"):
        state.single_messages = SingleMessages(state.runtime)
    found: SingleMessages = state.single_messages
    return found


@router.post(
    "/messages",
    summary="Send a message",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageResult,
    responses={200: {"description": "A duplicate message_id: nothing re-sent."}},
)
async def post_message(event: MessageEvent, token: TokenHashDep, request: Request) -> JSONResponse:
    """Store one message event and queue it for every webhook; 202 once stored."""
    result = await _single_messages(request).store(token, event)
    duplicate = result["status"] == "duplicate"
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
