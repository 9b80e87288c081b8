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


def test_group_chat_has_empty_phones_and_is_new_chat_only_first(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    group = {
        "chat": "120363@g.us",
        "chat_name": "Sales team",
        "is_group": True,
        "phone": "+972540000000",
    }
    team.post("/messages", event("g1", **group))
    team.post("/messages", event("g2", **group))
    wait_for(lambda: len(receiver.requests) == 2, what="two deliveries")
    first, second = sorted(receiver.bodies(), key=lambda b: b["message"]["message_id"])
    assert first["chat"]["is_group"] is True
    assert first["chat"]["phone"] == ""
    assert first["message"]["recipient"]["phone"] == ""
    assert first["chat"]["is_new_chat"] is True
    assert second["chat"]["is_new_chat"] is False


def test_duplicate_message_id_is_acknowledged_and_not_sent_again(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    assert team.post("/messages", event("once")).status_code == 202
    again = team.post("/messages", event("once", text="changed"))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    batch = team.post(
        "/messages/batch", {"messages": [event("once"), event("twice"), event("twice")]}
    )
    assert [r["status"] for r in batch.json()["results"]] == ["duplicate", "accepted", "duplicate"]
    wait_for(lambda: len(receiver.requests) == 2, what="two deliveries")
    team.post("/outbound-webhooks", {"url": receiver.url})  # a barrier: one more webhook
    team.post("/messages", event("barrier"))
    wait_for(lambda: len(receiver.requests) == 4, what="the barrier message")
    ids = [b["message"]["message_id"] for b in receiver.bodies()]
    assert sorted(ids) == ["barrier", "barrier", "once", "twice"]
    assert receiver.bodies()[0]["message"]["text"] == "lorem ipsum"


def test_attachment_messages_are_stored_not_sent_and_logged_as_skipped(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    answer = team.post("/messages", event("photo", attachments=[{"type": "image"}]))
    assert answer.status_code == 202
    assert answer.json()["status"] == "skipped"
    team.post("/messages", event("text"))
    wait_for(lambda: receiver.requests, what="the text message")
    assert [b["message"]["message_id"] for b in receiver.bodies()] == ["text"]
    actions = [a["action"] for a in team.get(f"/outbound-webhooks/{hook['id']}/activity").json()]
    assert "skipped" in actions
    skipped = next(
        a
        for a in team.get(f"/outbound-webhooks/{hook['id']}/activity").json()
        if a["action"] == "skipped"
    )
    assert skipped["chat_id"] == answer.json()["chat_id"]
    assert "attachment" in skipped["error"]


def test_batch_delivers_every_message_with_per_chat_order(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    events = [event(f"m{i:03}", chat=f"chat{i % 5}@c.us", text=f"n{i}") for i in range(300)]
    answer = team.post("/messages/batch", {"messages": events})
    assert answer.status_code == 202
    assert {r["status"] for r in answer.json()["results"]} == {"accepted"}
    wait_for(lambda: len(receiver.requests) == 300, what="300 deliveries")
    per_chat: dict[str, list[str]] = {}
    for body in receiver.bodies():
        per_chat.setdefault(body["chat"]["chat_id"], []).append(body["message"]["message_id"])
    assert len(per_chat) == 5
    for ids in per_chat.values():
        assert ids == sorted(ids)
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 300


def test_responsible_teammate_appears_in_the_payload(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    chat_id = team.post("/messages", event("before")).json()["chat_id"]
    team.post("/teammates", {"full_name": "Rita Responsible", "email": "rita@acme.test"})
    patched = team.patch(f"/chats/{chat_id}", {"responsible_email": "rita@acme.test"})
    assert patched.status_code == 200
    assert patched.json()["responsible_name"] == "Rita Responsible"
    team.webhook(receiver.url)
    team.post("/messages", event("after"))
    wait_for(lambda: receiver.requests, what="the delivery")
    chat = receiver.bodies()[0]["chat"]
    assert (chat["responsible_name"], chat["responsible_email"]) == (
        "Rita Responsible",
        "rita@acme.test",
    )
    unknown = team.patch(f"/chats/{chat_id}", {"responsible_email": "nobody@acme.test"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "responsible_email"]


def test_max_requests_per_second_is_never_exceeded(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url, max_requests_per_second=20)
    team.post(
        "/messages/batch", {"messages": [event(f"m{i}", chat=f"c{i}@c.us") for i in range(45)]}
    )
    wait_for(lambda: len(receiver.requests) == 45, what="45 deliveries")
    arrivals = sorted(r.at for r in receiver.requests)
    windows = [later - earlier for earlier, later in zip(arrivals, arrivals[20:], strict=False)]
    assert min(windows) >= 0.9, "more than 20 requests arrived within one second"


def test_a_chat_opened_with_a_photo_is_new_on_its_first_text(
    service: Service, receiver: Receiver
) -> None:
    """SPEC §3: ``is_new_chat`` is true on the chat's first deliverable message."""
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    photo = event("photo", text="", attachments=[{"type": "image"}])
    assert team.post("/messages", photo).json()["status"] == "skipped"
    team.post("/messages", event("first-text"))
    team.post("/messages", event("second-text"))
    other = {"chat": "972549999999@c.us", "phone": "+972549999999"}
    batch = [
        event("b-photo", attachments=[{"type": "image"}], **other),
        event("b-text-1", **other),
        event("b-text-2", **other),
    ]
    assert team.post("/messages/batch", {"messages": batch}).status_code == 202
    wait_for(lambda: len(receiver.requests) == 4, what="four deliveries")
    new_chat = {b["message"]["message_id"]: b["chat"]["is_new_chat"] for b in receiver.bodies()}
    assert new_chat == {
        "first-text": True,
        "second-text": False,
        "b-text-1": True,
        "b-text-2": False,
    }
