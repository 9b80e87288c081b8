"""A busy chat: its due deliveries are claimed as one run and sent back to back, in order,
with the lane closed to every other worker until they are recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from chathooks.store import deliveries
from tests.conftest import Service, Workspace, event, wait_for
from tests.receiver import Receiver, Reply

LEASE = timedelta(seconds=60)


def _batch(team: Workspace, ids: list[str], chat: str) -> None:
    answer = team.post("/messages/batch", {"messages": [event(i, chat=chat) for i in ids]})
    assert answer.status_code == 202, answer.text


def test_a_chat_is_claimed_as_one_run_that_no_other_worker_can_touch(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    service = start_service(run_worker=False)
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    _batch(team, [f"b{n}" for n in range(150)], "busy@c.us")
    _batch(team, ["q0"], "quiet@c.us")
    now = service.clock.now()

    with service.rt.transaction() as session:
        first = deliveries.claim(session, now, lease=LEASE, limit=500, run=100)
    lanes: dict[int, list[int]] = {}
    for claimed in first:
        lanes.setdefault(claimed.chat_id, []).append(claimed.id)
    assert sorted(len(ids) for ids in lanes.values()) == [1, 100]
    assert all(ids == sorted(ids) for ids in lanes.values())

    with service.rt.transaction() as session:
        assert deliveries.claim(session, now, lease=LEASE, limit=500, run=100) == [], (
            "the rest of a claimed chat waits behind its run, and the run is leased"
        )
    later = now + LEASE + timedelta(seconds=1)
    with service.rt.transaction() as session:
        taken_over = deliveries.claim(session, later, lease=LEASE, limit=500, run=100)
    assert [c.id for c in taken_over] == sorted(c.id for c in first), (
        "a worker that died mid-run leaves the same run to the next one, from its start"
    )


def test_a_failure_inside_a_run_sends_nothing_after_it_until_it_succeeds(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.extend([Reply(), Reply(), Reply(), Reply(503)])
    ids = [f"m{n}" for n in range(120)]
    _batch(team, ids, "busy@c.us")

    wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}").json()["consecutive_failures"],
        what="three deliveries and a recorded failure",
    )
    service.clock.advance(15)  # past the back-off
    wait_for(lambda: len(receiver.requests) == 121, timeout=30, what="the rest of the chat")

    arrived = [r.json["message"]["message_id"] for r in receiver.requests]
    assert arrived == ids[:4] + ids[3:], "the failed one again, then the rest, in order"
