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

from chathooks.sources.answers import (
    answer,
    base,
    digits,
    excerpt,
    json_call,
    not_the_sender,
    segment,
    sending,
    transient,
)
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
from chathooks.sources.protocol import (
    JSON,
    Call,
    CheckAnswer,
    RawRequest,
    Reading,
    Reply,
    Secret,
    SendAnswer,
    posts_only,
)
from chathooks.sources.screening import ApiKeyScreen, Screen

NAME = "evolution"
LABEL = "Evolution API"
SECRETS = (
    Secret(
        "api_key",
        "Instance API key",
        generated=False,
        hint="The instance's API key (token): Evolution puts it in every webhook as apikey, "
        "and takes it as apikey when chathooks sends.",
    ),
    sending(
        "api_url",
        "Evolution API URL",
        role="address",
        hint="To send replies: the address of Evolution's API as chathooks reaches it "
        "(https://evolution.example.com). Leave it empty to only receive.",
    ),
    sending(
        "instance",
        "Instance name",
        role="name",
        hint="To send replies: the instance's name in Evolution (as in its webhooks' instance).",
    ),
)
SEND_SECRETS = ("api_url", "api_key", "instance")
PER_SECOND = 1.0
"""Evolution drives a phone's WhatsApp: a bulk workflow faster than this risks a ban."""
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


def send_call(secrets: Mapping[str, str], reply: Reply) -> Call:
    """``POST /message/sendText/{instance}``, v2's body (``{"number", "text"}``; v1 took
    ``textMessage.text``, which v2 refuses): a group or hidden ``@lid`` chat by its id,
    a person by the phone's digits (Evolution makes the JID itself)."""
    chat = reply.chat_external_id
    number = chat if is_group(chat) or chat.endswith("@lid") else digits(reply.phone or chat)
    payload = {"number": number, "text": reply.text}
    return json_call("POST", _url(secrets, "message/sendText"), _key(secrets), payload)


def read_send(status: int, body: str) -> SendAnswer:
    """201 with the sent message (``key.id``, the id its ``send.message`` event carries).
    Evolution answers 400 for every failure of its WhatsApp connection too: a closed or
    timed-out connection is tried again, a number not on WhatsApp is not."""
    found = answer(body)
    if 200 <= status < 300:
        return SendAnswer("sent", message_id=text(obj(found.get("key")).get("id")))
    words = _problem(status, found, body)
    if transient(status) or (status == 400 and any(w in words for w in PASSING)):
        return SendAnswer("retry", error=words)
    return SendAnswer("failed", error=words)


PASSING = ("Connection Closed", "Timed Out", "Connection Terminated")
"""Baileys' errors for a connection that is down for now: Evolution reconnects by itself."""


def check_call(secrets: Mapping[str, str]) -> Call:
    """``GET /instance/connectionState/{instance}``: the cheapest call that needs the key."""
    return json_call("GET", _url(secrets, "instance/connectionState"), _key(secrets))


def _url(secrets: Mapping[str, str], action: str) -> str:
    """An instance's endpoint: ``{api_url}/{action}/{instance}``."""
    return f"{base(secrets.get('api_url', ''))}/{action}/{segment(secrets.get('instance', ''))}"


def _key(secrets: Mapping[str, str]) -> dict[str, str]:
    return {"apikey": secrets.get("api_key", "")}


STATES = {
    "connecting": "is connecting to WhatsApp: wait a moment, or scan its QR code in "
    "Evolution's manager, then check again",
    "close": "is disconnected from WhatsApp: connect it in Evolution's manager (scan the "
    "QR code with the phone's WhatsApp › Linked devices)",
}


def read_check(status: int, body: str) -> CheckAnswer:
    found = answer(body)
    if status != 200:
        return CheckAnswer(False, _problem(status, found, body))
    instance = obj(found.get("instance"))
    if not instance:
        return CheckAnswer(False, not_the_sender(LABEL, "Evolution API URL", body))
    label = f"Instance {text(instance.get('instanceName'))!r}"
    state = text(instance.get("state"))
    if state == "open":
        return CheckAnswer(True, f"{label} is connected to WhatsApp: chathooks can send.")
    if state in STATES:
        return CheckAnswer(False, f"{label} {STATES[state]}.")
    return CheckAnswer(False, f"{label} is not running in Evolution: restart it in its manager.")


def _problem(status: int, found: dict[str, Any], body: str) -> str:
    """Evolution's error ``{status, error, response: {message}}`` in words; ``message`` is a
    string, a list of strings, or (a number not on WhatsApp) a list of ``{jid, exists,
    number}``."""
    if status == 401:
        return (
            "Evolution refused the API key (401 Unauthorized): save the instance's API key "
            "(or Evolution's global AUTHENTICATION_API_KEY) here."
        )
    message = obj(found.get("response")).get("message")
    parts = message if isinstance(message, list) else [message]
    said = []
    for part in parts:
        if isinstance(part, dict) and part.get("exists") is False:
            said.append(f"{text(part.get('number')) or 'the number'} is not on WhatsApp")
        elif isinstance(part, str) and part:
            said.append(part)
    reason = "; ".join(said) or text(found.get("error")) or excerpt(body) or "no reason given"
    return f"Evolution answered {status}: {reason}."
