"""The group commit: requests that arrive while a transaction runs share the next one, each
is answered only once its group is committed, and each fails alone. First on its own (a
real database, no HTTP), then with source requests over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chathooks import ingest
from chathooks.clock import ManualClock
from chathooks.group_commit import GroupCommit
from chathooks.runtime import Runtime, build_runtime
from chathooks.store import tenants
from chathooks.store.models import Message
from tests.conftest import Service, make_settings, run_coroutine, wait_for
from tests.receiver import Receiver
from tests.test_sources import fixture, setup


@pytest.fixture
def rt(database_url: str, clock: ManualClock) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database_url), clock=clock)
    yield runtime
    runtime.engine.dispose()


class Recorder:
    """A storer that sets a meta value per item and remembers each call's session."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[int, list[str]]] = []

    def __call__(
        self, session: Session, items: Sequence[str], /, *, now: datetime, base_url: str
    ) -> list[str | Exception]:
        self.calls.append((id(session), list(items)))
        results: list[str | Exception] = []
        for item in items:
            if item.startswith("refused"):
                results.append(ValueError(item))
                continue
            if item.startswith("boom"):
                raise RuntimeError(item)
            tenants.set_meta(session, f"{self.name}:{item}", "stored")
            results.append(f"{self.name}:{item}")
        return results


def _committed(rt: Runtime, key: str) -> bool:
    """Seen from another connection: committed."""
    with rt.transaction() as session:
        return tenants.get_meta(session, key) == "stored"


def _arrive_together(
    rt: Runtime, requests: Sequence[tuple[Recorder, str]]
) -> list[tuple[str | BaseException, bool]]:
    """Each (storer, item) stored at once; with each result, whether its write was
    committed when the request got it."""
    group_commit = GroupCommit(rt)

    async def one(storer: Recorder, item: str) -> tuple[str | BaseException, bool]:
        try:
            result = await group_commit.store(storer, item)
        except Exception as error:
            return error, _committed(rt, f"{storer.name}:{item}")
        return result, _committed(rt, result)

    async def arrive() -> list[tuple[str | BaseException, bool]]:
        return await asyncio.gather(*(one(storer, item) for storer, item in requests))

    return run_coroutine(arrive())


def test_requests_that_arrive_together_share_one_transaction(rt: Runtime) -> None:
    messages, log = Recorder("messages"), Recorder("log")
    requests = [(messages, "a"), (log, "x"), (messages, "b"), (messages, "c"), (log, "y")]
    answers = _arrive_together(rt, requests)
    assert answers == [
        ("messages:a", True),
        ("log:x", True),
        ("messages:b", True),
        ("messages:c", True),
        ("log:y", True),
    ]
    assert [items for _, items in messages.calls] == [["a", "b", "c"]]
    assert [items for _, items in log.calls] == [["x", "y"]]
    assert messages.calls[0][0] == log.calls[0][0]  # one session: one transaction


def test_a_refused_item_fails_alone_and_the_rest_commit(rt: Runtime) -> None:
    storer = Recorder("s")
    answers = _arrive_together(rt, [(storer, "a"), (storer, "refused"), (storer, "b")])
    (a, a_seen), (refused, _), (b, b_seen) = answers
    assert (a, a_seen, b, b_seen) == ("s:a", True, "s:b", True)
    assert isinstance(refused, ValueError)
    assert len(storer.calls) == 1


def test_a_group_that_raises_is_stored_again_one_request_at_a_time(rt: Runtime) -> None:
    storer = Recorder("s")
    answers = _arrive_together(rt, [(storer, "a"), (storer, "boom"), (storer, "b")])
    (a, a_seen), (boom, boom_seen), (b, b_seen) = answers
    assert (a, a_seen, b, b_seen) == ("s:a", True, "s:b", True)
    assert isinstance(boom, RuntimeError) and not boom_seen
    assert [items for _, items in storer.calls] == [["a", "boom", "b"], ["a"], ["boom"], ["b"]]


def test_requests_that_arrive_meanwhile_form_the_next_group(rt: Runtime) -> None:
    """SQLite stores one group at a time; while it runs, the next requests wait together."""
    storer = Recorder("s")
    first_started, release = threading.Event(), threading.Event()
    group_commit = GroupCommit(rt)
    group_commit.parallel = 1

    def slow(
        session: Session, items: Sequence[str], /, *, now: datetime, base_url: str
    ) -> list[str | Exception]:
        first_started.set()
        release.wait(10)
        return storer(session, items, now=now, base_url=base_url)

    async def arrive() -> list[str]:
        first = asyncio.ensure_future(group_commit.store(slow, "first"))
        await asyncio.to_thread(first_started.wait, 10)
        later = [asyncio.ensure_future(group_commit.store(storer, n)) for n in "abc"]
        await asyncio.sleep(0)
        assert not any(task.done() for task in later)
        release.set()
        return [await first, *[await task for task in later]]

    assert run_coroutine(arrive()) == ["s:first", "s:a", "s:b", "s:c"]
    assert [items for _, items in storer.calls] == [["first"], ["a", "b", "c"]]


def _stored(service: Service) -> int:
    with service.rt.reading() as connection:
        return int(connection.scalar(select(func.count()).select_from(Message)) or 0)


def test_source_requests_share_a_transaction_and_fail_alone(
    start_service: Callable[..., Service], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = start_service(run_worker=False)  # only the requests' transactions
    sender = setup(service, receiver, "whatsapp_cloud")
    base = json.loads(fixture("whatsapp_cloud", "text_received"))
    bodies = []
    for i in range(12):
        body = json.loads(json.dumps(base))
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message["id"] = "boom" if i == 5 else f"wamid.{i}"
        bodies.append(json.dumps(body).encode())
    real_ingest = ingest.ingest

    def failing_on_boom(session: Any, workspace: int, events: Any, *args: Any, **named: Any) -> Any:
        if any(e.message_id == "boom" for e in events):
            raise RuntimeError("boom")
        return real_ingest(session, workspace, events, *args, **named)

    monkeypatch.setattr(ingest, "ingest", failing_on_boom)
    group_commit: GroupCommit = service.server.config.app.state.group_commit
    group_commit.parallel = 1  # one group at a time, as on SQLite (PostgreSQL runs four)
    transactions: list[int] = []
    real_transaction = service.rt.transaction

    @contextlib.contextmanager
    def counted() -> Iterator[Session]:
        """The first transaction waits until the eleven other requests queue behind it."""
        transactions.append(1)
        if len(transactions) == 1:
            wait_for(lambda: len(group_commit.waiting) == 11, what="the other requests")
        with real_transaction() as session:
            yield session

    monkeypatch.setattr(service.rt, "transaction", counted)

    async def post_all() -> list[tuple[int, int]]:
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:

            async def one(body: bytes) -> tuple[int, int]:
                headers = {"Content-Type": "application/json", **sender.signature(body)}
                answer = await http.post(sender.path, content=body, headers=headers)
                return answer.status_code, _stored(service)

            first = asyncio.ensure_future(one(bodies[0]))
            while not transactions:  # noqa: ASYNC110 filled by a database event hook
                await asyncio.sleep(0.01)  # until the first request's group has begun
            rest = await asyncio.gather(*(one(body) for body in bodies[1:]))
            return [await first, *rest]

    answers = run_coroutine(post_all())
    assert [code for code, _ in answers] == [200] * 5 + [500] + [200] * 6
    # Each got its 200 once its message was committed (seen from another connection).
    assert answers[0][1] >= 1 and all(seen >= 1 for code, seen in answers if code == 200)
    assert _stored(service) == 11
    # The first request's group, then the eleven that waited meanwhile, together; that
    # group failed (on "boom") so they were stored again one by one. Not one per request
    # until the failure.
    assert len(transactions) == 1 + 1 + 11
    logged = sender.log()
    assert len(logged) == 11 and {r["outcome"] for r in logged} == {"stored"}
