"""Group commit: requests that arrive while a transaction runs are stored together in the
next one, each still answered on its own.

Senders post one message per request (the API's single messages, every WhatsApp source),
and a transaction's fixed cost (the commit, the writer's turn on SQLite, the reads of
accounts and webhooks, a thread hop) was most of each request's; shared, it is paid once
per group. Every guarantee of a request stays: what it stores is committed before it is
answered, a duplicate is a duplicate (also of an earlier request in the same group), and a
request that fails fails alone: a group whose transaction raises is stored again one
request per transaction.

A group may mix kinds of requests (API messages, source requests, request-log rows): each
kind's ``Storer`` stores its own share, in the order they arrived, in the one transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from chathooks import ingest
from chathooks.runtime import Runtime
from chathooks.schemas import MessageEvent
from chathooks.store import tenants

Item_contra = TypeVar("Item_contra", contravariant=True)
Result_co = TypeVar("Result_co", covariant=True)


class Storer(Protocol[Item_contra, Result_co]):
    """Stores one kind of request for a group, in the group's transaction: a module-level
    function, so that requests of one kind find each other by it."""

    def __call__(
        self, session: Session, items: Sequence[Item_contra], /, *, now: datetime, base_url: str
    ) -> Sequence[Result_co | Exception]:
        """One result per item, in order: its answer, or the error to raise for it alone
        (the transaction still commits for the others). Raising fails the whole group,
        which is then stored again one item per transaction."""
        ...


@dataclass(frozen=True, slots=True)
class _Waiting:
    storer: Storer[Any, Any]
    item: Any
    answer: asyncio.Future[Any]


class GroupCommit:
    """One per app, made in its lifespan; ``store`` is called from the event loop."""

    MAX_GROUP = 500

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.parallel = 1 if rt.settings.is_sqlite else 4
        """Groups stored at once: SQLite has one writer; PostgreSQL takes a few."""
        self.waiting: list[_Waiting] = []
        self.storing = 0
        """Tasks storing groups; each stops once it finds nothing waiting."""
        self.tasks: set[asyncio.Task[None]] = set()

    async def store(self, storer: Storer[Item_contra, Result_co], item: Item_contra) -> Result_co:
        """``item`` stored in the next group; its result once that group is committed."""
        self.rt.arrived(time.monotonic())
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Result_co] = loop.create_future()
        self.waiting.append(_Waiting(storer, item, answer))
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

    def _store_group(self, group: list[_Waiting]) -> list[Any]:
        try:
            with self.rt.transaction() as session:
                results = self._store_kinds(session, group)
        except Exception as error:
            if len(group) == 1:
                return [error]
            return [self._store_group([waiting])[0] for waiting in group]
        self.rt.wake_local()  # other processes' workers were notified by the commit (ingest)
        return results

    def _store_kinds(self, session: Session, group: list[_Waiting]) -> list[Any]:
        """Each storer's share of the group, in the order of their first request."""
        shares: dict[Storer[Any, Any], list[int]] = {}
        for index, waiting in enumerate(group):
            shares.setdefault(waiting.storer, []).append(index)
        results: list[Any] = [None] * len(group)
        now, base_url = self.rt.clock.now(), self.rt.settings.base_url
        for indexes in shares.values():
            storer = group[indexes[0]].storer
            stored = storer(session, [group[i].item for i in indexes], now=now, base_url=base_url)
            for index, result in zip(indexes, stored, strict=True):
                results[index] = result
        return results


class UnknownToken(Exception):
    """No workspace has this API token (or it was replaced by a new one)."""


EventAnswer = dict[str, str]
"""A ``MessageResult`` as JSON."""


def event_answers(outcomes: Sequence[ingest.Outcome]) -> list[EventAnswer]:
    return [
        {"message_id": o.message_id, "chat_id": str(o.chat_id), "status": o.status}
        for o in outcomes
    ]


@dataclass(frozen=True, slots=True)
class TokenEvent:
    token_hash: str
    event: MessageEvent


def store_token_events(
    session: Session, items: Sequence[TokenEvent], *, now: datetime, base_url: str
) -> list[EventAnswer | Exception]:
    """The API's single messages: each names its workspace by its token's hash, read in the
    group's own transaction (a rotated token stops at once)."""
    results: dict[int, EventAnswer | Exception] = {}
    by_workspace: dict[int, list[int]] = {}
    workspaces: dict[str, int | None] = {}
    for index, item in enumerate(items):
        if item.token_hash not in workspaces:
            workspaces[item.token_hash] = tenants.workspace_id_by_token_hash(
                session.connection(), item.token_hash
            )
        found = workspaces[item.token_hash]
        if found is None:
            results[index] = UnknownToken()
        else:
            by_workspace.setdefault(found, []).append(index)
    for workspace, indexes in by_workspace.items():
        while indexes:
            events = [items[i].event for i in indexes]
            try:
                outcomes = ingest.ingest(session, workspace, events, now, base_url)
            except ingest.UnknownAccount as error:  # raised before anything is written
                results[indexes.pop(error.index)] = error
                continue
            for index, answer in zip(indexes, event_answers(outcomes), strict=True):
                results[index] = answer
            break
    return [results[index] for index in range(len(items))]
