"""Answering a customer through the account's source (issue 18): the API queues a send, the
worker makes it through the sender's own API (a fake WAHA on 127.0.0.1 that answers as
WAHA's code does), in order per chat, retried when the sender is unavailable, failed at
once when it refuses; the sent message reaches the webhooks once, echo or not."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from chathooks.send import queue
from chathooks.sources import waha as waha_kind
from chathooks.sources.protocol import SendAnswer, SendReport
from chathooks.store import outgoing
from chathooks.store.models import Message, Teammate
from tests.conftest import Service, Workspace, wait_for
from tests.fake_senders.waha import API_KEY, FakeWaha, Scripted, unavailable
from tests.receiver import Receiver
from tests.test_sources import Sender, fixture

CUSTOMER = "79111111111@c.us"
"""The chat of the WAHA fixture ``text_received``."""
FAST = {"send_per_second": 1000.0, "retry_base_seconds": 1.0, "retry_max_seconds": 2.0}
"""Sends paced for a test, and back-offs the test's clock passes quickly."""


class Line:
    """A team with a WAHA source that can send, a webhook, and the chat a customer opened."""

    def __init__(
        self, service: Service, waha: FakeWaha, receiver: Receiver, **secrets: str
    ) -> None:
        self.team: Workspace = service.workspace()
        self.team.webhook(receiver.url)
        given = {"api_url": waha.url, "x_api_key": API_KEY, **secrets}
        sending = {name: value for name, value in given.items() if value is not None}
        self.source = Sender(self.team, "waha", secrets=sending)
        self.source.deliver("text_received", stored=1)
        self.chat_id = self.team.get("/chats").json()["chats"][0]["chat_id"]
        key = self.source.source["secrets"]["hmac_key"]
        waha.webhook = (service.url + self.source.path, key)

    def send(self, text: str, **headers: str) -> Any:
        answer = self.team.request(
            "POST", f"/chats/{self.chat_id}/messages", json={"text": text}, headers=headers
        )
        assert answer.status_code == 202, answer.text
        return answer.json()

    def outgoing(self, outgoing_id: str) -> dict[str, Any]:
        answer = self.team.get(f"/outgoing/{outgoing_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def _sends(service: Service) -> dict[tuple[str, str], float]:
    """The process' send counters by (kind, outcome), and the queue's depth as ``queued``."""
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(service.http.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "chathooks_sends_total":
                found[(sample.labels["kind"], sample.labels["outcome"])] = sample.value
            elif sample.name == "chathooks_sends_queued":
                found[("queue", "queued")] = sample.value
    return found


def sent_deliveries(receiver: Receiver) -> list[dict[str, Any]]:
    """The messages delivered to the webhook as ``sent``, in the order they arrived."""
    return [
        r.json["message"]
        for r in receiver.requests
        if r.json.get("message", {}).get("direction") == "sent"
    ]


def _settled(line: Line, service: Service, ids: list[str], status: str = "sent") -> bool:
    """Whether every send reached ``status``; each look moves the test's clock past a
    back-off (leases last far longer)."""
    service.clock.advance(0.5)
    return all(line.outgoing(i)["status"] == status for i in ids)


def test_replies_go_out_in_order_and_reach_the_webhooks_once(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    before = _sends(service)
    queued = [line.send(f"reply {n}") for n in range(5)]
    assert {q["status"] for q in queued} == {"queued"}
    ids = [q["id"] for q in queued]
    wait_for(lambda: _settled(line, service, ids), what="the five replies to be sent")
    assert waha.texts() == [f"reply {n}" for n in range(5)]
    assert {body["chatId"] for body in waha.sent} == {CUSTOMER}
    # WAHA echoes each as message.any fromMe: a duplicate of the stored sent message
    wait_for(lambda: line.source.log()[0]["outcome"] == "duplicate" or None, what="echoes")
    wait_for(lambda: len(sent_deliveries(receiver)) == 5, what="five sent deliveries")
    delivered = sent_deliveries(receiver)
    assert [m["text"] for m in delivered] == [f"reply {n}" for n in range(5)]
    assert [m["message_id"] for m in delivered] == [
        line.outgoing(i)["sender_message_id"] for i in ids
    ]
    assert {m["sender"]["full_name"] for m in delivered} == {"Acme"}
    assert all(m["message_id"].startswith(f"true_{CUSTOMER}_") for m in delivered)
    assert len(sent_deliveries(receiver)) == 5
    after = _sends(service)
    assert after[("waha", "sent")] - before[("waha", "sent")] == 5
    assert after[("queue", "queued")] == 0


def test_a_busy_chats_later_sends_wait_out_of_sight_until_their_turn(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    """Only a chat's first queued send is due: the ones behind it are not even looked at
    (a claim, and the check every stored message makes, would otherwise walk them all)
    until the one ahead is sent or fails and hands its turn on."""
    service = start_service(run_worker=False, **FAST)
    line = Line(service, waha, receiver)
    ids = [int(line.send(text)["id"]) for text in ("one", "two", "three")]
    rt = service.rt

    def claim_one() -> outgoing.Claimed:
        with rt.transaction() as session:
            claimed = outgoing.claim(
                session, rt.clock.now(), lease=timedelta(minutes=1), limit=10, holder=None
            )
        assert len(claimed) == 1
        return claimed[0]

    def nothing_due() -> bool:
        with rt.reading() as connection:
            return not outgoing.any_due(connection, rt.clock.now())

    first = claim_one()
    assert first.id == ids[0] and nothing_due()
    with rt.transaction() as session:
        lease = (first.id, first.lease_until)
        assert outgoing.mark_failed(session, lease, error="no", attempted=True, now=rt.clock.now())
    second = claim_one()
    assert second.id == ids[1] and nothing_due()
    with rt.transaction() as session:
        lease = (second.id, second.lease_until)
        sent = outgoing.mark_sent(session, lease, message_id="m2", chat_id=None, now=rt.clock.now())
        assert sent
    assert claim_one().id == ids[2]


def test_an_echo_that_arrives_before_the_answer_is_one_message(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    waha.echo_first = True
    sent = line.send("the echo wins")
    wait_for(lambda: _settled(line, service, [sent["id"]]), what="the reply to be sent")
    wait_for(lambda: sent_deliveries(receiver), what="the sent delivery")
    assert [m["text"] for m in sent_deliveries(receiver)] == ["the echo wins"]
    assert line.outgoing(sent["id"])["chat_id"] == line.chat_id
    with service.rt.transaction() as session:  # stored from the echo, then attributed
        stored = session.scalars(select(Message).where(Message.text == "the echo wins")).one()
        assert (stored.direction, stored.sender_name) == ("sent", "Acme")


def test_an_ack_error_from_waha_fails_the_send(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    """WAHA accepts a send, then WhatsApp refuses it: its ``message.ack`` with ``ERROR``
    turns the send ``failed``; acks of other states, or of others' messages, change nothing."""
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    sent = line.send("this one bounces")
    wait_for(lambda: _settled(line, service, [sent["id"]]), what="the send")
    message_id = line.outgoing(sent["id"])["sender_message_id"]

    def ack(number: int, name: str, *, from_me: bool = True) -> dict[str, int]:
        payload = {"id": message_id, "from": CUSTOMER, "fromMe": from_me, "ack": number}
        body = {
            "event": "message.ack",
            "session": "default",
            "payload": {**payload, "ackName": name},
        }
        answer = line.source.post(json.dumps(body).encode())
        assert answer.status_code == 200
        return dict(answer.json())

    assert ack(3, "READ")["ignored"] == 1
    assert ack(-1, "ERROR", from_me=False)["ignored"] == 1
    assert line.outgoing(sent["id"])["status"] == "sent"
    assert ack(-1, "ERROR")["ignored"] == 1
    failed = line.outgoing(sent["id"])
    assert (failed["status"], failed["last_error"]) == ("failed", waha_kind.ACK_ERROR_WORDS)


def test_unavailable_and_timed_out_sends_are_retried(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(total_timeout_seconds=1.0, **FAST)
    line = Line(service, waha, receiver)
    waha.script.extend([unavailable(), Scripted(delay=3.0)])
    first, second = line.send("first"), line.send("second")
    wait_for(lambda: _settled(line, service, [first["id"], second["id"]]), what="both sent")
    assert waha.calls == 4  # 503, a timeout, then each once
    assert waha.texts() == ["first", "second"]
    assert line.outgoing(first["id"])["attempts"] == 3
    assert line.outgoing(first["id"])["last_error"] == ""


def test_a_refusal_fails_at_once_with_the_senders_words(
    receiver: Receiver, waha: FakeWaha, start_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    waha.status = "SCAN_QR_CODE"
    with caplog.at_level(logging.WARNING, logger="chathooks.send"):
        refused = line.send("not now")
        wait_for(lambda: _settled(line, service, [refused["id"]], "failed"), what="the failure")
    failed = line.outgoing(refused["id"])
    assert failed["attempts"] == 1 and waha.calls == 1
    assert failed["last_error"] == (
        "WAHA answered HTTP 422: Session status is not as expected. Try again later or "
        "restart the session (session status SCAN_QR_CODE)"
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "chathooks.send"]
    assert lines == [f"send {refused['id']} through source {line.source.source['id']} failed: "
                     + failed["last_error"]]  # fmt: skip
    waha.status = "WORKING"
    later = line.send("now")  # the failed send no longer holds its chat
    wait_for(lambda: _settled(line, service, [later["id"]]), what="the next send")
    assert waha.texts() == ["now"]
    retried = line.team.post(f"/outgoing/{refused['id']}/retry", {})
    assert (retried.status_code, retried.json()["status"]) == (200, "queued")
    wait_for(lambda: _settled(line, service, [refused["id"]]), what="the retried send")
    assert waha.texts() == ["now", "not now"]
    assert line.outgoing(refused["id"])["last_error"] == ""
    again = line.team.post(f"/outgoing/{refused['id']}/retry", {})
    assert (again.status_code, again.json()) == (
        409,
        {"detail": "only a failed send can be retried; this one is sent"},
    )
    rival = service.workspace("Rival", "owner@rival.test")
    assert rival.post(f"/outgoing/{refused['id']}/retry", {}).status_code == 404


def test_a_retry_while_its_chat_sends_waits_its_turn(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    """A failed send retried while a later one of its chat is in flight goes out after
    that one is answered, before any send queued after the retry: one at a time, in order."""
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    waha.status = "SCAN_QR_CODE"
    refused = line.send("not now")
    wait_for(lambda: _settled(line, service, [refused["id"]], "failed"), what="the failure")
    waha.status, waha.answer_delay = "WORKING", 1.0
    later = line.send("later")
    wait_for(lambda: waha.texts() == ["later"] or None, what="the later send in flight")
    retried = line.team.post(f"/outgoing/{refused['id']}/retry", {})
    assert (retried.status_code, retried.json()["status"]) == (200, "queued")
    last = line.send("last")
    ids = [later["id"], refused["id"], last["id"]]
    wait_for(lambda: _settled(line, service, ids), what="all three sent")
    assert waha.texts() == ["later", "not now", "last"]
    answered = waha.arrivals[0] + waha.answer_delay
    assert waha.arrivals[1] >= answered  # the retried send waited for the answer


def test_a_wrong_api_key_is_reported_as_waha_words_it(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver, x_api_key="wrong-key")
    refused = line.send("hello")
    wait_for(lambda: _settled(line, service, [refused["id"]], "failed"), what="the failure")
    assert line.outgoing(refused["id"])["last_error"] == "WAHA answered HTTP 401: Unauthorized"


def test_the_same_idempotency_key_sends_once(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    first = line.send("quote attached", **{"Idempotency-Key": "deal-42"})
    wait_for(lambda: _settled(line, service, [first["id"]]), what="the send")
    again = line.send("quote attached", **{"Idempotency-Key": "deal-42"})
    assert again == first  # the first answer, as it was
    other = line.team.request(
        "POST",
        f"/chats/{line.chat_id}/messages",
        json={"text": "another text"},
        headers={"Idempotency-Key": "deal-42"},
    )
    assert other.status_code == 409
    assert "already used for a different request" in other.json()["detail"]
    fresh = line.send("quote attached", **{"Idempotency-Key": "deal-43"})
    wait_for(lambda: _settled(line, service, [fresh["id"]]), what="the second send")
    assert waha.texts() == ["quote attached", "quote attached"]


def test_another_workspace_gets_404_and_nothing_is_sent(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    sent = line.send("ours")
    other = service.workspace("Other", "owner@other.test")
    assert other.post(f"/chats/{line.chat_id}/messages", {"text": "theirs"}).status_code == 404
    assert other.get(f"/outgoing/{sent['id']}").status_code == 404
    assert line.team.get(f"/outgoing/{2**40}").status_code == 404
    assert line.team.post(f"/chats/{2**40}/messages", {"text": "nobody"}).status_code == 404
    wait_for(lambda: _settled(line, service, [sent["id"]]), what="our send")
    assert waha.texts() == ["ours"]


def test_a_source_without_sending_credentials_says_what_to_set(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver, api_url=None)
    answer = line.team.post(f"/chats/{line.chat_id}/messages", {"text": "hello"})
    assert answer.status_code == 409
    assert answer.json()["detail"] == (
        "the account's source 'waha line' has no sending credentials: set its API base URL "
        "on the source's page to send through WAHA"
    )
    assert waha.calls == 0


def test_a_template_is_refused_for_waha(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    template = {"name": "order_update", "language": "en"}
    answer = line.team.post(f"/chats/{line.chat_id}/messages", {"template": template})
    assert answer.status_code == 422
    assert [e["loc"] for e in answer.json()["detail"]] == [["body", "template"]]
    assert answer.json()["detail"][0]["msg"] == (
        "templates are sent through WhatsApp Cloud API (Meta) and Twilio "
        "(WhatsApp) sources only; this chat's account sends through WAHA: send text instead"
    )
    empty = line.team.post(f"/chats/{line.chat_id}/messages", {"text": ""})
    assert empty.status_code == 422
    assert waha.calls == 0


def test_a_text_to_a_phone_number_starts_its_chat(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    body = {"whatsapp_account_phone": "+79222222222", "phone": "+14155550123", "text": "Hi"}
    answer = line.team.post("/messages/send", body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["chat_id"] is None
    sent_id = answer.json()["id"]
    wait_for(lambda: _settled(line, service, [sent_id]), what="the send")
    assert waha.sent[0]["chatId"] == "14155550123@c.us"
    chat_id = line.outgoing(sent_id)["chat_id"]
    chat = line.team.get(f"/chats/{chat_id}").json()
    assert chat["phone"] == "+14155550123"
    unknown = line.team.post("/messages/send", {**body, "whatsapp_account_phone": "+1555"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "whatsapp_account_phone"]


def test_a_failure_the_sender_reports_later_fails_the_send(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    """Cloud API reports failures in ``statuses[]``; the service applies them by id."""
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    sent = line.send("too late")
    wait_for(lambda: _settled(line, service, [sent["id"]]), what="the send")
    message_id = line.outgoing(sent["id"])["sender_message_id"]
    source_id = line.source.source["id"]
    reports = [
        SendReport("someone-elses", failed=True, error="not ours"),
        SendReport(message_id, failed=False),
        SendReport(message_id, failed=True, error="131047: Re-engagement message"),
    ]
    with service.rt.transaction() as session:
        assert queue.apply_reports(session, source_id, reports) == 1
    failed = line.outgoing(sent["id"])
    assert (failed["status"], failed["last_error"]) == ("failed", "131047: Re-engagement message")


def test_waha_answers_of_every_engine_give_the_id_its_echo_carries() -> None:
    """WEBJS answers whatsapp-web.js' message, NOWEB Baileys' (``key``), GOWS ``{id, _data}``
    (``messageResponse``): each read as the ``payload.id`` its echo is stored under."""
    echo = json.loads(fixture("waha", "noweb_text_sent"))
    stored = waha_kind.read(echo).messages[0]["message_id"]
    key = echo["payload"]["_data"]["key"]
    noweb = {"key": key, "message": {}, "messageTimestamp": "1745913660", "status": "PENDING"}
    assert waha_kind.read_send(201, json.dumps(noweb)) == SendAnswer("sent", stored)
    own = f"true_{CUSTOMER}_3EB0F6A1B2C3D4E5F6A7"
    webjs = {"id": {"fromMe": True, "remote": CUSTOMER, "id": "3EB0F6A1", "_serialized": own}}
    assert waha_kind.read_send(201, json.dumps(webjs)).message_id == own
    assert waha_kind.read_send(201, json.dumps({"id": own, "_data": None})).message_id == own


def test_waha_errors_are_read_as_nestjs_writes_them() -> None:
    invalid = {"statusCode": 400, "message": ["chatId must be a string"], "error": "Bad Request"}
    assert waha_kind.read_send(400, json.dumps(invalid)) == SendAnswer(
        "failed", error="WAHA answered HTTP 400: chatId must be a string"
    )
    unexpected = {"statusCode": 500, "exception": {"message": "Evaluation failed", "name": "Error"}}
    assert waha_kind.read_send(500, json.dumps(unexpected)) == SendAnswer(
        "retry", error="WAHA answered HTTP 500: Evaluation failed"
    )
    assert waha_kind.read_send(429, "Too Many Requests").outcome == "retry"
    assert waha_kind.read_send(502, "").error == "WAHA answered HTTP 502: no answer body"


def test_a_teammates_reply_is_delivered_as_theirs(
    receiver: Receiver, waha: FakeWaha, start_service: Any
) -> None:
    """The chat page queues through the same service, naming the teammate who wrote."""
    service = start_service(**FAST)
    line = Line(service, waha, receiver)
    waha.webhook = None
    workspace_id = line.team.created["id"]
    with service.rt.transaction() as session:
        owner = session.scalars(select(Teammate).where(Teammate.workspace_id == workspace_id)).one()
        queued = queue.enqueue_to_chat(
            session,
            workspace_id,
            int(line.chat_id),
            text="on my way",
            now=service.clock.now(),
            teammate_id=owner.id,
        )
        sent_id = str(queued.outgoing.id)
        assert queue.sending_problem(session, workspace_id, queued.outgoing.account_id) == ""
    wait_for(lambda: _settled(line, service, [sent_id]), what="the reply")
    wait_for(lambda: sent_deliveries(receiver), what="its delivery")
    assert [m["sender"]["full_name"] for m in sent_deliveries(receiver)] == ["Olive Owner"]
    with service.rt.transaction() as session:
        assert [s.text for s in queue.chat_sends(session, workspace_id, int(line.chat_id))] == [
            "on my way"
        ]
