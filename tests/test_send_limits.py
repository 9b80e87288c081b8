"""The send stage's limits (issue 18): one WhatsApp account's pace holds across every
worker, a send the sender keeps refusing with 5xx gives up after a day, and retention
removes finished sends while keeping idempotency keys for at least a day."""

from __future__ import annotations

import itertools
import logging
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from chathooks import retention
from chathooks.send import queue
from tests.conftest import Service, run_coroutine, wait_for
from tests.fake_senders.waha import FakeWaha, unavailable
from tests.receiver import Receiver
from tests.test_send import FAST, Line, _settled
from tests.test_workers import _free_port, _worker_process

PACE = 2
"""Sends per second through the one account: ``CHATHOOKS_SEND_PER_SECOND``."""
COUNT = 10
DAY = 86400.0


def _sent_by(port: int) -> int:
    """The sends one worker process made, from its own /metrics."""
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "chathooks_sends_total" and sample.labels == {
                "kind": "waha",
                "outcome": "sent",
            }:
                return int(sample.value)
    return 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_hold_one_accounts_pace_together(
    database_url: str, start_service: Any, receiver: Receiver, tmp_path: Path
) -> None:
    """Two worker processes, each with room for two sends at a time, send ten replies to
    ten customers through one WAHA account paced at 2 per second: WAHA never receives more
    than 2 in any second (each worker keeping the pace on its own would make it 4)."""
    waha = FakeWaha().start()
    api = start_service(run_worker=False)
    line = Line(api, waha, receiver)
    waha.webhook = None
    ports = [_free_port() for _ in range(2)]
    env = {"CHATHOOKS_SEND_PER_SECOND": str(PACE), "CHATHOOKS_SEND_CONCURRENCY": "2"}
    workers = [_worker_process(database_url, port, tmp_path, **env) for port in ports]
    try:
        ids = []  # queued once both workers run: each claims two at once
        for n in range(COUNT):
            body = {"whatsapp_account_phone": "+79222222222", "phone": f"+1415555{n:04d}"}
            answer = line.team.post("/messages/send", {**body, "text": f"r{n}"})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        wait_for(
            lambda: all(line.outgoing(i)["status"] == "sent" for i in ids),
            timeout=60,
            what="both workers to send everything",
        )
        shares = [_sent_by(port) for port in ports]
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            process.wait(30)
        waha.stop()
    assert sorted(waha.texts()) == sorted(f"r{n}" for n in range(COUNT))
    arrivals = sorted(waha.arrivals)
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= PACE, [round(b - a, 3) for a, b in itertools.pairwise(arrivals)]
    assert min(shares) >= 2, shares  # each worker sent its share


def test_a_send_the_sender_keeps_refusing_gives_up_after_a_day(
    receiver: Receiver, start_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """WAHA answers 503 to every try: the send backs off, and the try made once a day has
    passed since it was queued fails it with plain words; the page's retry starts over."""
    waha = FakeWaha().start()
    try:
        service = start_service(**FAST)
        line = Line(service, waha, receiver)
        waha.script.extend(unavailable() for _ in range(100))
        stuck = line.send("are you there?")
        wait_for(lambda: _tried(service, waha, 2), what="two tries")
        assert line.outgoing(stuck["id"])["status"] == "queued"
        with caplog.at_level(logging.WARNING, logger="chathooks.send"):
            service.clock.advance(DAY)
            wait_for(lambda: _settled(line, service, [stuck["id"]], "failed"), what="the give-up")
        failed = line.outgoing(stuck["id"])
        tries = failed["attempts"]
        assert tries == waha.calls >= 3
        assert failed["last_error"] == (
            f"gave up after {tries} attempts over 24 h: WAHA answered HTTP 503: Service Unavailable"
        )
        lines = [r.getMessage() for r in caplog.records if r.name == "chathooks.send"]
        source_id = line.source.source["id"]
        assert lines == [f"send {stuck['id']} through source {source_id} failed: "
                         + failed["last_error"]]  # fmt: skip
        waha.script.clear()
        with service.rt.transaction() as session:  # the chat page's retry
            queue.retry(session, line.team.created["id"], int(stuck["id"]), service.clock.now())
        wait_for(lambda: _settled(line, service, [stuck["id"]]), what="the retried send")
        assert waha.texts() == ["are you there?"]
        assert line.outgoing(stuck["id"])["attempts"] == 1
    finally:
        waha.stop()


def _tried(service: Service, waha: FakeWaha, calls: int) -> bool:
    """Whether WAHA was called ``calls`` times; each look moves the clock past a back-off."""
    service.clock.advance(0.5)
    return waha.calls >= calls


def _ids(line: Line, *ids: str) -> dict[str, int]:
    """Each send's HTTP status when asked for (404: removed)."""
    return {i: line.team.get(f"/outgoing/{i}").status_code for i in ids}


def test_retention_removes_finished_sends_and_keeps_keys_a_day(
    receiver: Receiver, start_service: Any
) -> None:
    """With the shortest retention (1 day): a sent and a failed send stay, and their
    idempotency keys still answer, for 24 h; then both go, and a queued send stays."""
    waha = FakeWaha().start()
    try:
        service = start_service(retention_days=1, send_give_up_seconds=10 * DAY, **FAST)
        line = Line(service, waha, receiver)
        sent = line.send("done", **{"Idempotency-Key": "k-sent"})
        wait_for(lambda: _settled(line, service, [sent["id"]]), what="the send")
        waha.status = "SCAN_QR_CODE"
        refused = line.send("refused")
        wait_for(lambda: _settled(line, service, [refused["id"]], "failed"), what="a failure")
        waha.status = "WORKING"
        waha.script.extend(unavailable() for _ in range(100))
        waiting = line.send("still trying")
        wait_for(lambda: _tried(service, waha, 3), what="a retry")

        service.clock.advance(DAY - 3600)
        assert "outgoing" not in run_coroutine(retention.sweep(service.rt))
        assert _ids(line, sent["id"], refused["id"], waiting["id"]) == {
            sent["id"]: 200,
            refused["id"]: 200,
            waiting["id"]: 200,
        }
        assert line.send("done", **{"Idempotency-Key": "k-sent"}) == sent  # replayed

        service.clock.advance(2 * 3600)
        assert run_coroutine(retention.sweep(service.rt))["outgoing"] == 2
        assert _ids(line, sent["id"], refused["id"], waiting["id"]) == {
            sent["id"]: 404,
            refused["id"]: 404,
            waiting["id"]: 200,
        }
        assert line.outgoing(waiting["id"])["status"] == "queued"
    finally:
        waha.stop()
