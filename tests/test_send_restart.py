"""``kill -9`` of ``chathooks serve`` while a send is in flight, then a restart: no queued
send is lost, the chat's order holds, and at most the send in flight goes out twice."""

from __future__ import annotations

import hashlib
import hmac
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, wait_for
from tests.fake_senders.waha import API_KEY, SESSION, FakeWaha
from tests.test_restart import _chathooks, _free_port, _serve
from tests.test_send import Line
from tests.test_sources import fixture

COUNT = 12


def _waha_team(base: str, waha: FakeWaha) -> tuple[dict[str, str], str]:
    """A workspace with a WAHA source that can send, and the chat its first event opened."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    created = httpx.post(
        f"{base}/api/v1/workspaces",
        headers=admin,
        json={"name": "Acme", "owner_name": "O", "owner_email": "o@acme.test"},
    ).json()
    auth = {"Authorization": f"Bearer {created['api_token']}"}
    secrets = {"api_url": waha.url, "x_api_key": API_KEY, "session": SESSION}
    source = httpx.post(
        f"{base}/api/v1/sources",
        headers=auth,
        json={"kind": "waha", "name": "line", "secrets": secrets},
    ).json()
    body = fixture("waha", "text_received")
    key = source["secrets"]["hmac_key"].encode()
    signature = hmac.new(key, body, hashlib.sha512).hexdigest()
    path = "/in/" + source["url"].rsplit("/in/", 1)[1]
    stored = httpx.post(
        base + path,
        content=body,
        headers={"Content-Type": "application/json", "X-Webhook-Hmac": signature},
    )
    assert stored.status_code == 200, stored.text
    chat_id = httpx.get(f"{base}/api/v1/chats", headers=auth).json()["chats"][0]["chat_id"]
    return auth, chat_id


def test_kill_9_mid_send_loses_nothing_and_repeats_at_most_the_one_in_flight(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHATHOOKS_SEND_PER_SECOND", "1000")
    waha = FakeWaha(answer_delay=0.3).start()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _serve(database_url, port, tmp_path)
    try:
        auth, chat_id = _waha_team(base, waha)
        ids = []
        for n in range(COUNT):
            answer = httpx.post(
                f"{base}/api/v1/chats/{chat_id}/messages", headers=auth, json={"text": f"r{n}"}
            )
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        wait_for(lambda: len(waha.sent) >= 3, what="sends to be under way")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert len(waha.sent) < COUNT

        process = _serve(database_url, port, tmp_path)

        def status(outgoing_id: str) -> Any:
            return httpx.get(f"{base}/api/v1/outgoing/{outgoing_id}", headers=auth).json()

        wait_for(
            lambda: all(status(i)["status"] == "sent" for i in ids),
            timeout=60,
            what="every send after the restart",
        )
        texts = [int(text[1:]) for text in waha.texts()]
        assert set(texts) == set(range(COUNT))
        firsts = list(dict.fromkeys(texts))
        assert firsts == sorted(firsts)
        assert len(texts) - COUNT <= 1, f"more than the one in flight repeated: {texts}"
    finally:
        process.kill()
        process.wait(10)
        waha.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_keep_each_chats_order(
    start_service: Any,
    database_url: str,
    receiver: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL: two worker processes claim from one queue, skipping each other's locked
    rows; each chat still goes out one send at a time, in order, each send once."""
    monkeypatch.setenv("CHATHOOKS_SEND_PER_SECOND", "1000")
    waha = FakeWaha(answer_delay=0.02).start()
    api = start_service(run_worker=False)
    line = Line(api, waha, receiver)
    waha.webhook = None
    phones = [f"+1415555{n:04d}" for n in range(6)]
    ids = []
    for n in range(5):
        for phone in phones:
            body = {"whatsapp_account_phone": "+79222222222", "phone": phone, "text": f"{n}"}
            answer = line.team.post("/messages/send", body)
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
    workers = [_chathooks("worker", database_url, tmp_path) for _ in range(2)]
    try:
        wait_for(
            lambda: all(line.outgoing(i)["status"] == "sent" for i in ids),
            timeout=60,
            what="both workers to send everything",
        )
        assert [w.poll() for w in workers] == [None, None], "a worker exited on its own"
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(10)
        waha.stop()
    by_chat: dict[str, list[str]] = {}
    for body in waha.sent:
        by_chat.setdefault(body["chatId"], []).append(body["text"])
    assert by_chat == {phone[1:] + "@c.us": ["0", "1", "2", "3", "4"] for phone in phones}
