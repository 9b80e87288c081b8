"""Stop chathooks at any moment, start it again: every accepted message is delivered."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, Service, event, wait_for
from tests.receiver import Receiver, Reply


def test_backlog_survives_a_restart(start_service: Any, receiver: Receiver) -> None:
    service = start_service()
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.default = Reply(503)
    team.post(
        "/messages/batch", {"messages": [event(f"m{i}", chat=f"c{i % 3}@c.us") for i in range(30)]}
    )
    wait_for(lambda: receiver.requests, what="the first failed attempt")
    service.stop()

    receiver.default = Reply(200)
    again = start_service()
    again.clock.advance(60)
    wait_for(
        lambda: (
            len(
                {
                    r.json["message"]["message_id"]
                    for r in receiver.requests
                    if r.headers.get("webhook-id")
                }
            )
            == 30
        ),
        what="all 30 after restart",
    )
    path = f"/api/v1/outbound-webhooks/{hook['id']}"
    wait_for(
        lambda: again.http.get(path, headers=team.headers).json()["consecutive_failures"] == 0,
        what="the successes to reset the failure count",
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _chathooks(command: str, database_url: str, workdir: Path, port: int = 0) -> Any:
    """``chathooks COMMAND`` in a process of its own, with short leases and timeouts."""
    env = {
        **os.environ,
        "CHATHOOKS_DATABASE_URL": database_url,
        "CHATHOOKS_PORT": str(port),
        "CHATHOOKS_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHATHOOKS_ALLOW_PRIVATE_TARGETS": "true",
        "CHATHOOKS_LEASE_SECONDS": "2",
        "CHATHOOKS_TOTAL_TIMEOUT_SECONDS": "1",
        "CHATHOOKS_CONNECT_TIMEOUT_SECONDS": "1",
        "CHATHOOKS_POLL_INTERVAL_SECONDS": "0.1",
        "CHATHOOKS_METRICS_PORT": "0",  # a worker's probes on a free port: several may run
    }
    return subprocess.Popen(
        [sys.executable, "-m", "chathooks", command],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _serve(database_url: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    process: subprocess.Popen[bytes] = _chathooks("serve", database_url, workdir, port)
    wait_for(lambda: _answers(port), timeout=60, what="chathooks serve to listen")
    return process


def _in_chat_order(receiver: Receiver) -> dict[str, list[int]]:
    """Per chat, the message numbers (``m{n}``) in the order they arrived."""
    order: dict[str, list[int]] = {}
    for body in receiver.bodies():
        order.setdefault(body["chat"]["chat_id"], []).append(int(body["message"]["message_id"][1:]))
    return order


def _assert_nothing_lost_and_chat_order_kept(receiver: Receiver, count: int, who: str) -> None:
    """Every message arrives, and in each chat no message arrives for the first time after
    a later one. Messages sent before the kill whose answers were not recorded yet arrive
    again, in their order too: a receiver that drops repeated ``webhook-id``s sees each
    chat in order."""
    wait_for(
        lambda: len({r.json["message"]["message_id"] for r in receiver.requests}) == count,
        timeout=120,
        what=f"{who} to send every accepted message",
    )
    order = _in_chat_order(receiver)
    assert {n for numbers in order.values() for n in numbers} == set(range(count))
    for chat, numbers in order.items():
        firsts = list(dict.fromkeys(numbers))
        assert firsts == sorted(firsts), f"chat {chat} out of order: {numbers}"
        again = [n for i, n in enumerate(numbers) if n in numbers[:i]]
        assert again == sorted(again), f"chat {chat} sent again out of order: {numbers}"


def _events(count: int, chats: int) -> list[dict[str, Any]]:
    return [event(f"m{i}", chat=f"c{i % chats}@c.us") for i in range(count)]


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_kill_9_mid_delivery_loses_nothing(
    database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    process = _serve(database_url, port, tmp_path)
    try:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        created = httpx.post(
            f"{base}/workspaces",
            headers=admin,
            json={"name": "Acme", "owner_name": "O", "owner_email": "o@acme.test"},
        ).json()
        auth = {"Authorization": f"Bearer {created['api_token']}"}
        httpx.post(
            f"{base}/whatsapp-accounts",
            headers=auth,
            json={"phone": "+972500000000", "full_name": "A", "email": "a@acme.test"},
        )
        httpx.post(f"{base}/outbound-webhooks", headers=auth, json={"url": receiver.url})
        receiver.default = Reply(200, delay=0.01)
        answer = httpx.post(
            f"{base}/messages/batch",
            headers=auth,
            timeout=30,
            json={"messages": _events(1000, 20)},
        )
        assert answer.status_code == 202
        wait_for(lambda: len(receiver.requests) >= 20, what="deliveries to be under way")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert len({r.json["message"]["message_id"] for r in receiver.requests}) < 1000

        process = _serve(database_url, port, tmp_path)
        _assert_nothing_lost_and_chat_order_kept(receiver, 1000, "serve after kill -9")
    finally:
        process.kill()
        process.wait(10)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_kill_9_of_one_of_two_workers_loses_nothing_and_keeps_chat_order(
    start_service: Callable[..., Service], database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    api = start_service(run_worker=False)
    team = api.workspace()
    team.account()
    team.webhook(receiver.url)
    receiver.default = Reply(200, delay=0.01)
    workers = [_chathooks("worker", database_url, tmp_path) for _ in range(2)]
    try:
        assert team.post("/messages/batch", {"messages": _events(1000, 20)}).status_code == 202
        wait_for(lambda: len(receiver.requests) >= 150, timeout=60, what="both workers sending")
        assert [w.poll() for w in workers] == [None, None], "a worker exited on its own"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        _assert_nothing_lost_and_chat_order_kept(receiver, 1000, "the surviving worker")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(10)
