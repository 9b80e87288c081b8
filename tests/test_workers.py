"""Several workers on one PostgreSQL: instant wake-ups, one rate limit for all of them,
and a graceful stop that loses and repeats nothing."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from chathooks.clock import ManualClock
from chathooks.runtime import build_runtime
from chathooks.settings import Settings
from chathooks.store import notices
from chathooks.store.models import Delivery
from tests.conftest import Service, event, make_settings, wait_for
from tests.receiver import Receiver, Reply
from tests.test_restart import _free_port
from tests.workers import WorkerService

postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
STOPPED = (0, -signal.SIGTERM)
"""After a graceful stop uvicorn re-raises the SIGTERM it caught, as the exit status
(systemd counts that as a clean stop)."""


@pytest.fixture
def start_worker(database_url: str, clock: ManualClock) -> Iterator[Callable[..., WorkerService]]:
    started: list[WorkerService] = []

    def start(**overrides: Any) -> WorkerService:
        rt = build_runtime(make_settings(database_url, **overrides), clock=clock)
        worker = WorkerService(rt).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.thread.is_alive():
            worker.stop()


def message_ids(receiver: Receiver) -> list[str]:
    return [r.json["message"]["message_id"] for r in list(receiver.requests)]


@postgres_only
def test_a_stored_message_wakes_a_worker_at_once(
    start_service: Any, start_worker: Any, receiver: Receiver
) -> None:
    """The worker would poll only every 60 s: the message arrives because the API's
    NOTIFY woke it."""
    api = start_service(run_worker=False)
    worker = start_worker(poll_interval_seconds=60, fallback_poll_seconds=60)
    wait_for(lambda: worker.rt.listening, what="the worker to LISTEN")
    assert worker.rt.poll_seconds == 60
    assert worker.http.get("/readyz").json()["checks"] == {"database": "ok", "worker": "ok"}
    team = api.workspace()
    team.account()
    team.webhook(receiver.url)
    for index in range(1, 4):
        team.post("/messages", event(f"n{index}"))
        wait_for(lambda n=index: len(receiver.requests) == n, timeout=20, what="a woken delivery")
    assert message_ids(receiver) == ["n1", "n2", "n3"]


@postgres_only
def test_a_worker_that_closes_bundles_wakes_the_others(
    database_url: str, start_service: Any, start_worker: Any, receiver: Receiver
) -> None:
    """Closing the period's bundles sends a notification on the channel every worker
    listens to, so they share the bundles at once."""
    api = start_service(run_worker=False)
    team = api.workspace()
    team.account()
    team.webhook(receiver.url, "1h")
    team.post("/messages/batch", {"messages": [event(f"b{i}", chat=f"c{i}") for i in range(5)]})
    listening = psycopg.connect(
        Settings(database_url=database_url).database_url.replace("+psycopg", ""), autocommit=True
    )
    try:
        listening.execute(f"LISTEN {notices.CHANNEL}")
        api.clock.advance(3600)
        start_worker()
        woken = list(listening.notifies(timeout=20, stop_after=1))
        assert [n.channel for n in woken] == [notices.CHANNEL]
        wait_for(lambda: len(receiver.requests) == 5, what="5 bundles")
    finally:
        listening.close()


@postgres_only
def test_max_requests_per_second_holds_across_three_workers(
    database_url: str, start_service: Any, receiver: Receiver, tmp_path: Path
) -> None:
    """Three worker processes, each claiming a few deliveries at a time, share one
    webhook limited to 5 requests per second: the receiver sees at most 5 in any 1 s."""
    api = start_service(run_worker=False)
    team = api.workspace()
    team.account()
    team.webhook(receiver.url, max_requests_per_second=5)
    ports = [_free_port() for _ in range(3)]
    small = {"CHATHOOKS_CLAIM_BATCH_SIZE": "3", "CHATHOOKS_DELIVERY_CONCURRENCY": "3"}
    workers = [_worker_process(database_url, port, tmp_path, **small) for port in ports]
    try:
        team.post(
            "/messages/batch", {"messages": [event(f"r{i}", chat=f"c{i}") for i in range(30)]}
        )
        wait_for(lambda: len(receiver.requests) >= 30, timeout=60, what="30 deliveries")
        sent = [_successes(port) for port in ports]
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(30)
    arrivals = sorted(r.at for r in receiver.requests)
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 5, [round(b - a, 3) for a, b in itertools.pairwise(arrivals)]
    assert sorted(message_ids(receiver)) == sorted(f"r{i}" for i in range(30))
    assert sum(sent) == 30 and min(sent) >= 3, sent  # every worker took its share


def _successes(port: int) -> int:
    """What one worker process reports in its own /metrics."""
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "chathooks_webhook_requests_total" and sample.labels == {
                "outcome": "success"
            }:
                return int(sample.value)
    raise AssertionError("no chathooks_webhook_requests_total in /metrics")


# ---------------------------------------------------------------- graceful stop


def _worker_process(database_url: str, port: int, cwd: Path, **env: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chathooks", "worker"],
        env={
            **os.environ,
            "CHATHOOKS_DATABASE_URL": database_url,
            "CHATHOOKS_METRICS_PORT": str(port),
            "CHATHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "CHATHOOKS_POLL_INTERVAL_SECONDS": "0.1",
            **env,
        },
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _ready(port), timeout=60, what="the worker to be ready")
    return process


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_idle_worker_stops_at_once_on_sigterm(database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    process = _worker_process(database_url, port, tmp_path)
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=2) in STOPPED
    finally:
        process.kill()
        process.wait(10)


def test_sigterm_finishes_what_is_in_flight_hands_back_the_rest(
    database_url: str, start_service: Any, receiver: Receiver, tmp_path: Path
) -> None:
    api: Service = start_service(run_worker=False)
    team = api.workspace()
    team.account()
    team.webhook(receiver.url)
    receiver.default = Reply(200, delay=2)
    events = [event(f"g{i}", chat=f"c{i % 10}") for i in range(20)]
    team.post("/messages/batch", {"messages": events})
    port = _free_port()
    process = _worker_process(
        database_url,
        port,
        tmp_path,
        CHATHOOKS_DELIVERY_CONCURRENCY="4",
        CHATHOOKS_LEASE_SECONDS="600",
    )
    try:
        wait_for(
            lambda: len(_leased(api)) >= 8,  # 4 sending, the rest of the claim waiting
            what="deliveries in flight",
        )
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in STOPPED
        assert time.monotonic() - stopping < api.rt.settings.total_timeout_seconds + 5
    finally:
        process.kill()
        process.wait(10)
    assert _leased(api) == []  # nothing held by the stopped worker
    delivered = _delivered(api)
    assert len(delivered) == len(receiver.requests) == 4  # in flight: finished and recorded

    receiver.default = Reply(200)
    process = _worker_process(database_url, _free_port(), tmp_path)
    try:
        wait_for(lambda: len(_delivered(api)) == 20, timeout=60, what="the rest")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert sorted(message_ids(receiver)) == sorted(e["message_id"] for e in events)


def _leased(service: Service) -> list[int]:
    with service.rt.transaction() as session:
        return list(
            session.scalars(
                select(Delivery.id).where(
                    Delivery.status == "pending", Delivery.lease_until.is_not(None)
                )
            )
        )


def _delivered(service: Service) -> list[int]:
    with service.rt.transaction() as session:
        return list(session.scalars(select(Delivery.id).where(Delivery.status == "delivered")))


# ---------------------------------------------------------------- a worker dies


@postgres_only
def test_a_killed_workers_chats_go_to_another_at_once(
    database_url: str, start_service: Any, receiver: Receiver, tmp_path: Path
) -> None:
    """``kill -9`` of the worker holding every chat mid-run: the other one takes them over
    although their leases last ten minutes and nothing polls for ten minutes, since the
    dead worker's connection, and with it its liveness lock, is gone. Each chat stays in
    order and nothing is lost (a request in flight at the kill may come twice)."""
    api = start_service(run_worker=False)
    team = api.workspace()
    team.account()
    team.webhook(receiver.url)
    receiver.default = Reply(200, delay=2)
    slow = {
        "CHATHOOKS_LEASE_SECONDS": "600",
        "CHATHOOKS_POLL_INTERVAL_SECONDS": "600",
        "CHATHOOKS_FALLBACK_POLL_SECONDS": "600",
    }
    survivor_port = _free_port()
    survivor = _worker_process(database_url, survivor_port, tmp_path, **slow)
    doomed = None
    posted = [event(f"c{c}-{i}", chat=f"c{c}") for i in range(4) for c in range(6)]
    try:
        survivor.send_signal(signal.SIGSTOP)  # so that the other one claims every chat
        doomed = _worker_process(database_url, _free_port(), tmp_path, **slow)
        team.post("/messages/batch", {"messages": posted})
        wait_for(lambda: len(_leased(api)) == len(posted), what="the doomed worker's claim")
        survivor.send_signal(signal.SIGCONT)
        doomed.kill()
        doomed.wait(10)
        wait_for(
            lambda: (
                {b["message"]["message_id"] for b in receiver.bodies()}
                >= {e["message_id"] for e in posted}
            ),
            timeout=120,
            what="every message, from the surviving worker",
        )
        in_flight_at_the_kill = 6  # one per chat, at most
        assert _successes(survivor_port) >= len(posted) - in_flight_at_the_kill
    finally:
        survivor.send_signal(signal.SIGCONT)
        for process in (doomed, survivor):
            if process is not None:
                process.kill()
                process.wait(10)
    arrived = list(dict.fromkeys(message_ids(receiver)))
    for chat in range(6):
        in_chat = [m for m in arrived if m.startswith(f"c{chat}-")]
        assert in_chat == [f"c{chat}-{i}" for i in range(4)], in_chat
