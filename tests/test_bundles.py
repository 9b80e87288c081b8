"""Per-chat bundles end to end: one POST per chat per UTC period, exactly as SPEC §3 has it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import PUBLIC_BASE, Service, Workspace, event, wait_for
from tests.receiver import Receiver, Reply

EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "bundle-example.json"
"""The source document's bundle example (tests/fixtures/README.md)."""
MIB = 1024 * 1024
NOTE_MAX = 65536
PERIOD_START = datetime(2030, 3, 5, tzinfo=UTC)
"""Midnight UTC: a period boundary for every aggregation."""
LINK = re.compile(
    r"<br/>Click <a href='" + re.escape(PUBLIC_BASE) + r"/permalink/([0-9a-f-]{36})/'>here</a>"
    r" to open the conversation in chathooks$"
)


class Setup:
    """A workspace with an aggregated webhook on ``/hook``, and a barrier: another workspace
    whose ``none`` webhook on ``/barrier`` shows the worker has run a cycle since."""

    def __init__(self, service: Service, receiver: Receiver, aggregation: str) -> None:
        self.service, self.receiver = service, receiver
        self.team = service.workspace()
        self.team.account()
        self.hook = self.team.webhook(receiver.url, aggregation)
        self.other = service.workspace("Other", "other@acme.test")
        self.other.account()
        self.other.webhook(f"http://127.0.0.1:{receiver.port}/barrier")
        self.barriers = 0

    def hook_path(self, suffix: str) -> str:
        return f"/outbound-webhooks/{self.hook['id']}{suffix}"

    def bundles(self) -> list[dict[str, Any]]:
        return [r.json for r in list(self.receiver.requests) if r.path == "/hook"]

    def barrier(self) -> None:
        self.barriers += 1
        self.other.post("/messages", event(f"barrier-{self.barriers}"))
        wait_for(
            lambda: (
                sum(r.path == "/barrier" for r in list(self.receiver.requests)) == self.barriers
            ),
            what="the barrier delivery",
        )

    def wait_bundles(self, count: int) -> list[dict[str, Any]]:
        wait_for(lambda: len(self.bundles()) >= count, what=f"{count} bundles")
        self.barrier()
        bundles = self.bundles()
        assert len(bundles) == count
        return bundles

    def send(self, message_id: str, **fields: Any) -> dict[str, Any]:
        answer = self.team.post("/messages", event(message_id, **fields))
        assert answer.status_code == 202, answer.text
        return dict(answer.json())


def ids(bundle: dict[str, Any]) -> list[str]:
    return [m["message_id"] for m in bundle["messages"]]


def check_limits(bundles: list[dict[str, Any]], bodies: list[str]) -> None:
    for bundle, body in zip(bundles, bodies, strict=True):
        assert len(bundle["messages"]) <= 1000
        assert len(bundle["aggregation"]) <= NOTE_MAX
        assert len(body.encode()) <= MIB
        assert LINK.search(bundle["aggregation"])


@pytest.mark.parametrize("aggregation", ["1h", "6h", "12h", "24h"])
def test_one_post_per_chat_per_utc_period_after_it_ends(
    service: Service, receiver: Receiver, aggregation: str
) -> None:
    hours = int(aggregation[:-1])
    end = PERIOD_START + timedelta(hours=hours)
    clock = service.clock
    clock.set(PERIOD_START - timedelta(seconds=1))
    s = Setup(service, receiver, aggregation)

    s.send("a0")  # the last second of the previous period
    s.barrier()
    assert s.bundles() == []
    clock.set(PERIOD_START)
    assert ids(s.wait_bundles(1)[0]) == ["a0"]

    # a message's own timestamp does not matter, the time chathooks received it does
    s.send("a1", timestamp="2031-01-01T00:00:00Z")
    clock.set(end - timedelta(seconds=1))
    s.send("a2", timestamp="2021-02-24T16:25:29Z")
    s.barrier()
    assert len(s.bundles()) == 1
    clock.set(end)
    bundle = s.wait_bundles(2)[1]
    assert ids(bundle) == ["a2", "a1"]  # by timestamp
    assert bundle["chat"]["is_new_chat"] is False

    s.send("a3")
    s.send("b1", chat="972549999999@c.us", chat_name="Bea", phone="+972549999999")
    s.barrier()
    assert len(s.bundles()) == 2
    clock.set(end + timedelta(hours=hours))
    bundles = s.wait_bundles(4)[2:]
    assert sorted(ids(b)[0] for b in bundles) == ["a3", "b1"]
    assert all(len(b["messages"]) == 1 for b in bundles)
    assert next(b for b in bundles if ids(b) == ["b1"])["chat"]["is_new_chat"] is True

    clock.set(end + timedelta(hours=3 * hours))  # periods without messages send nothing
    s.barrier()
    assert len(s.bundles()) == 4


def test_bundle_payload_exactly_per_spec(service: Service, receiver: Receiver) -> None:
    service.clock.set(datetime(2030, 3, 5, 10, 0, 5, tzinfo=UTC))
    s = Setup(service, receiver, "1h")
    first = s.send(
        "m-1",
        chat_name="<script>alert(1)</script> & Co",
        timestamp="2021-02-24T16:30:29Z",
        text="second <b>by time</b>\nnew line 👋",
    )
    chat_id = first["chat_id"]
    s.send(
        "m-2",
        chat_name="<script>alert(1)</script> & Co",
        timestamp="2021-02-24T16:25:29Z",
        text="first by time",
        direction="sent",
    )
    s.send(
        "m-3",
        chat_name="<script>alert(1)</script> & Co",
        timestamp="2021-02-24T16:30:29Z",
        text="same time, later arrival",
    )
    service.clock.set(datetime(2030, 3, 5, 11, tzinfo=UTC))
    s.wait_bundles(1)
    request = next(r for r in receiver.requests if r.path == "/hook")
    body = request.json
    assert request.headers["Content-Type"] == "application/json"
    uuid = LINK.search(body["aggregation"]).group(1)  # type: ignore[union-attr]
    assert request.headers["webhook-id"] == "msg_" + uuid.replace("-", "")
    name = "<script>alert(1)</script> & Co"
    party = {"full_name": name, "phone": "+972540000000"}
    account = {"full_name": "Amnon Haha", "phone": "+972500000000"}

    def message(message_id: str, ts: str, text: str, direction: str = "received") -> Any:
        return {
            "direction": direction,
            "timestamp": ts,
            "message_id": message_id,
            "sender": party,
            "recipient": account,
            "text": text,
        }

    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"
    assert body == {
        "whatsapp_account": {
            "full_name": "Amnon Haha",
            "email": "amnon@acme.test",
            "phone": "+972500000000",
        },
        "chat": {
            "full_name": name,
            "responsible_name": "",
            "responsible_email": "",
            "chat_url": f"{PUBLIC_BASE}/chat/{chat_id}/messages/",
            "chat_id": chat_id,
            "is_new_chat": True,
            "is_group": False,
            "phone": "+972540000000",
        },
        "messages": [
            message("m-2", "2021-02-24T16:25:29+0000", "first by time", "sent"),
            message("m-1", "2021-02-24T16:30:29+0000", "second <b>by time</b>\nnew line 👋"),
            message("m-3", "2021-02-24T16:30:29+0000", "same time, later arrival"),
        ],
        "first_message_timestamp": "2021-02-24T16:25:29+0000",
        "last_message_timestamp": "2021-02-24T16:30:29+0000",
        "aggregation": (
            f"from {escaped} on 2021-02-24 16:25: first by time<br/>"
            f"from {escaped} on 2021-02-24 16:30: second &lt;b&gt;by time&lt;/b&gt;"
            "<br/>new line 👋<br/>"
            f"from {escaped} on 2021-02-24 16:30: same time, later arrival<br/>"
            f"Click <a href='{PUBLIC_BASE}/permalink/{uuid}/'>here</a> "
            "to open the conversation in chathooks"
        ),
    }
    assert "👋".encode() in request.body.encode()
    assert "<script>" not in body["aggregation"]

    # the permalink leads somewhere real: the chat page, through the login
    link = body["aggregation"].split("href='")[1].split("'")[0].removeprefix(PUBLIC_BASE)
    opened = service.http.get(link, follow_redirects=False)
    assert opened.status_code in (302, 303, 307), opened.text[:300]
    target = opened.headers["location"]
    assert "/login" in target or target.startswith(f"/chat/{chat_id}/messages/")

    # the same keys, nesting and value types as the source document's example
    example = json.loads(EXAMPLE.read_text())

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(value[0])]
        return type(value).__name__

    assert shape(body) == shape(example)

    # the next bundle of the chat no longer holds its first message
    s.send("m-4", chat_name=name)
    assert s.team.post(s.hook_path("/flush"), {}).json() == {"bundles": 1}
    later = s.wait_bundles(2)[1]
    assert later["chat"]["is_new_chat"] is False
    assert ids(later) == ["m-4"]


def test_flush_sends_open_bundles_now(service: Service, receiver: Receiver) -> None:
    s = Setup(service, receiver, "24h")
    s.send("a1")
    s.send("b1", chat="972549999999@c.us")
    s.send("a2")
    s.barrier()
    assert s.bundles() == []
    assert s.team.post(s.hook_path("/flush"), {}).json() == {"bundles": 2}
    bundles = s.wait_bundles(2)
    assert sorted(ids(b) for b in bundles) == [["a1", "a2"], ["b1"]]
    actions = [a["action"] for a in s.team.get(s.hook_path("/activity")).json()]
    assert "flushed" in actions
    assert s.team.post(s.hook_path("/flush"), {}).json() == {"bundles": 0}
    s.send("a3")  # after a flush the period's later messages form a new bundle
    service.clock.advance(24 * 3600)
    assert ids(s.wait_bundles(3)[2]) == ["a3"]


@pytest.mark.parametrize(
    "change", [{"aggregation": "none"}, {"aggregation": "1h"}, {"enabled": False}]
)
def test_changing_aggregation_or_disabling_first_sends_what_was_gathered(
    service: Service, receiver: Receiver, change: dict[str, Any]
) -> None:
    s = Setup(service, receiver, "24h")
    s.send("a1")
    s.send("a2")
    s.barrier()
    assert s.bundles() == []
    patched = s.team.patch(s.hook_path(""), change)
    assert patched.status_code == 200, patched.text
    assert ids(s.wait_bundles(1)[0]) == ["a1", "a2"]
    s.send("a3")
    if change.get("aggregation") == "none":
        wait_for(lambda: len(s.bundles()) == 2, what="the single message")
        assert s.bundles()[1]["message"]["message_id"] == "a3"
    elif change.get("aggregation") == "1h":
        service.clock.advance(3600)
        assert ids(s.wait_bundles(2)[1]) == ["a3"]
    else:  # disabled by hand: later messages are not queued for it
        service.clock.advance(24 * 3600)
        s.barrier()
        assert len(s.bundles()) == 1


def post_batch(team: Workspace, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 1000):
        answer = team.post("/messages/batch", {"messages": events[start : start + 1000]})
        assert answer.status_code == 202, answer.text[:500]


def hook_requests(receiver: Receiver) -> tuple[list[dict[str, Any]], list[str]]:
    requests = [r for r in list(receiver.requests) if r.path == "/hook"]
    return [r.json for r in requests], [r.body for r in requests]


@pytest.mark.parametrize("send", ["period end", "flush"])
def test_more_than_1000_messages_split_in_order(
    service: Service, receiver: Receiver, send: str
) -> None:
    s = Setup(service, receiver, "1h")
    wanted = [f"m{i:04}" for i in range(2300)]
    post_batch(s.team, [event(i, text=f"n {i}") for i in wanted])
    s.barrier()
    assert s.bundles() == []
    if send == "flush":
        assert s.team.post(s.hook_path("/flush"), {}).json() == {"bundles": 3}
    else:
        service.clock.advance(3600)
    bundles = s.wait_bundles(3)
    assert [len(b["messages"]) for b in bundles] == [1000, 1000, 300]
    assert [i for b in bundles for i in ids(b)] == wanted
    check_limits(*hook_requests(receiver))
    assert len({r.headers["webhook-id"] for r in receiver.requests if r.path == "/hook"}) == 3


def test_long_texts_split_at_the_note_limit(service: Service, receiver: Receiver) -> None:
    s = Setup(service, receiver, "1h")
    wanted = [f"m{i}" for i in range(7)]
    post_batch(s.team, [event(i, text=f"{i} " + "x" * 20000) for i in wanted])
    service.clock.advance(3600)
    bundles = s.wait_bundles(3)
    assert [len(b["messages"]) for b in bundles] == [3, 3, 1]
    assert [i for b in bundles for i in ids(b)] == wanted
    assert all(len(m["text"]) == 20003 for b in bundles for m in b["messages"])
    check_limits(*hook_requests(receiver))


def test_large_bodies_split_below_1_mib(service: Service, receiver: Receiver) -> None:
    """Much of each message is in fields the note leaves out: the body limit splits."""
    s = Setup(service, receiver, "1h")
    wanted = [f"m{i:04}" for i in range(1000)]
    events = []
    for i in wanted:
        e = event(i, text="😀" * 50)
        e["sender"]["full_name"] = ""
        e["recipient"]["full_name"] = "😀" * 200
        events.append(e)
    post_batch(s.team, events)
    service.clock.advance(3600)
    wait_for(lambda: sum(len(b["messages"]) for b in s.bundles()) == 1000, what="all messages")
    bundles, bodies = hook_requests(receiver)
    assert len(bundles) >= 2
    assert [i for b in bundles for i in ids(b)] == wanted
    check_limits(bundles, bodies)
    assert max(len(b.encode()) for b in bodies) > MIB // 2


def test_open_bundles_survive_a_restart(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    first = start_service()
    first.clock.set(PERIOD_START + timedelta(minutes=10))
    s = Setup(first, receiver, "1h")
    s.send("a1")
    s.send("b1", chat="972549999999@c.us")
    first.stop()
    again = start_service()
    s.service = again
    s.team.service = again
    s.other.service = again
    s.send("a2")
    s.barrier()
    assert s.bundles() == []
    again.clock.set(PERIOD_START + timedelta(hours=1))
    assert sorted(ids(b) for b in s.wait_bundles(2)) == [["a1", "a2"], ["b1"]]


def test_a_period_that_ended_while_down_is_sent_on_start(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    first = start_service()
    first.clock.set(PERIOD_START + timedelta(minutes=10))
    s = Setup(first, receiver, "6h")
    s.send("a1")
    s.send("a2")
    first.stop()
    first.clock.set(PERIOD_START + timedelta(hours=7))
    again = start_service()
    s.service, s.team.service, s.other.service = again, again, again
    assert [ids(b) for b in s.wait_bundles(1)] == [["a1", "a2"]]


def test_failed_bundle_is_retried_with_the_same_id_signed_and_logged(
    service: Service, receiver: Receiver
) -> None:
    s = Setup(service, receiver, "1h")
    s.send("a1")
    s.send("a2")
    receiver.replies.append(Reply(status=500, body="boom"))
    s.team.post(s.hook_path("/flush"), {})
    wait_for(
        lambda: s.team.get(s.hook_path("")).json()["consecutive_failures"] == 1,
        what="the failure to be recorded",
    )
    hook = s.team.get(s.hook_path("")).json()
    retry_at = datetime.fromisoformat(hook["retry_at"])
    assert retry_at > service.clock.now()
    s.barrier()
    assert len(s.bundles()) == 1  # nothing until the back-off ends
    service.clock.set(retry_at + timedelta(seconds=1))
    wait_for(lambda: len(s.bundles()) == 2, what="the retry")
    attempts = [r for r in receiver.requests if r.path == "/hook"]
    assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]
    assert attempts[0].json == attempts[1].json
    assert ids(attempts[1].json) == ["a1", "a2"]
    for attempt in attempts:
        Webhook(hook["secret"]).verify(attempt.body, attempt.headers)
    wait_for(
        lambda: s.team.get(s.hook_path("")).json()["consecutive_failures"] == 0,
        what="the success to be recorded",
    )
    logged = s.team.get(s.hook_path("/requests")).json()
    assert [r["response_status"] for r in logged] == [200, 500]
    assert [r["request_body"] for r in logged] == [a.body for a in reversed(attempts)]
    assert logged[0]["request_headers"]["webhook-id"] == attempts[0].headers["webhook-id"]
    activity = s.team.get(s.hook_path("/activity")).json()
    sends = [
        (a["action"], a["status_code"], a["message_count"])
        for a in activity
        if a["action"] in ("delivered", "failed")
    ]
    assert sends == [("delivered", 200, 2), ("failed", 500, 2)]


def test_replay_resends_a_range_in_the_current_format(service: Service, receiver: Receiver) -> None:
    clock = service.clock
    clock.set(PERIOD_START)
    s = Setup(service, receiver, "1h")
    s.send("early")
    clock.advance(600)
    since = clock.now()
    s.send("a1")
    s.send("b1", chat="972549999999@c.us")
    s.send("photo", attachments=[{"type": "image"}])
    clock.advance(3600)  # the next period: replay crosses periods
    assert sorted(ids(b) for b in s.wait_bundles(2)) == [["b1"], ["early", "a1"]]
    s.send("a2")
    until = clock.now() + timedelta(seconds=1)
    clock.advance(10)
    s.send("late")
    clock.set(PERIOD_START + timedelta(hours=3))
    assert len(s.wait_bundles(3)) == 3  # [early, a1], [b1], [a2, late]

    window = {"since": since.isoformat(), "until": until.isoformat()}
    answer = s.team.post(s.hook_path("/replay"), window)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"messages": 3, "deliveries": 2}
    replayed = s.wait_bundles(5)[3:]
    assert sorted(ids(b) for b in replayed) == [["a1", "a2"], ["b1"]]
    check_limits(replayed, [json.dumps(b) for b in replayed])

    assert s.team.patch(s.hook_path(""), {"aggregation": "none"}).status_code == 200
    assert s.team.post(s.hook_path("/replay"), window).json() == {"messages": 3, "deliveries": 3}
    wait_for(lambda: len(s.bundles()) == 8, what="three single messages")
    singles = s.bundles()[5:]
    assert sorted(b["message"]["message_id"] for b in singles) == ["a1", "a2", "b1"]


def test_concurrent_messages_of_one_chat_all_join_its_bundles(
    service: Service, receiver: Receiver
) -> None:
    """Several requests at once add to one chat's open bundle: none fails, none is lost,
    and the size counters stay exact, so the limits still hold."""
    s = Setup(service, receiver, "1h")
    s.send("warm-up", chat="972541111111@c.us")  # the account exists; the chat is new below
    wanted = [f"m{i:03}" for i in range(160)]

    def post(chunk: list[str]) -> list[int]:
        client = httpx.Client(base_url=service.url, headers=s.team.headers, timeout=30)
        with client:
            return [
                client.post("/api/v1/messages", json=event(i, text="x" * 3000)).status_code
                for i in chunk
            ]

    with ThreadPoolExecutor(8) as pool:
        codes = [c for r in pool.map(post, [wanted[i::8] for i in range(8)]) for c in r]
    assert codes == [202] * len(wanted)
    service.clock.advance(3600)
    wait_for(
        lambda: sum(len(b["messages"]) for b in s.bundles()) == len(wanted) + 1,
        what="every message",
    )
    s.barrier()
    bundles, bodies = hook_requests(receiver)
    chat = [b for b in bundles if ids(b) != ["warm-up"]]
    assert sorted(i for b in chat for i in ids(b)) == wanted
    check_limits(bundles, bodies)
    # a line is 3,040 characters: 21 fit a note, so exact counters give exactly 8 bundles
    assert [len(b["messages"]) for b in chat] == [21] * 7 + [13]
