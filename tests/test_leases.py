"""A worker never starts a request on a lease that could end before the request does: a
worker that stalled past its lease (SIGSTOP, a frozen VM) hands its deliveries back instead
of sending stale copies after newer messages of the same chat."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from chathooks.settings import Settings
from tests.conftest import Service, Workspace, event, wait_for
from tests.receiver import Receiver, Reply


def test_a_worker_past_its_lease_hands_back_what_it_has_not_sent(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    stalled = start_service(delivery_concurrency=1, poll_interval_seconds=5)
    team = stalled.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(200, delay=2.0))
    batch = [event("m1", chat="c1@c.us"), event("m2", chat="c2@c.us")]
    assert team.post("/messages/batch", {"messages": batch}).status_code == 202
    wait_for(lambda: receiver.arrived >= 1, what="m1 to be in flight, m2 waiting for a slot")

    stalled.clock.advance(stalled.rt.settings.lease_seconds + 1)
    other = start_service()
    wait_for(
        lambda: {"m1", "m2"} <= {b["message"]["message_id"] for b in receiver.bodies()},
        what="the other worker to send what the stalled one held",
    )
    wait_for(lambda: len(receiver.requests) >= 3, what="the stalled worker's m1 to finish")
    on_other = Workspace(other, team.token, team.created)
    assert on_other.post("/messages", event("m3", chat="c2@c.us")).status_code == 202
    wait_for(lambda: receiver.arrived >= 4 and len(receiver.requests) == receiver.arrived)
    wait_for(
        lambda: "m3" in [b["message"]["message_id"] for b in receiver.bodies()],
        what="m3, after m2 in its chat",
    )
    sent = [b["message"]["message_id"] for b in receiver.bodies()]
    assert Counter(sent)["m2"] == 1, f"a stale copy of m2 was sent: {sent}"
    assert [m for m in sent if m in ("m2", "m3")] == ["m2", "m3"]
    logged = on_other.get(f"/outbound-webhooks/{hook['id']}/requests").json()
    assert all(a["success"] for a in logged)


def test_a_lease_no_longer_than_a_request_is_refused() -> None:
    with pytest.raises(ValueError, match="CHATHOOKS_LEASE_SECONDS"):
        Settings(lease_seconds=15, total_timeout_seconds=15)
