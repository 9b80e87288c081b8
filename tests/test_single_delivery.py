"""A message in, a webhook out: the SPEC §3 single-message payload, exactly."""

from __future__ import annotations

from standardwebhooks import Webhook

from tests.conftest import PUBLIC_BASE, Service, event, wait_for
from tests.receiver import Receiver


def test_message_arrives_as_the_spec_single_payload(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)

    answer = team.post("/messages", event("ddfskhsd76dsfs6dsd5skjsdhf", text="Hi 👋 <b>"))
    assert answer.status_code == 202
    chat_id = answer.json()["chat_id"]
    assert answer.json() == {
        "message_id": "ddfskhsd76dsfs6dsd5skjsdhf",
        "chat_id": chat_id,
        "status": "accepted",
    }

    wait_for(lambda: receiver.requests, what="the delivery")
    request = receiver.requests[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "whatsapp_account": {
            "full_name": "Amnon Haha",
            "email": "amnon@acme.test",
            "phone": "+972500000000",
        },
        "chat": {
            "full_name": "John Doe",
            "responsible_name": "",
            "responsible_email": "",
            "chat_url": f"{PUBLIC_BASE}/chat/{chat_id}/messages/",
            "chat_id": chat_id,
            "is_new_chat": True,
            "is_group": False,
            "phone": "+972540000000",
        },
        "message": {
            "direction": "received",
            "timestamp": "2021-02-24T16:25:29+0000",
            "message_id": "ddfskhsd76dsfs6dsd5skjsdhf",
            "sender": {"full_name": "John Doe", "phone": "+972540000000"},
            "recipient": {"full_name": "Amnon Haha", "phone": "+972500000000"},
            "text": "Hi 👋 <b>",
        },
    }
    assert "👋".encode() in request.body.encode()
    Webhook(hook["secret"]).verify(request.body, request.headers)
