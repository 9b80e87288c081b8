"""The claim reads each chat's queue head from ``lanes``: whatever makes a delivery pending
or delivered must keep every head on its lane's oldest pending delivery, or a chat would
stall (no head) or go out of order (a later head)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from chathooks import ingest
from chathooks.store import deliveries, webhooks
from chathooks.store.models import Delivery, Lane, Message, Webhook
from tests.conftest import Service, event, wait_for
from tests.receiver import Receiver


def heads_as_stored(service: Service) -> dict[tuple[int, int], int | None]:
    with service.rt.transaction() as session:
        return {
            (lane.webhook_id, lane.chat_id): lane.head_id for lane in session.scalars(select(Lane))
        }


def heads_as_they_should_be(service: Service) -> dict[tuple[int, int], int]:
    with service.rt.transaction() as session:
        rows = session.execute(
            select(Delivery.webhook_id, Delivery.chat_id, func.min(Delivery.id))
            .where(Delivery.status == "pending")
            .group_by(Delivery.webhook_id, Delivery.chat_id)
        )
        return {(w, c): head for w, c, head in rows}


def assert_heads_right(service: Service) -> None:
    stored = heads_as_stored(service)
    expected = heads_as_they_should_be(service)
    assert {lane: head for lane, head in stored.items() if head is not None} == expected


def test_every_lane_points_at_its_oldest_pending_delivery(
    start_service: Any, receiver: Receiver
) -> None:
    api: Service = start_service(run_worker=False)
    team = api.workspace()
    team.account()
    single = team.webhook(receiver.url)
    bundled = team.webhook(receiver.url, "1h")
    batch = [event(f"m{i}", chat=f"c{i % 3}") for i in range(9)]
    assert team.post("/messages/batch", {"messages": batch}).status_code == 202
    assert team.post("/messages", event("m9", chat="c0")).status_code == 202
    assert_heads_right(api)
    assert len(heads_as_they_should_be(api)) == 3  # the bundles are still open

    assert team.post(f"/outbound-webhooks/{bundled['id']}/flush", {}).status_code == 200
    assert_heads_right(api)
    assert len(heads_as_they_should_be(api)) == 6

    clock = api.clock
    lease = timedelta(seconds=60)
    with api.rt.transaction() as session:  # the other webhook backs off
        session.execute(
            update(Webhook)
            .where(Webhook.id == bundled["id"])
            .values(retry_at=clock.now() + timedelta(hours=1))
        )
    for _ in range(6):
        with api.rt.transaction() as session:
            claimed = deliveries.claim(session, clock.now(), lease=lease, limit=2, run=2)
        assert {c.webhook_id for c in claimed} <= {single["id"]}
        with api.rt.transaction() as session:
            deliveries.mark_delivered(session, [c.id for c in claimed], clock.now())
        assert_heads_right(api)
    stored = heads_as_stored(api)
    assert all(stored[lane] is None for lane in stored if lane[0] == single["id"])
    assert team.post("/messages", event("m10", chat="c1")).status_code == 202
    assert_heads_right(api)  # an idle lane gets its new head


def test_a_claim_reaches_past_a_page_of_heads_still_held(
    start_service: Any, receiver: Receiver
) -> None:
    """The claim reads lane heads a page at a time, oldest first; when every head of the
    first page is held (in flight), the free chats behind them are still claimed."""
    api: Service = start_service(run_worker=False)
    team = api.workspace()
    team.account()
    team.webhook(receiver.url)
    held = 1 + deliveries.HEADS_PAGE_EXTRA  # one page of heads for a claim of one
    batch = [event(f"m{i}", chat=f"c{i}") for i in range(held + 1)]
    assert team.post("/messages/batch", {"messages": batch}).status_code == 202
    clock = api.clock
    lease = timedelta(seconds=60)
    with api.rt.transaction() as session:
        first = deliveries.claim(session, clock.now(), lease=lease, limit=held)
    assert len(first) == held
    with api.rt.transaction() as session:
        behind = deliveries.claim(session, clock.now(), lease=lease, limit=1)
    assert len(behind) == 1
    assert behind[0].chat_id not in {c.chat_id for c in first}
    with api.rt.transaction() as session:
        assert deliveries.claim(session, clock.now(), lease=lease, limit=1) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_delivery_stored_while_another_takes_its_lane_is_still_reached(
    start_service: Any, receiver: Receiver
) -> None:
    """Two ingests of one idle chat at once on PostgreSQL (two API processes, or a group
    and a worker's record): the one that commits first heads the lane, and the other's
    delivery still comes after it, never behind the head where no claim looks."""
    api: Service = start_service(run_worker=False)
    webhook_id, (first, second) = _stored_before_a_webhook(api, receiver, ["m1", "m2"])
    with api.rt.transaction() as session:
        deliveries.refresh_lanes(session, [(webhook_id, first.chat_id)])  # an idle lane
    with api.rt.transaction() as session:
        session.execute(select(Lane).with_for_update())  # this ingest takes the lane first
        other, stored = _queue_meanwhile(api, webhook_id, first)
        wait_for(lambda: _waiting_for_a_lock(api), what="the other ingest to wait")
        ingest.queue_singles(session, webhook_id, [second], api.clock.now())
    other.join(10)
    assert stored.is_set()
    assert_heads_right(api)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_ingest_never_waits_for_a_recorder_of_its_webhook(
    start_service: Any, receiver: Receiver
) -> None:
    """A worker recording results holds its webhook's row while it waits for the chats'
    lanes; an ingest holding one of those lanes must not wait for that row (PostgreSQL
    broke the deadlock by failing one of them: an API request or a batch of results)."""
    api: Service = start_service(run_worker=False)
    webhook_id, (message,) = _stored_before_a_webhook(api, receiver, ["m1"])
    with api.rt.transaction() as session:
        assert webhooks.lock(session, [webhook_id])  # as record does, first
        other, stored = _queue_meanwhile(api, webhook_id, message)
        stored_while_locked = stored.wait(10)
    other.join(10)
    assert stored_while_locked
    assert_heads_right(api)


def _stored_before_a_webhook(
    api: Service, receiver: Receiver, names: list[str]
) -> tuple[int, list[Message]]:
    """Messages of one chat stored before its webhook existed (no deliveries yet), and
    the webhook's id: each test queues their deliveries itself."""
    team = api.workspace()
    team.account()
    for name in names:
        assert team.post("/messages", event(name, chat="c0")).status_code == 202
    webhook = team.webhook(receiver.url)
    with api.rt.transaction() as session:
        return webhook["id"], list(session.scalars(select(Message).order_by(Message.id)))


def _queue_meanwhile(
    api: Service, webhook_id: int, message: Message
) -> tuple[threading.Thread, threading.Event]:
    """Another transaction queues ``message``'s delivery; the event is set once it has
    (before its commit)."""
    stored = threading.Event()

    def queue() -> None:
        with api.rt.transaction() as session:
            ingest.queue_singles(session, webhook_id, [message], api.clock.now())
            stored.set()

    other = threading.Thread(target=queue)
    other.start()
    return other, stored


def _waiting_for_a_lock(service: Service) -> bool:
    """Whether a backend waits for a lock (read afresh: a transaction keeps its first
    look at ``pg_stat_activity``)."""
    with service.rt.reading() as connection:
        waiting = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)
