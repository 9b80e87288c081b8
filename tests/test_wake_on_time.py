"""A worker wakes when something comes due, not only when notified or at the next poll:
a webhook's back-off ends, a bundle period ends. Nobody announces these moments, so with
the polls set to a minute, only the worker's own timer can make these tests pass."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from chathooks.clock import ManualClock, SystemClock
from chathooks.deliver.worker import DeliveryWorker
from chathooks.runtime import build_runtime
from chathooks.schedule import period_of
from chathooks.store import deliveries
from chathooks.store.models import Webhook
from tests.conftest import Service, event, make_settings, wait_for
from tests.receiver import Receiver, Reply

SLOW_POLLS = {"poll_interval_seconds": 60, "fallback_poll_seconds": 60}
"""Polls far longer than any wait below: a test passes only if the worker's timer works."""


class HeldClock(ManualClock):
    """Stands still until ``run``, then moves with real time."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self._running_since: float | None = None

    def run(self) -> None:
        self._running_since = time.monotonic()

    def now(self) -> datetime:
        held = super().now()
        if self._running_since is None:
            return held
        return held + timedelta(seconds=time.monotonic() - self._running_since)


@pytest.fixture
def start(database_url: str) -> Iterator[Any]:
    started: list[Service] = []

    def start_with(clock: Any, **overrides: Any) -> Service:
        rt = build_runtime(make_settings(database_url, **overrides), clock=clock)
        service = Service(rt).start()
        started.append(service)
        if not rt.settings.is_sqlite:
            wait_for(lambda: rt.listening, what="the worker to LISTEN")
        return service

    yield start_with
    for service in started:
        service.stop()


def test_the_next_due_moment_is_the_earliest_back_off_delivery_or_period_end(
    start_service: Any, receiver: Receiver
) -> None:
    """What the worker's sleep is computed from, read from the database directly."""
    api: Service = start_service(run_worker=False, **SLOW_POLLS)
    team = api.workspace()
    team.account()
    single = team.webhook(receiver.url)
    team.webhook(receiver.url, "1h")
    assert team.post("/messages", event("m1")).status_code == 202
    now = api.clock.now()
    _, period_end = period_of("1h", now)
    with api.rt.transaction() as session:
        assert deliveries.next_due(session, now) == period_end  # the single one is due now
        backing_off = now + timedelta(seconds=30)
        session.execute(
            update(Webhook).where(Webhook.id == single["id"]).values(retry_at=backing_off)
        )
    with api.rt.transaction() as session:
        assert deliveries.next_due(session, now) == min(backing_off, period_end)
        assert deliveries.close_due_bundles(session, period_end) == 1
        assert deliveries.next_due(session, period_end) is None

    worker = DeliveryWorker(api.rt)
    poll = api.rt.poll_seconds
    assert worker._sleep_seconds(None) == poll
    assert worker._sleep_seconds(now + timedelta(hours=1)) == poll
    assert worker._sleep_seconds(now + timedelta(seconds=poll / 10)) == pytest.approx(poll / 10)
    assert 0 < worker._sleep_seconds(now - timedelta(seconds=1)) < poll / 10


def test_retries_follow_the_back_off_not_the_poll(start: Any, receiver: Receiver) -> None:
    """A failing receiver gets attempt after attempt at the back-off's pace (0.05 s
    doubling, at most 0.2 s): eight attempts take about a second; on the poll, 7 minutes."""
    service = start(SystemClock(), retry_base_seconds=0.05, retry_max_seconds=0.2, **SLOW_POLLS)
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.default = Reply(503)
    assert team.post("/messages", event("m1")).status_code == 202
    wait_for(lambda: receiver.arrived >= 8, timeout=30, what="8 attempts, retried on time")
    receiver.default = Reply(200)
    wait_for(lambda: _waiting(service, hook["id"]) == 0, timeout=30, what="the delivery")
    assert {b["message"]["message_id"] for b in receiver.bodies()} == {"m1"}


def _waiting(service: Service, webhook_id: int) -> int:
    with service.rt.transaction() as session:
        return deliveries.pending_counts(session, [webhook_id]).get(webhook_id, 0)


def test_a_bundle_goes_out_when_its_period_ends(start: Any, receiver: Receiver) -> None:
    """No notification and no poll comes at the period's end: the worker's timer does."""
    real_now = datetime.now(UTC)
    _, period_end = period_of("1h", real_now)
    clock = HeldClock(period_end - timedelta(seconds=1))
    service = start(clock, **SLOW_POLLS)
    team = service.workspace()
    team.account()
    team.webhook(receiver.url, "1h")
    batch = [event("m1"), event("m2"), event("m3", chat="other@c.us")]
    assert team.post("/messages/batch", {"messages": batch}).status_code == 202
    clock.run()  # the period ends a second from now
    wait_for(lambda: len(receiver.requests) == 2, timeout=30, what="2 bundles after the period")
    sent = sorted([m["message_id"] for m in b["messages"]] for b in receiver.bodies())
    assert sent == [["m1", "m2"], ["m3"]]
