"""Under ``serve`` the API and the delivery worker share one process: while requests stream
in, the worker claims seldom, so senders get their answers first; its deliveries still go,
and catch up in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from chathooks.clock import ManualClock
from chathooks.deliver.worker import BUSY_CLAIM_INTERVAL_SECONDS
from chathooks.runtime import INGEST_STREAM, INGEST_WINDOW_SECONDS, Runtime, build_runtime
from tests.conftest import Service, Workspace, event, make_settings, run_coroutine, wait_for
from tests.receiver import Receiver

CHATS = [f"9725400000{n:02}@c.us" for n in range(16)]
"""Each has a sender of its own: its order is the order that sender posted in."""


def _arrivals(rt: Runtime, start: float, count: int, apart: float) -> float:
    """``count`` requests ``apart`` seconds apart from ``start``; the last one's time."""
    at = start
    for n in range(count):
        at = start + n * apart
        rt.arrived(at)
    return at


def test_a_stream_of_requests_is_busy_a_message_alone_is_not(
    database_url: str, clock: ManualClock
) -> None:
    rt = build_runtime(make_settings(database_url), clock=clock)
    alone = _arrivals(rt, 1_000.0, 1, 0)
    assert not rt.ingest_busy(alone)
    steady = _arrivals(rt, 2_000.0, 500, 0.01)  # 100 msg/s, evenly
    assert not rt.ingest_busy(steady)
    last = _arrivals(rt, 3_000.0, 1_000, 0.001)  # 1,000 msg/s
    assert rt.ingest_busy(last)
    assert not rt.ingest_busy(last + INGEST_WINDOW_SECONDS), "the stream paused: it is over"
    rt.engine.dispose()


def _delivered(receiver: Receiver) -> list[str]:
    return [r.json["message"]["message_id"] for r in list(receiver.requests)]


def _batch(team: Workspace, ids: list[str], chat: str) -> None:
    """Through the batch route: it does not count as streaming single requests."""
    answer = team.post("/messages/batch", {"messages": [event(i, chat=chat) for i in ids]})
    assert answer.status_code == 202, answer.text


def test_while_requests_stream_in_the_worker_claims_seldom_but_still_delivers(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    _batch(team, ["first"], CHATS[0])
    wait_for(lambda: receiver.requests, what="the first delivery")
    far = time.monotonic() + 3_600
    _arrivals(service.rt, far, INGEST_STREAM + 1, 0)  # a stream that lasts the whole test
    since = time.monotonic()
    for message_id in ["second", "third"]:
        _batch(team, [message_id], CHATS[0])
        wait_for(lambda: _delivered(receiver)[-1:] == [message_id], what="a delivery")  # noqa: B023
    # "third" was stored after the claim that took "second" began (after ``since``), so
    # the claim that took it began a busy interval later, at least
    assert receiver.requests[2].at - since >= BUSY_CLAIM_INTERVAL_SECONDS, (
        "the worker claimed again only after its turn behind the requests"
    )


def test_a_sustained_stream_of_single_messages_is_delivered_in_order_as_it_comes(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    """Polling seldom: deliveries come from the worker's claims between the requests."""
    service = start_service(poll_interval_seconds=60, fallback_poll_seconds=60)
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    deadline = time.monotonic() + 60

    async def stream() -> dict[str, list[str]]:
        """A sender per chat, each posting its next message once the last is answered,
        until deliveries have come while they all still post."""
        sent: dict[str, list[str]] = {chat: [] for chat in CHATS}

        async def sender(client: httpx.AsyncClient, chat: str) -> None:
            while len(receiver.requests) < 40:
                assert time.monotonic() < deadline, "nothing delivered while requests streamed"
                message_id = f"{chat}-{len(sent[chat])}"
                answer = await client.post("/api/v1/messages", json=event(message_id, chat=chat))
                assert answer.status_code == 202, answer.text
                sent[chat].append(message_id)

        async with httpx.AsyncClient(base_url=service.url, headers=team.headers) as client:
            await asyncio.gather(*(sender(client, chat) for chat in CHATS))
        return sent

    sent = run_coroutine(stream())
    total = sum(len(ids) for ids in sent.values())
    wait_for(lambda: len(receiver.requests) == total, timeout=60, what="the rest")
    arrived = _delivered(receiver)
    assert len(set(arrived)) == len(arrived) == total, "each message exactly once"
    for chat, posted in sent.items():
        assert [m for m in arrived if m.startswith(f"{chat}-")] == posted, "in order, per chat"
