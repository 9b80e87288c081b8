"""Evolution API: an instance's webhook (Baileys underneath).

Verification: the body's ``apikey`` (the instance's API key, which Evolution adds to every
webhook) must equal the source's. Event ``messages.upsert`` carries one message in
``data`` (``key.fromMe`` decides the direction); ``send.message`` carries, in the same
shape, a message sent through Evolution's own API, which Evolution never emits as
``messages.upsert`` (its Baileys connection does not echo its own sends). Every other event
is ignored. With "Webhook by events" Evolution appends the event's name to the URL
(``…/messages-upsert``, ``…/send-message``), which is accepted too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chathooks.sources.fields import (
    MESSAGE_WRAPPERS,
    chat_id,
    chat_message,
    clipped,
    is_chat,
    is_group,
    name,
    obj,
    objs,
    phone,
    text,
    unix_time,
)
from chathooks.sources.protocol import JSON, RawRequest, Reading, Secret, posts_only
from chathooks.sources.screening import ApiKeyScreen, Screen

NAME = "evolution"
LABEL = "Evolution API"
SECRETS = (
    Secret(
        "api_key",
        "Instance API key",
        generated=False,
        hint="The instance's API key (token): Evolution puts it in every webhook as apikey.",
    ),
)
SETUP = (
    "In Evolution's manager open the instance › Events › Webhook (or send "
    "`POST /webhook/set/{{instance}}`) and enable it.",
    "URL: `{url}`",
    "Events: `MESSAGES_UPSERT` (received messages and those sent from the phone) and "
    "`SEND_MESSAGE` (those sent through Evolution's API). Leave Webhook Base64 off.",
    "Evolution must include the instance's API key in webhooks: keep "
    "`AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES=true` in its environment.",
)
WIRE = JSON

MESSAGE_EVENTS = ("messages.upsert", "send.message")
MEDIA = (
    "imageMessage",
    "videoMessage",
    "audioMessage",
    "documentMessage",
    "stickerMessage",
    "ptvMessage",
)
SHARED = ("locationMessage", "liveLocationMessage", "contactMessage", "contactsArrayMessage")
SENT_BY_ME_NAME = "Você"
"""The ``pushName`` Evolution invents for the instance's own messages."""

handshake = posts_only


def screen(headers: Mapping[str, str], secrets: Mapping[str, str], *, url: str) -> Screen:
    """``url`` is not signed by this sender."""
    return ApiKeyScreen(secrets.get("api_key", ""))


def read(body: Any) -> Reading:
    reading = Reading()
    event = obj(body)
    name_of_event = text(event.get("event")).lower().replace("_", ".")
    if name_of_event not in MESSAGE_EVENTS:
        reading.ignored += 1
        return reading
    data = event.get("data")
    account = phone(event.get("sender"))
    sent_by_api = name_of_event == "send.message"
    for item in objs(data) if isinstance(data, list) else [obj(data)]:
        _message(item, account, reading, sent_by_api=sent_by_api)
    return reading


def _message(data: dict[str, Any], account: str, reading: Reading, *, sent_by_api: bool) -> None:
    key = obj(data.get("key"))
    chat = chat_id(_jid(key, "remoteJid"))
    content = _content(obj(data.get("message")))
    if not is_chat(chat) or content is None:
        reading.ignored += 1
        return
    when = unix_time(data.get("messageTimestamp"))
    if when is None:
        reading.rejected.append(f"message {text(key.get('id'))!r}: no valid timestamp")
        return
    from_me = sent_by_api or key.get("fromMe") is True
    contact = chat_id(_jid(key, "participant") or data.get("participant"))
    if not is_group(chat):
        contact = chat
    pushed = name(data.get("pushName"))
    own = from_me or pushed in (SENT_BY_ME_NAME, contact.split("@")[0])
    reading.messages.append(
        chat_message(
            account=account,
            chat=chat,
            from_me=from_me,
            contact=contact,
            contact_name="" if own else pushed,
            message_id=key.get("id"),
            timestamp=when,
            content=content,
        )
    )


def _jid(key: dict[str, Any], field: str) -> str:
    """A chat or participant id; for a hidden ``@lid`` id, the phone id Evolution adds
    beside it (``remoteJidAlt``, ``participantAlt``) when there is one."""
    jid = text(key.get(field))
    alternative = text(key.get(f"{field}Alt"))
    return alternative if jid.endswith("@lid") and phone(alternative) else jid


def _content(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    for wrapper in MESSAGE_WRAPPERS:
        inner = obj(obj(message.get(wrapper)).get("message"))
        if inner:
            message = {**inner, **{k: v for k, v in message.items() if k != wrapper}}
    if isinstance(message.get("conversation"), str):
        return text(message.get("conversation")), []
    extended = obj(message.get("extendedTextMessage"))
    if extended:
        return text(extended.get("text")), []
    for kind in MEDIA:
        part = obj(message.get(kind))
        if part:
            attachment = {
                "type": kind.removesuffix("Message"),
                "mime_type": part.get("mimetype"),
                "filename": part.get("fileName"),
                "url": message.get("mediaUrl") or part.get("url"),
            }
            return text(part.get("caption")), [clipped(attachment)]
    for kind in SHARED:
        if obj(message.get(kind)):
            return "", [{"type": kind.removesuffix("Message")}]
    return None


def sample(secrets: Mapping[str, str], message_id: str, now: datetime, url: str) -> RawRequest:
    """A ``messages.upsert`` event as Evolution sends it for a received text."""
    body = json.dumps(
        {
            "event": "messages.upsert",
            "instance": "chathooks-sample",
            "data": {
                "key": {
                    "remoteJid": "16315551181@s.whatsapp.net",
                    "fromMe": False,
                    "id": message_id,
                },
                "pushName": "test user name",
                "status": "DELIVERY_ACK",
                "message": {"conversation": "this is a text message"},
                "messageType": "conversation",
                "messageTimestamp": int(now.timestamp()),
                "source": "android",
            },
            "date_time": now.isoformat(),
            "sender": "16505551111@s.whatsapp.net",
            "apikey": secrets.get("api_key", ""),
        },
        separators=(",", ":"),
    ).encode()
    return RawRequest({"content-type": "application/json"}, body)
