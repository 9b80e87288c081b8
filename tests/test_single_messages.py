"""Single-message requests stored together in one transaction are still answered one by
one: a duplicate, an unknown token or account, or a failure stays with its own request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from chathooks import ingest
from chathooks.group_commit import (
    EventAnswer,
    GroupCommit,
    TokenEvent,
    UnknownToken,
    store_token_events,
)
from chathooks.schemas import MessageEvent
from chathooks.security import hash_token
from chathooks.store.models import Delivery, Message
from tests.conftest import Service, Workspace, event, run_coroutine


def _set_up(service: Service) -> tuple[Workspace, Workspace]:
    first, second = service.workspace(), service.workspace("Other", "other@acme.test")
    for team in (first, second):
        team.account()
        team.webhook("http://127.0.0.1:9/hook")
    return first, second


def _store_together(
    service: Service, requests: Sequence[tuple[str, dict[str, Any]]]
) -> list[EventAnswer | BaseException]:
    """(token, event) requests arriving at once: all are waiting before the first group is
    taken (asyncio runs the storing task after the tasks that queued the requests)."""
    group_commit = GroupCommit(service.rt)

    async def arrive() -> list[EventAnswer | BaseException]:
        return await asyncio.gather(
            *(
                group_commit.store(
                    store_token_events,
                    TokenEvent(hash_token(token), MessageEvent.model_validate(body)),
                )
                for token, body in requests
            ),
            return_exceptions=True,
        )

    return run_coroutine(arrive())


@pytest.fixture
def service(start_service: Callable[..., Service]) -> Service:
    """No worker: the queued deliveries stay as they were made."""
    return start_service(run_worker=False)


def _count(service: Service, model: Any) -> int:
    with service.rt.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_each_request_in_a_group_gets_its_own_answer(service: Service) -> None:
    first, second = _set_up(service)
    earlier = first.post("/messages", event("earlier", chat="972541111111@c.us"))
    assert earlier.status_code == 202

    answers = _store_together(
        service,
        [
            (first.token, event("m1")),
            (first.token, event("m2", chat="972542222222@c.us")),
            (first.token, event("m1", chat="972543333333@c.us")),  # same id, other chat
            (first.token, event("earlier")),
            (first.token, event("m3", account="+972599999999")),
            ("not-a-token", event("m4")),
            (second.token, event("m1")),
            (first.token, event("m5")),
        ],
    )

    m1, m2, m1_again, earlier_again, unknown, stranger, other_m1, m5 = answers
    assert isinstance(m1, dict) and isinstance(m2, dict) and isinstance(m5, dict)
    assert (m1["status"], m2["status"], m5["status"]) == ("accepted",) * 3
    assert m1["chat_id"] == m5["chat_id"] != m2["chat_id"]
    assert m1_again == {**m1, "status": "duplicate"}
    assert earlier_again == {**earlier.json(), "status": "duplicate"}
    assert isinstance(unknown, ingest.UnknownAccount)
    assert isinstance(stranger, UnknownToken)
    assert isinstance(other_m1, dict) and other_m1["status"] == "accepted"
    assert other_m1["chat_id"] != m1["chat_id"]
    assert _count(service, Message) == _count(service, Delivery) == 5


def test_a_group_that_fails_is_stored_one_request_at_a_time(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = _set_up(service)
    real_ingest = ingest.ingest

    def failing_on_boom(session: Any, workspace: int, events: Any, *args: Any) -> Any:
        if any(e.message_id == "boom" for e in events):
            raise RuntimeError("boom")
        return real_ingest(session, workspace, events, *args)

    monkeypatch.setattr(ingest, "ingest", failing_on_boom)
    answers = _store_together(
        service, [(first.token, event(message_id)) for message_id in ("a", "boom", "b")]
    )

    a, boom, b = answers
    assert isinstance(boom, RuntimeError)
    assert isinstance(a, dict) and isinstance(b, dict)
    assert (a["status"], b["status"]) == ("accepted", "accepted")
    assert _count(service, Message) == _count(service, Delivery) == 2


def test_single_posts_at_once_are_all_stored(service: Service) -> None:
    """Over HTTP, many at a time, as a sender posts them: each answered 202 or 200."""
    first, _ = _set_up(service)

    async def post_all() -> list[int]:
        async with httpx.AsyncClient(base_url=service.url, headers=first.headers) as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        "/api/v1/messages", json=event(f"m{i % 30}", chat=f"9725{i:08d}@c.us")
                    )
                    for i in range(60)
                )
            )
        return [answer.status_code for answer in answers]

    codes = run_coroutine(post_all())
    assert sorted(codes) == [200] * 30 + [202] * 30
    assert _count(service, Message) == _count(service, Delivery) == 30


def test_chats_are_found_by_account_and_id_together(service: Service) -> None:
    """Chats are looked up by two lists (accounts, ids): a pair not asked for is not
    taken for one that was."""
    team, _ = _set_up(service)
    team.account("+972500000001", "Second Line", "second@acme.test")
    pairs = [(a, c) for a in ("+972500000000", "+972500000001") for c in ("x@c.us", "y@c.us")]
    first = team.post(
        "/messages/batch",
        {"messages": [event(f"a{i}", account=a, chat=c) for i, (a, c) in enumerate(pairs)]},
    )
    chat_ids = [r["chat_id"] for r in first.json()["results"]]
    assert len(set(chat_ids)) == 4

    again = team.post(
        "/messages/batch",
        {
            "messages": [
                event("b0", account=pairs[0][0], chat=pairs[0][1], chat_name="Renamed"),
                event("b3", account=pairs[3][0], chat=pairs[3][1]),
            ]
        },
    )
    assert [r["chat_id"] for r in again.json()["results"]] == [chat_ids[0], chat_ids[3]]
    names = [team.get(f"/chats/{chat_id}").json()["full_name"] for chat_id in chat_ids]
    assert names == ["Renamed", "John Doe", "John Doe", "John Doe"]
