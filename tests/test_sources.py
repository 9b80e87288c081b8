"""WhatsApp sources end to end (SPEC §8): a sender's real webhook, signed the way the sender
signs it, arrives at ``/in/{key}`` and leaves as the exact SPEC §3 payload."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from chathooks.store.models import Chat, Message, WhatsappAccount
from tests.conftest import PUBLIC_BASE, Service, Workspace, event, free_port, wait_for
from tests.receiver import Receiver

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"
APP_SECRET = "6f1d3c2b9a8e7f60a1b2c3d4e5f60718"
EVOLUTION_KEY = "B6D711FCDE4D4FD5936544120E713976"
"""The ``apikey`` in the Evolution fixtures (the example key of Evolution's docs)."""
SECRETS: dict[str, dict[str, str]] = {
    "whatsapp_cloud": {"app_secret": APP_SECRET},
    "waha": {},
    "evolution": {"api_key": EVOLUTION_KEY},
}


def fixture(kind: str, name: str) -> bytes:
    return (FIXTURES / kind / f"{name}.json").read_bytes()


def at(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class Sender:
    """A team's source of one kind, and a sender that signs exactly as the real one does."""

    def __init__(self, team: Workspace, kind: str, **extra: Any) -> None:
        answer = team.post(
            "/sources", {"kind": kind, "name": f"{kind} line", "secrets": SECRETS[kind], **extra}
        )
        assert answer.status_code == 201, answer.text
        self.team, self.kind, self.source = team, kind, answer.json()
        self.path = urlsplit(self.source["url"]).path

    def signature(self, body: bytes) -> dict[str, str]:
        secrets = self.source["secrets"]
        if self.kind == "whatsapp_cloud":  # Meta: X-Hub-Signature-256, HMAC-SHA256, raw body
            digest = hmac.new(secrets["app_secret"].encode(), body, hashlib.sha256).hexdigest()
            return {"X-Hub-Signature-256": f"sha256={digest}"}
        if self.kind == "waha":  # WAHA: X-Webhook-Hmac, hex HMAC-SHA512, raw body
            digest = hmac.new(secrets["hmac_key"].encode(), body, hashlib.sha512).hexdigest()
            return {"X-Webhook-Hmac": digest, "X-Webhook-Hmac-Algorithm": "sha512"}
        return {}  # Evolution: the apikey is in the body

    def post(
        self, body: bytes, headers: dict[str, str] | None = None, path: str = ""
    ) -> httpx.Response:
        sent = {"Content-Type": "application/json"}
        sent.update(self.signature(body) if headers is None else headers)
        return self.team.service.http.post(path or self.path, content=body, headers=sent)

    def deliver(self, name: str, **expected: int) -> dict[str, int]:
        answer = self.post(fixture(self.kind, name))
        assert answer.status_code == 200, answer.text
        counts = {"stored": 0, "duplicates": 0, "ignored": 0, "rejected": 0, **expected}
        assert answer.json() == counts
        return counts

    def counts(self) -> dict[str, Any]:
        found = self.team.get(f"/sources/{self.source['id']}").json()
        return {k: found[k] for k in ("stored", "duplicates", "ignored", "rejected")}

    def log(self) -> list[dict[str, Any]]:
        return list(self.team.get(f"/sources/{self.source['id']}/requests").json())


def stored_messages(service: Service) -> int:
    with service.rt.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def setup(service: Service, receiver: Receiver, kind: str, aggregation: str = "none") -> Sender:
    team = service.workspace()
    team.webhook(receiver.url, aggregation)
    return Sender(team, kind)


OWNER = {"full_name": "Olive Owner", "email": "owner@acme.test"}


def chat(chat_id: str, name: str, phone: str, *, new: bool, group: bool = False) -> dict[str, Any]:
    return {
        "full_name": name,
        "responsible_name": "",
        "responsible_email": "",
        "chat_url": f"{PUBLIC_BASE}/chat/{chat_id}/messages/",
        "chat_id": chat_id,
        "is_new_chat": new,
        "is_group": group,
        "phone": phone,
    }


def _ingested(service: Service, source: str) -> float:
    families = text_string_to_metric_families(service.http.get("/metrics").text)
    family = next(f for f in families if f.name == "chathooks_messages_ingested")
    return sum(s.value for s in family.samples if s.labels.get("source") == source)


def test_cloud_api_text_arrives_as_the_spec_payload(service: Service, receiver: Receiver) -> None:
    sender = setup(service, receiver, "whatsapp_cloud")
    before = _ingested(service, "whatsapp_cloud")
    sender.deliver("text_received", stored=1)
    assert _ingested(service, "whatsapp_cloud") == before + 1
    body = wait_for(receiver.bodies, what="the delivery")[0]
    chat_id = body["chat"]["chat_id"]
    assert body == {
        "whatsapp_account": {**OWNER, "phone": "+16505553333"},
        "chat": chat(chat_id, "Kerry Fisher", "+16315551234", new=True),
        "message": {
            "direction": "received",
            "timestamp": at(1603059201),
            "message_id": "wamid.ABGGFlCGg0cvAgo-sJQh43L5Pe4W",
            "sender": {"full_name": "Kerry Fisher", "phone": "+16315551234"},
            "recipient": {"full_name": "Olive Owner", "phone": "+16505553333"},
            "text": "Hello this is an answer",
        },
    }
    # The business number became a WhatsApp account of the workspace, owned by its owner.
    with service.rt.transaction() as session:
        phones = list(session.scalars(select(WhatsappAccount.phone)))
    assert phones == ["+16505553333"]


def test_cloud_api_echo_group_media_and_batch(service: Service, receiver: Receiver) -> None:
    sender = setup(service, receiver, "whatsapp_cloud")
    sender.deliver("echo_sent", stored=1)
    sender.deliver("group_received", stored=1)
    sender.deliver("image_caption", stored=1)  # stored, not forwarded
    sender.deliver("image_no_caption", stored=1)
    sender.deliver("batch", stored=3, ignored=1)  # 2 received + 1 echo; a status
    wait_for(lambda: len(receiver.requests) == 5, what="five deliveries")
    bodies = {b["message"]["message_id"]: b for b in receiver.bodies()}
    echo = bodies["wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="]
    assert echo["whatsapp_account"]["phone"] == "+15550783881"
    assert echo["chat"] == chat(echo["chat"]["chat_id"], "", "+16505551234", new=True)
    assert echo["message"]["direction"] == "sent"
    assert echo["message"]["sender"] == {"full_name": "Olive Owner", "phone": "+15550783881"}
    assert echo["message"]["recipient"] == {"full_name": "", "phone": "+16505551234"}
    group = bodies["wamid.HBgLMTY1MDUwNzY1MjAVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="]
    assert group["chat"] == chat(group["chat"]["chat_id"], "", "", new=True, group=True)
    assert group["message"]["sender"] == {"full_name": "Sheena Nelson", "phone": "+16505551234"}
    assert group["message"]["recipient"] == {"full_name": "", "phone": ""}
    # The photo came first in Kerry's chat: none of its messages were deliverable yet.
    first, second = bodies["wamid.batch-1"], bodies["wamid.batch-2"]
    assert first["message"]["text"] == "Merhaba 👋 çok güzel"  # sent \\u-escaped by Meta
    assert first["chat"]["full_name"] == "Zoë Kuşçu"
    assert (first["chat"]["is_new_chat"], second["chat"]["is_new_chat"]) == (True, False)
    reply = bodies["wamid.batch-3"]
    assert reply["chat"]["chat_id"] == first["chat"]["chat_id"]
    assert reply["message"]["direction"] == "sent"
    assert reply["message"]["recipient"]["phone"] == "+905321234567"
    assert stored_messages(service) == 7
    assert sender.counts() == {"stored": 7, "duplicates": 0, "ignored": 1, "rejected": 0}


def test_waha_messages_arrive_as_one_bundle_at_the_period_end(
    service: Service, receiver: Receiver
) -> None:
    service.clock.set(datetime(2030, 3, 5, 10, 0, 5, tzinfo=UTC))
    sender = setup(service, receiver, "waha", "1h")
    sender.deliver("media_caption", stored=1)  # the customer opens the chat with a photo
    sender.deliver("text_received", stored=1)
    sender.deliver("text_received_message_event", duplicates=1)  # "message" and "message.any"
    sender.deliver("text_sent", stored=1)
    sender.deliver("media_no_caption", stored=1)
    sender.deliver("reaction", ignored=1)
    sender.deliver("ack", ignored=1)
    assert receiver.requests == []
    service.clock.set(datetime(2030, 3, 5, 11, 0, 0, tzinfo=UTC))
    bundle = wait_for(receiver.bodies, what="the bundle")[0]
    chat_id = bundle["chat"]["chat_id"]
    link = bundle["aggregation"].rsplit("href='", 1)[1].split("'", 1)[0]
    assert bundle == {
        "whatsapp_account": {**OWNER, "phone": "+79222222222"},
        "chat": chat(chat_id, "Aigerim", "+79111111111", new=True),
        "messages": [
            {
                "direction": "received",
                "timestamp": at(1741249700),
                "message_id": "false_79111111111@c.us_3EB0C767D097B7C5A4BB",
                "sender": {"full_name": "Aigerim", "phone": "+79111111111"},
                "recipient": {"full_name": "Olive Owner", "phone": "+79222222222"},
                "text": "Hi there! Do you ship to Almaty?",
            },
            {
                "direction": "sent",
                "timestamp": at(1741249760),
                "message_id": "true_79111111111@c.us_3EB0F6A1B2C3D4E5F6A7",
                "sender": {"full_name": "Olive Owner", "phone": "+79222222222"},
                "recipient": {"full_name": "", "phone": "+79111111111"},
                "text": "Yes, in 3 days 🚚",
            },
        ],
        "first_message_timestamp": at(1741249700),
        "last_message_timestamp": at(1741249760),
        "aggregation": (
            "from Aigerim on 2025-03-06 08:28: Hi there! Do you ship to Almaty?<br/>"
            "from Olive Owner on 2025-03-06 08:29: Yes, in 3 days 🚚<br/>"
            f"Click <a href='{link}'>here</a> to open the conversation in chathooks"
        ),
    }
    assert sender.counts() == {"stored": 4, "duplicates": 1, "ignored": 2, "rejected": 0}


def test_waha_group_and_evolution_messages(service: Service, receiver: Receiver) -> None:
    waha = setup(service, receiver, "waha")
    waha.deliver("group_received", stored=1)
    evolution = Sender(waha.team, "evolution")
    evolution.deliver("text_received", stored=1)
    evolution.deliver("text_sent", stored=1)
    evolution.deliver("group_received", stored=1)
    evolution.deliver("image_caption", stored=1)
    evolution.deliver("audio", stored=1)
    evolution.deliver("reaction", ignored=1)
    evolution.deliver("status_update", ignored=1)
    wait_for(lambda: len(receiver.requests) == 4, what="four deliveries")
    bodies = {b["message"]["message_id"]: b for b in receiver.bodies()}
    group = bodies["false_120363025439817642@g.us_3EB0A1A2A3A4A5A6A7A8_79333333333@c.us"]
    assert group["chat"]["is_group"] is True
    assert group["message"]["sender"] == {"full_name": "Timur", "phone": "+79333333333"}
    received = bodies["3EB0A0C1D2E3F4A5B6C7"]
    assert received["whatsapp_account"]["phone"] == "+558196349077"
    assert received["chat"] == chat(
        received["chat"]["chat_id"], "Maria Souza", "+558197088404", new=True
    )
    assert received["message"]["sender"] == {"full_name": "Maria Souza", "phone": "+558197088404"}
    sent = bodies["3AE99D6A1DBF3F9A0578"]  # "Você" is Evolution's name for the business
    assert sent["message"]["sender"] == {"full_name": "Olive Owner", "phone": "+558196349077"}
    assert sent["chat"]["full_name"] == "Maria Souza"
    assert sent["chat"]["is_new_chat"] is False
    evo_group = bodies["3EB0B1B2B3B4B5B6B7B8"]
    assert evo_group["chat"]["is_group"] is True
    assert evo_group["message"]["text"] == "Reunião às 10h amanhã"
    assert evo_group["message"]["sender"] == {"full_name": "João Lima", "phone": "+558199990000"}
    # Evolution's "Webhook by events" appends the event's name to the URL.
    body = fixture("evolution", "text_received").replace(b"3EB0A0C1", b"3EB0A0C9")
    assert evolution.post(body, path=evolution.path + "/messages-upsert").status_code == 200
    assert evolution.counts() == {"stored": 6, "duplicates": 0, "ignored": 2, "rejected": 0}


def chats_stored(service: Service) -> int:
    with service.rt.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Chat)) or 0)


def attachment_types(service: Service) -> dict[str, str]:
    with service.rt.transaction() as session:
        rows = session.execute(select(Message.external_id, Message.attachments))
        return {external_id: found[0]["type"] for external_id, found in rows if found}


def test_cloud_api_username_customer_keeps_one_chat_when_the_phone_comes(
    service: Service, receiver: Receiver
) -> None:
    """Meta's business-scoped user ids: a customer with a username comes without a phone,
    and keeps the chat once Meta shares the phone."""
    sender = setup(service, receiver, "whatsapp_cloud")
    sender.deliver("username_received", stored=1)  # from_user_id only, no from / wa_id
    first = wait_for(receiver.bodies, what="the first message")[0]
    chat_id = first["chat"]["chat_id"]
    assert first["chat"] == chat(chat_id, "maria.lopez", "", new=True)  # no name: username
    assert first["message"]["sender"] == {"full_name": "maria.lopez", "phone": ""}
    assert first["message"]["direction"] == "received"
    sender.deliver("username_echo", stored=1)  # the business answers: to_user_id only
    echo = wait_for(lambda: receiver.bodies()[1:], what="the echo")[0]
    assert echo["chat"] == {**first["chat"], "is_new_chat": False}
    assert echo["message"]["direction"] == "sent"
    assert echo["message"]["recipient"] == {"full_name": "", "phone": ""}
    sender.deliver("username_status", ignored=1)
    sender.deliver("username_with_phone", stored=1)  # now with from and wa_id
    later = wait_for(lambda: receiver.bodies()[2:], what="the message with the phone")[0]
    assert later["chat"] == chat(chat_id, "María López", "+16505551234", new=False)
    assert later["message"]["sender"] == {"full_name": "María López", "phone": "+16505551234"}
    assert chats_stored(service) == 1
    assert sender.counts() == {"stored": 3, "duplicates": 0, "ignored": 1, "rejected": 0}


def test_cloud_api_chat_begun_under_the_phone_keeps_the_customer_s_user_id_messages(
    service: Service, receiver: Receiver
) -> None:
    """Since Meta's rollout every message also carries the user id: a chat stored under
    the phone before it goes on, it does not split."""
    sender = setup(service, receiver, "whatsapp_cloud")
    sender.deliver("text_received", stored=1)
    wait_for(lambda: receiver.requests, what="the first message")
    sender.deliver("text_received_with_user_id", stored=1)
    wait_for(lambda: len(receiver.requests) == 2, what="the second message")
    before, after = receiver.bodies()
    assert after["chat"] == {**before["chat"], "is_new_chat": False}
    assert chats_stored(service) == 1


def test_cloud_api_text_that_is_not_a_string_is_rejected(
    service: Service, receiver: Receiver
) -> None:
    sender = setup(service, receiver, "whatsapp_cloud")
    sender.deliver("text_not_string", rejected=2)
    detail = sender.log()[0]["detail"]
    assert "'wamid.not-a-string-1': text.body is not a string" in detail
    assert "'wamid.not-a-string-2': image.caption is not a string" in detail
    assert stored_messages(service) == 0


WAHA_SENT = {  # the business's own messages, as each engine writes them
    "text_sent": "true_79111111111@c.us_3EB0F6A1B2C3D4E5F6A7",  # WEBJS: from = the business
    "noweb_text_sent": "true_79111111111@c.us_3EB0A7C1E2D3F4A5B6C7",  # from = the chat, no to
    "gows_text_sent": "true_79111111111@c.us_3EB0B8D2F3E4A5B6C7D8",  # from = the chat, to null
}
WAHA_GROUP_SENT = {
    "noweb_group_sent_api": "true_120363025439817642@g.us_3EB0C9E3A4F5B6C7D8E9",
    "gows_group_sent": "true_120363025439817642@g.us_3EB0DAF4B5A6C7D8E9FA_79222222222@c.us",
}


def test_every_waha_engine_s_sent_messages_arrive_once_in_their_chat(
    service: Service, receiver: Receiver
) -> None:
    sender = setup(service, receiver, "waha")
    sender.deliver("text_received", stored=1)
    sender.deliver("group_received", stored=1)
    for name in [*WAHA_SENT, *WAHA_GROUP_SENT]:
        sender.deliver(name, stored=1)
        sender.deliver(name, duplicates=1)  # WAHA retries: still once
    wait_for(lambda: len(receiver.requests) == 7, what="seven deliveries")
    bodies = {b["message"]["message_id"]: b for b in receiver.bodies()}
    assert len(bodies) == 7
    direct = bodies["false_79111111111@c.us_3EB0C767D097B7C5A4BB"]["chat"]
    group = bodies["false_120363025439817642@g.us_3EB0A1A2A3A4A5A6A7A8_79333333333@c.us"]["chat"]
    business = {"full_name": "Olive Owner", "phone": "+79222222222"}
    for message_id in WAHA_SENT.values():
        sent = bodies[message_id]
        assert sent["chat"] == {**direct, "is_new_chat": False}, message_id
        assert sent["message"]["direction"] == "sent"
        assert sent["message"]["sender"] == business
        assert sent["message"]["recipient"] == {"full_name": "", "phone": "+79111111111"}
    for message_id in WAHA_GROUP_SENT.values():
        sent = bodies[message_id]
        assert sent["chat"] == {**group, "is_new_chat": False}, message_id
        assert (sent["message"]["direction"], sent["message"]["sender"]) == ("sent", business)
    assert chats_stored(service) == 2  # none with the business's own number


def test_waha_hidden_numbers_use_the_phone_id_beside_them(
    service: Service, receiver: Receiver
) -> None:
    sender = setup(service, receiver, "waha")
    sender.deliver("noweb_lid_received", stored=1)  # NOWEB: _data.key.remoteJidAlt
    sender.deliver("gows_lid_sent", stored=1)  # GOWS: _data.Info.RecipientAlt
    sender.deliver("noweb_group_lid_received", stored=1)  # NOWEB: _data.key.participantAlt
    wait_for(lambda: len(receiver.requests) == 3, what="three deliveries")
    bodies = {b["message"]["message_id"]: b for b in receiver.bodies()}
    received = bodies["false_187443017203787@lid_3A5F0E1D2C3B4A596877"]
    assert received["chat"] == chat(received["chat"]["chat_id"], "Dana", "+79444444444", new=True)
    assert received["message"]["sender"] == {"full_name": "Dana", "phone": "+79444444444"}
    answer = bodies["true_187443017203787@lid_3EB0E1A2B3C4D5E6F708"]
    assert answer["chat"]["chat_id"] == received["chat"]["chat_id"]
    assert answer["message"]["direction"] == "sent"
    assert answer["message"]["recipient"] == {"full_name": "", "phone": "+79444444444"}
    member = bodies["false_120363025439817642@g.us_3A6E1F2D3C4B5A697887_201234567890123@lid"]
    assert member["message"]["sender"] == {"full_name": "Oleg", "phone": "+79555555555"}


def test_waha_media_has_its_real_type(service: Service, receiver: Receiver) -> None:
    sender = setup(service, receiver, "waha")
    for name in ("media_caption", "media_no_caption", "noweb_voice", "gows_sticker"):
        sender.deliver(name, stored=1)
    assert attachment_types(service) == {
        "false_79111111111@c.us_3EB0D1D2D3D4D5D6D7D8": "image",  # WEBJS _data.type image
        "false_79111111111@c.us_3EB0E1E2E3E4E5E6E7E8": "voice",  # WEBJS _data.type ptt
        "false_79111111111@c.us_3A7F2A3B4C5D6E7F8091": "voice",  # NOWEB audioMessage.ptt
        "false_79111111111@c.us_3A80B3C4D5E6F7081920": "sticker",  # GOWS stickerMessage
    }


def test_evolution_api_sends_arrive_once_as_sent_messages(
    service: Service, receiver: Receiver
) -> None:
    evolution = setup(service, receiver, "evolution")
    evolution.deliver("text_received", stored=1)
    evolution.deliver("group_received", stored=1)
    for name in ("send_message", "send_message_group"):  # "Webhook by events" URL
        answer = evolution.post(fixture("evolution", name), path=evolution.path + "/send-message")
        assert answer.json() == {"stored": 1, "duplicates": 0, "ignored": 0, "rejected": 0}
        evolution.deliver(name, duplicates=1)  # the same at the plain URL: once
    wait_for(lambda: len(receiver.requests) == 4, what="four deliveries")
    bodies = {b["message"]["message_id"]: b for b in receiver.bodies()}
    assert len(bodies) == 4
    business = {"full_name": "Olive Owner", "phone": "+558196349077"}
    sent = bodies["3EB0F1E2D3C4B5A69788"]
    assert sent["chat"] == {**bodies["3EB0A0C1D2E3F4A5B6C7"]["chat"], "is_new_chat": False}
    assert sent["message"]["direction"] == "sent"
    assert sent["message"]["sender"] == business
    assert sent["message"]["recipient"] == {"full_name": "", "phone": "+558197088404"}
    assert sent["message"]["text"] == "Seu pedido saiu para entrega 🚚"
    to_group = bodies["3EB0A9B8C7D6E5F40312"]
    assert to_group["chat"]["chat_id"] == bodies["3EB0B1B2B3B4B5B6B7B8"]["chat"]["chat_id"]
    assert (to_group["message"]["direction"], to_group["message"]["sender"]) == ("sent", business)
    assert chats_stored(service) == 2


REFUSALS = ["bad signature", "no signature", "unknown key", "not JSON"]


@pytest.mark.parametrize("kind", ["whatsapp_cloud", "waha", "evolution"])
def test_refused_requests_store_nothing(service: Service, receiver: Receiver, kind: str) -> None:
    sender = setup(service, receiver, kind)
    body = fixture(kind, "text_received")
    forged = body.replace(b"text_received", b"x") + b" "
    wrong_key = body.replace(EVOLUTION_KEY.encode(), b"0" * 32)
    tries: dict[str, tuple[Callable[[], httpx.Response], int]] = {
        "bad signature": (lambda: sender.post(wrong_key, sender.signature(forged)), 401),
        "no signature": (lambda: sender.post(wrong_key, {}), 401),
        "unknown key": (lambda: sender.post(body, path="/in/" + "x" * 32), 404),
        # Evolution's key is in the body: one without it is refused before it is parsed.
        "not JSON": (lambda: sender.post(b"<xml/>"), 401 if kind == "evolution" else 400),
    }
    for name, (send, expected) in tries.items():
        answer = send()
        assert answer.status_code == expected, (name, answer.text)
        service.clock.advance(1)  # a source logs one refusal a second
    assert stored_messages(service) == 0
    assert sender.counts() == {"stored": 0, "duplicates": 0, "ignored": 0, "rejected": 0}
    outcomes = [(r["status_code"], r["outcome"]) for r in sender.log()]
    not_json = (401, "unauthorized") if kind == "evolution" else (400, "not_json")
    assert outcomes == [not_json, (401, "unauthorized"), (401, "unauthorized")]
    # The same message, signed, is stored once; the sender's retry is a duplicate.
    sender.deliver("text_received", stored=1)
    sender.deliver("text_received", duplicates=1)
    wait_for(lambda: receiver.requests, what="the delivery")
    assert sender.counts() == {"stored": 1, "duplicates": 1, "ignored": 0, "rejected": 0}
    Sender(sender.team, kind).deliver("text_received", duplicates=1)  # another source, same id
    sender.team.webhook(receiver.url)  # a barrier: a second webhook gets the next message
    sender.team.post("/messages", event("barrier", account=receiver_account(sender)))
    wait_for(lambda: len(receiver.requests) == 3, what="the barrier")
    ids = sorted(b["message"]["message_id"] for b in receiver.bodies())
    assert ids.count("barrier") == 2 and len(ids) == 3  # the fixture's message went out once


def receiver_account(sender: Sender) -> str:
    with sender.team.service.rt.transaction() as session:
        return str(session.scalars(select(WhatsappAccount.phone)).first())


def test_meta_handshake_and_the_log_masks_secrets(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    cloud = Sender(team, "whatsapp_cloud")
    token = cloud.source["secrets"]["verify_token"]
    http = service.http
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": token}
    answer = http.get(cloud.path, params=query)
    assert (answer.status_code, answer.text) == (200, "1158201444")
    assert answer.headers["content-type"].startswith("text/plain")
    assert http.get(cloud.path, params={**query, "hub.verify_token": "nope"}).status_code == 403
    assert http.get("/in/unknown", params=query).status_code == 404
    evolution = Sender(team, "evolution")
    assert http.get(evolution.path).status_code == 405
    evolution.deliver("text_received", stored=1)
    cloud.post(b"{}", {"Authorization": "Bearer hunter2", "X-Hub-Signature-256": "sha256=00"})
    logged = json.dumps([*cloud.log(), *evolution.log()])
    for secret in (token, EVOLUTION_KEY, APP_SECRET, "hunter2"):
        assert secret not in logged
    assert [r["outcome"] for r in cloud.log()] == ["unauthorized", "refused", "verified"]
    assert "hub.challenge=1158201444" in cloud.log()[-1]["body"]
    assert '"apikey": "••••••"' in evolution.log()[0]["body"]


def test_refused_messages_are_counted_not_retried_forever(
    service: Service, receiver: Receiver
) -> None:
    sender = setup(service, receiver, "whatsapp_cloud")
    batch = json.loads(fixture("whatsapp_cloud", "batch"))
    messages = batch["entry"][0]["changes"][0]["value"]["messages"]
    messages[0]["text"]["body"] = "x" * 65537  # over the cap
    messages[1]["id"] = "i" * 201
    messages.append({**messages[1], "id": "wamid.nul", "text": {"body": "a\x00b"}})
    messages.append({**messages[1], "id": "wamid.when", "timestamp": "1e30"})
    messages.append({**messages[1], "id": "wamid.ok"})
    answer = sender.post(json.dumps(batch).encode())
    assert answer.json() == {"stored": 2, "duplicates": 0, "ignored": 1, "rejected": 4}
    detail = sender.log()[0]["detail"]
    assert "text: Value should have at most 65536 items" in detail
    assert "message_id: String should have at most 200 characters" in detail
    assert "'wamid.nul': text: Value error, must not contain a NUL character" in detail
    assert "'wamid.when': no valid timestamp" in detail
    wait_for(lambda: len(receiver.requests) == 2, what="the two good messages")


ABSURD: list[Any] = [
    [],
    "text",
    12,
    None,
    {"object": "whatsapp_business_account", "entry": "nope"},
    {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]},
    {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"display_phone_number": ["x"]},
                            "contacts": [{"wa_id": {}, "profile": 3}],
                            "messages": [
                                {"id": {"a": 1}, "timestamp": 10**30, "type": "text"},
                                {"from": 1, "id": "m", "timestamp": "x", "type": "image"},
                                {"from": "123456", "id": 7, "timestamp": 5, "type": "text"},
                                {"type": ["text"], "text": 5},
                            ],
                            "statuses": "all",
                        },
                    }
                ]
            }
        ],
    },
    {"event": "message.any", "payload": {"fromMe": "yes", "from": 5, "_data": [1], "vCards": 3}},
    {"event": "message.any", "me": "x", "payload": {"from": "1@c.us", "body": "hi", "id": 1}},
    {"event": "messages.upsert", "data": [1, {"key": "x", "message": {"imageMessage": 5}}]},
    {"event": "messages.upsert", "data": {"key": {"remoteJid": "1@lid"}, "message": []}},
]


@pytest.mark.parametrize("kind", ["whatsapp_cloud", "waha", "evolution"])
def test_absurd_bodies_never_cause_a_500(service: Service, kind: str) -> None:
    sender = Sender(service.workspace(), kind)
    raw_bodies = [json.dumps(b).encode() for b in ABSURD]
    raw_bodies += [b"[" * 100000, b'{"n": ' + b"9" * 5000 + b"}", b"\xff\xfe", b'"\\ud800"']
    raw_bodies.append(b'{"event": 1e400, "entry": [{"changes": [{"value": -1e400}]}]}')
    for raw in raw_bodies:
        body, allowed = raw, {200, 400}
        if kind == "evolution":  # only an object can carry the apikey
            if raw.startswith(b"{"):
                body = raw[:-1] + f', "apikey": "{EVOLUTION_KEY}"}}'.encode()
            else:
                allowed.add(401)
        answer = sender.post(body)
        assert answer.status_code in allowed, (raw[:80], answer.status_code, answer.text)
    assert stored_messages(service) == 0


def team_on_its_own_url(start_service: Callable[..., Service], receiver: Receiver) -> Workspace:
    """A team whose service's public URL is its real address, so Send sample reaches it,
    with a webhook to ``receiver``."""
    port = free_port()
    service = start_service(port=port, public_base_url=f"http://127.0.0.1:{port}")
    team = service.workspace()
    team.webhook(receiver.url)
    return team


def test_send_sample_posts_a_signed_event_to_the_public_url(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    team = team_on_its_own_url(start_service, receiver)
    for kind in ("whatsapp_cloud", "waha", "evolution"):
        sender = Sender(team, kind)
        result = team.post(f"/sources/{sender.source['id']}/sample", {}).json()
        assert (result["success"], result["status"]) == (True, 200), result
        assert json.loads(result["body"])["stored"] == 1
        assert sender.counts()["stored"] == 1
    wait_for(lambda: len(receiver.requests) == 3, what="three samples")
    for body in receiver.bodies():
        assert body["message"]["message_id"].startswith("test_")
        assert body["message"]["text"] == "this is a text message"
        assert body["chat"]["full_name"] == "test user name"
        assert body["whatsapp_account"]["phone"] == "+16505551111"
    assert len({b["chat"]["chat_id"] for b in receiver.bodies()}) == 1


def test_source_settings_are_checked_and_scoped(service: Service, receiver: Receiver) -> None:
    team = service.workspace()

    def refused(body: dict[str, Any], method: str = "POST", path: str = "") -> list[Any]:
        answer = team.request(method, "/sources" + path, json=body)
        assert answer.status_code == 422, answer.text
        return list(answer.json()["detail"][0]["loc"])

    assert refused({"kind": "telegram", "name": "x"}) == ["body", "kind"]
    assert refused({"kind": "whatsapp_cloud", "name": "x"}) == ["body", "secrets"]
    assert refused({"kind": "waha", "name": "x", "secrets": {"api_key": "k" * 8}}) == [
        "body",
        "secrets",
    ]
    short = {"kind": "whatsapp_cloud", "name": "x", "secrets": {"app_secret": "1234567"}}
    assert refused(short) == ["body", "secrets", "app_secret"]
    assert refused({"kind": "waha", "name": "x", "secrets": {"hmac_key": "a b"}})[:3] == [
        "body",
        "secrets",
        "hmac_key",
    ]
    assert refused({"kind": "waha", "name": "", "secrets": {}}) == ["body", "name"]
    unknown = {"kind": "waha", "name": "x", "teammate_email": "nobody@acme.test"}
    assert refused(unknown) == ["body", "teammate_email"]
    assert team.get("/sources").json() == []

    team.post("/teammates", {"full_name": "Sami Sales", "email": "sami@acme.test"})
    waha = Sender(team, "waha", teammate_email="sami@acme.test")
    assert waha.source["teammate_email"] == "sami@acme.test"
    assert len(waha.source["secrets"]["hmac_key"]) >= 32
    assert waha.source["url"] == f"{PUBLIC_BASE}/in/{waha.source['url'].rsplit('/', 1)[1]}"
    path = f"/{waha.source['id']}"
    assert refused({"secrets": {"hmac_key": "x y"}}, "PATCH", path)[:2] == ["body", "secrets"]
    assert refused({"secrets": {"hmac_key": "short"}}, "PATCH", path) == [
        "body",
        "secrets",
        "hmac_key",
    ]
    renewed = team.patch(f"/sources{path}", {"name": "Sales line", "secrets": {"hmac_key": None}})
    assert renewed.json()["name"] == "Sales line"
    assert renewed.json()["secrets"]["hmac_key"] != waha.source["secrets"]["hmac_key"]
    waha.source = renewed.json()
    team.webhook(receiver.url)
    waha.deliver("text_received", stored=1)
    body = wait_for(receiver.bodies, what="the delivery")[0]
    assert body["whatsapp_account"] == {
        "full_name": "Sami Sales",
        "email": "sami@acme.test",
        "phone": "+79222222222",
    }
    assert body["message"]["recipient"]["full_name"] == "Sami Sales"

    cloud = Sender(team, "whatsapp_cloud")
    assert refused({"secrets": {"app_secret": None}}, "PATCH", f"/{cloud.source['id']}") == [
        "body",
        "secrets",
    ]
    other = service.workspace("Other", "boss@other.test")
    assert other.get(f"/sources/{cloud.source['id']}").status_code == 404
    assert other.get(f"/sources/{cloud.source['id']}/requests").status_code == 404
    assert other.request("DELETE", f"/sources/{cloud.source['id']}").status_code == 404
    assert team.request("DELETE", f"/sources/{cloud.source['id']}").status_code == 204
    assert team.get(f"/sources/{cloud.source['id']}").status_code == 404
    assert cloud.post(fixture("whatsapp_cloud", "text_received")).status_code == 404
    assert [s["name"] for s in team.get("/sources").json()] == ["Sales line"]
