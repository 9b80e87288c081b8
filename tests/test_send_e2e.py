"""Issue 18's "Done when", for each sender: a CRM answers a customer with one API call
(its retry with the same ``Idempotency-Key`` sends nothing more), the fake sender on
127.0.0.1 receives the call as the real one takes it, what the sender posts back to the
source's ``/in/{key}`` (Evolution's ``send.message`` echo, Meta's ``statuses[]`` and
``smb_message_echoes``, Twilio's status callback) is applied, and the answer reaches the
webhook once as a ``sent`` message from the workspace."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from sqlalchemy import func, select

from chathooks.sources.whatsapp_cloud import ADVICE, OUTSIDE_WINDOW
from chathooks.store.models import Delivery, Message
from tests.conftest import Service, Workspace, wait_for
from tests.fake_senders.evolution import FakeEvolution, send_message
from tests.fake_senders.fixtures import (
    EVOLUTION_KEY,
    META_TOKEN,
    NUMBER_ID,
    TWILIO_SENDER,
    TWILIO_SID,
    TWILIO_TOKEN,
)
from tests.fake_senders.twilio import FakeTwilio, status_callback
from tests.fake_senders.whatsapp_cloud import DETAILS_131047, FakeGraph, failed_status, message_echo
from tests.receiver import Receiver
from tests.test_send import FAST, sent_deliveries
from tests.test_sources import APP_SECRET, Sender
from tests.test_twilio import PUBLIC, TwilioSender
from tests.test_twilio import fixture as twilio_fixture

EVOLUTION_CUSTOMER = "558197088404"
"""The customer of the Evolution fixture ``text_received``; its business is ``EVOLUTION_OWNER``."""
EVOLUTION_OWNER = "558196349077@s.whatsapp.net"
CLOUD_CUSTOMER, CLOUD_BUSINESS = "16315551234", "16505553333"
"""The customer and the business number of the Cloud API fixture ``text_received``."""
TWILIO_CUSTOMER = "+5511987654321"
TEMPLATE_ADVICE = ADVICE[OUTSIDE_WINDOW]


class Crm:
    """A CRM on one team's API: it answers the chat a customer opened and follows the send."""

    def __init__(self, team: Workspace) -> None:
        self.team = team
        self.chat_id = team.get("/chats").json()["chats"][0]["chat_id"]

    def send(self, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        answer = self.team.request(
            "POST", f"/chats/{self.chat_id}/messages", json=body, headers=headers
        )
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    def outgoing(self, outgoing_id: str) -> dict[str, Any]:
        answer = self.team.get(f"/outgoing/{outgoing_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def settled(self, outgoing_id: str, status: str = "sent") -> dict[str, Any]:
        """The send once it reached ``status``; each look moves the test's clock past a
        back-off."""

        def reached() -> dict[str, Any] | None:
            self.team.service.clock.advance(0.5)
            found = self.outgoing(outgoing_id)
            return found if found["status"] == status else None

        return dict(wait_for(reached, what=f"send {outgoing_id} to be {status}"))


def delivered_once(service: Service, receiver: Receiver, message_id: str) -> dict[str, Any]:
    """The one ``sent`` message the webhook got with ``message_id``, once every delivery
    queued for it went out (a second copy would have had its delivery queued too)."""

    def all_out() -> bool:
        with service.rt.transaction() as session:
            stored = session.scalars(select(Message).where(Message.external_id == message_id))
            ids = [m.id for m in stored]
            waiting = session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.message_id.in_(ids), Delivery.status != "delivered")
            )
        return len(ids) == 1 and waiting == 0

    wait_for(all_out, what=f"{message_id}'s deliveries")
    found = [m for m in sent_deliveries(receiver) if m["message_id"] == message_id]
    assert len(found) == 1, found
    return found[0]


def test_evolution_a_crm_answers_and_gets_it_back_once(
    receiver: Receiver, fake_evolution: FakeEvolution, start_service: Callable[..., Service]
) -> None:
    service = start_service(**FAST)
    team = service.workspace()
    team.webhook(receiver.url)
    source, crm = evolution_line(service, fake_evolution, team)

    key = {"Idempotency-Key": "deal-42-quote"}
    queued = crm.send({"text": "Thanks, your quote is attached"}, **key)
    assert queued["status"] == "queued"
    sent = crm.settled(queued["id"])
    [call] = fake_evolution.calls
    assert (call.method, call.path) == ("POST", "/message/sendText/sales")
    assert call.headers["apikey"] == EVOLUTION_KEY
    assert call.json == {"number": EVOLUTION_CUSTOMER, "text": "Thanks, your quote is attached"}
    [answered] = fake_evolution.answered
    assert sent["sender_message_id"] == answered["key"]["id"]

    echo = send_message(answered, "sales", EVOLUTION_KEY, EVOLUTION_OWNER)
    posted = source.post(json.dumps(echo).encode(), path=source.path + "/send-message")
    assert posted.json() == {"stored": 0, "duplicates": 1, "ignored": 0, "rejected": 0}

    message = delivered_once(service, receiver, sent["sender_message_id"])
    assert message["direction"] == "sent"
    assert message["text"] == "Thanks, your quote is attached"
    assert message["sender"] == {"full_name": "Acme", "phone": "+" + EVOLUTION_OWNER[:12]}
    assert message["recipient"] == {"full_name": "Maria Souza", "phone": "+" + EVOLUTION_CUSTOMER}

    again = crm.send({"text": "Thanks, your quote is attached"}, **key)  # the CRM's retry
    assert again == queued
    assert len(fake_evolution.calls) == 1
    assert len(sent_deliveries(receiver)) == 1


def test_evolution_an_echo_that_arrives_before_the_answer_is_one_message(
    receiver: Receiver, fake_evolution: FakeEvolution, start_service: Callable[..., Service]
) -> None:
    service = start_service(**FAST)
    team = service.workspace()
    team.webhook(receiver.url)
    source, crm = evolution_line(service, fake_evolution, team)
    fake_evolution.webhook = (service.url + source.path, EVOLUTION_OWNER)
    sent = crm.settled(crm.send({"text": "the echo wins"})["id"])
    assert source.counts() == {"stored": 2, "duplicates": 0, "ignored": 0, "rejected": 0}
    message = delivered_once(service, receiver, sent["sender_message_id"])
    assert (message["direction"], message["text"]) == ("sent", "the echo wins")
    with service.rt.transaction() as session:  # stored from the echo, then attributed
        stored = session.scalars(select(Message).where(Message.text == "the echo wins")).one()
        assert (stored.direction, stored.sender_name) == ("sent", "Acme")


def test_cloud_api_a_late_131047_fails_the_send_and_a_template_goes_through(
    receiver: Receiver, graph: FakeGraph, start_service: Callable[..., Service]
) -> None:
    service = start_service(**FAST)
    team = service.workspace()
    team.webhook(receiver.url)
    secrets = {
        "app_secret": APP_SECRET,
        "access_token": META_TOKEN,
        "phone_number_id": NUMBER_ID,
        "api_url": graph.url,
    }
    source = Sender(team, "whatsapp_cloud", secrets=secrets)
    source.deliver("text_received", stored=1)
    crm = Crm(team)

    text = crm.settled(
        crm.send({"text": "Your quote is attached"}, **{"Idempotency-Key": "q1"})["id"]
    )
    wamid = text["sender_message_id"]
    assert wamid.startswith("wamid.")
    assert graph.calls[0].json["text"] == {"preview_url": False, "body": "Your quote is attached"}
    # Meta does not echo a send unless smb_message_echoes is on: stored from the answer
    message = delivered_once(service, receiver, wamid)
    assert (message["text"], message["sender"]["full_name"]) == ("Your quote is attached", "Acme")
    # … and when it is on, the echo of our own send is the same message
    echo = message_echo(wamid, CLOUD_BUSINESS, CLOUD_CUSTOMER, "Your quote is attached")
    answer = source.post(json.dumps(echo).encode())
    assert answer.json() == {"stored": 0, "duplicates": 1, "ignored": 0, "rejected": 0}
    delivered_once(service, receiver, wamid)

    late = failed_status(wamid, CLOUD_CUSTOMER, 131047, "Re-engagement message", DETAILS_131047)
    answer = source.post(json.dumps(late).encode())
    assert answer.json() == {"stored": 0, "duplicates": 0, "ignored": 1, "rejected": 0}
    failed = crm.outgoing(text["id"])
    assert failed["status"] == "failed"
    assert failed["last_error"].startswith("Meta refused it (error 131047): Re-engagement")
    assert failed["last_error"].endswith(TEMPLATE_ADVICE)

    template = {"name": "quote_ready", "language": "en_US", "parameters": ["Ana", "Q-1042"]}
    by_template = crm.settled(crm.send({"template": template})["id"])
    assert graph.calls[-1].json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CLOUD_CUSTOMER,
        "type": "template",
        "template": {
            "name": "quote_ready",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "Q-1042"},
                    ],
                }
            ],
        },
    }
    message = delivered_once(service, receiver, by_template["sender_message_id"])
    assert message["text"] == "[template quote_ready]"

    graph.window_closed.add(CLOUD_CUSTOMER)  # Meta refuses in the call's answer this time
    refused = crm.settled(crm.send({"text": "One more thing"})["id"], "failed")
    assert refused["attempts"] == 1 and refused["sender_message_id"] == ""
    assert refused["last_error"].startswith("Meta refused it (error 131047): (#131047) Re-engag")
    assert refused["last_error"].endswith(TEMPLATE_ADVICE)
    assert [m["text"] for m in sent_deliveries(receiver)] == [
        "Your quote is attached",
        "[template quote_ready]",
    ]


def test_twilio_a_status_callback_fails_the_send_in_words(
    receiver: Receiver, fake_twilio: FakeTwilio, start_service: Callable[..., Service]
) -> None:
    service = start_service(public_base_url=PUBLIC, **FAST)
    team = service.workspace()
    team.webhook(receiver.url)
    source = TwilioSender(
        team,
        auth_token=TWILIO_TOKEN,
        account_sid=TWILIO_SID,
        sender=TWILIO_SENDER,
        api_url=fake_twilio.url,
    )
    assert source.post(twilio_fixture("text_received"), key=TWILIO_TOKEN).status_code == 200
    assert source.counts()["stored"] == 1
    crm = Crm(team)

    sent = crm.settled(crm.send({"text": "Your order ships today"})["id"])
    [call] = fake_twilio.calls
    assert call.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert parse_qs(call.body) == {
        "To": [f"whatsapp:{TWILIO_CUSTOMER}"],
        "From": [TWILIO_SENDER],
        "Body": ["Your order ships today"],
    }
    sid = sent["sender_message_id"]
    assert sid.startswith("SM")
    message = delivered_once(service, receiver, sid)  # Twilio never echoes: from its answer
    assert (message["text"], message["sender"]["full_name"]) == ("Your order ships today", "Acme")

    callback = urlencode(status_callback(sid, "failed", "63016")).encode()
    assert source.post(callback, key=TWILIO_TOKEN).status_code == 200
    failed = crm.outgoing(sent["id"])
    assert failed["status"] == "failed"
    assert failed["last_error"].startswith("Twilio reports it failed (error 63016).")
    assert "Send an approved Content template instead" in failed["last_error"]
    assert source.counts() == {"stored": 1, "duplicates": 0, "ignored": 1, "rejected": 0}

    template = {
        "name": "HXb5b62575e6e4ff6129ad7c8efe1f983e",
        "language": "en",
        "parameters": ["Ana"],
    }
    crm.settled(crm.send({"template": template})["id"])
    form = parse_qs(fake_twilio.calls[-1].body)
    assert form["ContentSid"] == ["HXb5b62575e6e4ff6129ad7c8efe1f983e"]
    assert json.loads(form["ContentVariables"][0]) == {"1": "Ana"} and "Body" not in form


def evolution_line(
    service: Service, fake_evolution: FakeEvolution, team: Workspace | None = None
) -> tuple[Sender, Crm]:
    """An Evolution source that can send, and the chat its customer opened."""
    team = team or service.workspace()
    secrets = {"api_key": EVOLUTION_KEY, "api_url": fake_evolution.url, "instance": "sales"}
    source = Sender(team, "evolution", secrets=secrets)
    source.deliver("text_received", stored=1)
    return source, Crm(team)


def test_another_workspaces_token_can_neither_send_nor_follow(
    fake_evolution: FakeEvolution, start_service: Callable[..., Service]
) -> None:
    service = start_service(**FAST)
    _, crm = evolution_line(service, fake_evolution)
    sent = crm.settled(crm.send({"text": "ours"}, **{"Idempotency-Key": "k1"})["id"])
    rival = service.workspace("Rival", "owner@rival.test")
    for headers in ({}, {"Idempotency-Key": "k1"}):  # nor replay the team's first answer
        answer = rival.request(
            "POST", f"/chats/{crm.chat_id}/messages", json={"text": "x"}, headers=headers
        )
        assert (answer.status_code, answer.json()) == (404, {"detail": "chat not found"})
    followed = rival.get(f"/outgoing/{sent['id']}")
    assert (followed.status_code, followed.json()) == (
        404,
        {"detail": "outgoing message not found"},
    )

    def by_phone(account_phone: str) -> Any:
        body = {"whatsapp_account_phone": account_phone, "phone": "+5511900000000", "text": "x"}
        answer = rival.post("/messages/send", body)
        assert answer.status_code == 422
        return answer.json()["detail"]

    # the team's number is, to the rival, exactly a number no workspace has
    theirs, nobodys = by_phone("+558196349077"), by_phone("+19990000000")
    assert json.dumps(theirs).replace("+558196349077", "+19990000000") == json.dumps(nobodys)
    assert theirs[0]["loc"] == ["body", "whatsapp_account_phone"]
    assert len(fake_evolution.calls) == 1


def test_a_private_sender_sends_only_with_the_operators_allowance(
    fake_evolution: FakeEvolution, start_service: Callable[..., Service]
) -> None:
    strict = start_service(allow_private_targets=False, **FAST)
    team = strict.workspace()
    secrets = {"api_key": EVOLUTION_KEY, "api_url": fake_evolution.url, "instance": "sales"}
    refused = team.post("/sources", {"kind": "evolution", "name": "line", "secrets": secrets})
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "secrets", "api_url"]
    assert "CHATHOOKS_SENDER_HOSTS" in error["msg"]
    assert team.get("/sources").json() == []
    strict.stop()

    hosts = f"waha.internal:3000,127.0.0.1:{fake_evolution.port}"
    allowed = start_service(allow_private_targets=False, sender_hosts=hosts, **FAST)
    team = Workspace(allowed, team.token, team.created)
    _, crm = evolution_line(allowed, fake_evolution, team)
    assert crm.settled(crm.send({"text": "through the allowance"})["id"])["status"] == "sent"
    assert [c.json["text"] for c in fake_evolution.calls] == ["through the allowance"]
    allowed.stop()

    withdrawn = start_service(allow_private_targets=False, **FAST)
    crm = Crm(Workspace(withdrawn, team.token, team.created))
    failed = crm.settled(crm.send({"text": "not any more"})["id"], "failed")
    assert failed["last_error"] == (
        "chathooks may not call the sender: it resolves to 127.0.0.1, a loopback, private or "
        "link-local address (the operator can allow this host and port in "
        "CHATHOOKS_SENDER_HOSTS)"
    )
    assert len(fake_evolution.calls) == 1


def test_an_account_without_a_sending_source_names_every_kind_that_sends(service: Service) -> None:
    team = service.workspace()
    team.account()  # posted through the API: no source feeds it
    body = {"whatsapp_account_phone": "+972500000000", "phone": "+5511900000000", "text": "x"}
    answer = team.post("/messages/send", body)
    assert (answer.status_code, answer.json()) == (
        409,
        {
            "detail": "the WhatsApp account +972500000000 has no source to send through: "
            "connect it through a WhatsApp Cloud API (Meta), WAHA, Evolution API or Twilio "
            "(WhatsApp) source (Sources page)"
        },
    )
