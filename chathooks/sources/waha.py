"""WAHA, the self-hosted WhatsApp HTTP API: a session's webhook.

Verification: ``X-Webhook-Hmac``, the hex HMAC-SHA512 of the raw body with the HMAC key
chathooks generates (WAHA's webhook ``hmac.key``). Events ``message.any`` (both directions)
and ``message`` (received; the same message again is a duplicate) carry one message in
``payload``; a ``message.ack`` that says ``ERROR`` fails a message sent through WAHA's API
(a send report); every other event is ignored.

The engines tell the business's own messages apart: WEBJS writes the business in ``from``
and the chat in ``to``; NOWEB and GOWS keep the chat in ``from`` and leave ``to`` out,
``null`` or (GOWS, in groups) the business itself. So the chat is the group among
``from``/``to``, else whichever is not the business (``me.id``, ``me.lid``), else the
engine's own chat id in ``_data``. ``_data`` is the engine's message: WhatsApp Web's
(WEBJS), Baileys' ``key``/``message`` (NOWEB), whatsmeow's ``Info``/``Message`` (GOWS).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chathooks.sources.answers import (
    answer,
    base,
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
    SendReport,
    posts_only,
)
from chathooks.sources.screening import HmacScreen, Screen

NAME = "waha"
LABEL = "WAHA"
SECRETS = (
    Secret(
        "hmac_key",
        "HMAC key",
        generated=True,
        hint="Paste it as the webhook's HMAC key (hmac.key) in WAHA.",
    ),
    sending(
        "api_url",
        "API base URL",
        role="address",
        hint="Where chathooks reaches WAHA to send replies, e.g. https://waha.example.com "
        "(leave empty to only receive).",
    ),
    sending(
        "x_api_key",
        "X-Api-Key",
        role="credential",
        hint="WAHA's WAHA_API_KEY (WHATSAPP_API_KEY in older versions), sent as X-Api-Key "
        "(empty if WAHA has none).",
    ),
    sending(
        "session",
        "Session name",
        role="name",
        hint="The WAHA session that sends; leave empty for WAHA's `default` session.",
    ),
)
SEND_SECRETS = ("api_url",)
"""What a WAHA source needs to send (``x_api_key`` only if WAHA is set up with one; no
``session``: WAHA's ``default``, the only one WAHA Core runs)."""
DEFAULT_SESSION = "default"
PER_SECOND = 1.0
SETUP = (
    "In WAHA's Dashboard open the session's configuration (or send "
    "`POST /api/sessions` / `PUT /api/sessions/{{session}}`) and add a webhook:",
    "URL: `{url}`",
    "Events: `message.any` (it carries both received and sent messages); add "
    "`message.ack` if chathooks sends through this WAHA, to learn of sends that fail later.",
    "HMAC key: `{hmac_key}`",
    "Save; WAHA signs every request with it (X-Webhook-Hmac, SHA-512).",
)
WIRE = JSON
MESSAGE_EVENTS = ("message", "message.any")
ACK_EVENT = "message.ack"
ACK_ERROR = -1
ACK_ERROR_WORDS = (
    "WAHA reports the message failed (ack ERROR): WhatsApp did not take it. Check the "
    "session in WAHA's Dashboard and the number, then retry."
)
NOT_MESSAGES = ("revoked", "protocol", "e2e_notification", "notification_template", "gp2")
"""WEBJS ``_data.type`` values of events that are notices, not messages."""
WEBJS_MEDIA = {
    "image": "image",
    "video": "video",
    "audio": "audio",
    "ptt": "voice",
    "document": "document",
    "sticker": "sticker",
}
"""WEBJS ``_data.type`` of a message with a file, and the attachment's type."""
PROTO_MEDIA = {
    "imageMessage": "image",
    "videoMessage": "video",
    "ptvMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}
"""The part of a WhatsApp protocol message (NOWEB, GOWS) that holds a file; an
``audioMessage`` with ``ptt`` is a voice note."""
Content = tuple[str, list[dict[str, Any]]]

handshake = posts_only


def signature(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


def screen(headers: Mapping[str, str], secrets: Mapping[str, str], *, url: str) -> Screen:
    """``url`` is not signed by this sender."""
    return HmacScreen(
        headers,
        header="x-webhook-hmac",
        algorithm_header="x-webhook-hmac-algorithm",
        algorithm="sha512",
        key=secrets.get("hmac_key", ""),
    )


def read(body: Any) -> Reading:
    reading = Reading()
    event = obj(body)
    message = obj(event.get("payload"))
    raw = obj(message.get("_data"))
    if event.get("event") == ACK_EVENT:
        reading.ignored += 1
        reading.reports.extend(_failed_send(message))
        return reading
    if event.get("event") not in MESSAGE_EVENTS or raw.get("type") in NOT_MESSAGES:
        reading.ignored += 1
        return reading
    me = obj(event.get("me"))
    from_me = message.get("fromMe") is True
    chat = _chat(message, raw, from_me, own={chat_id(me.get("id")), chat_id(me.get("lid"))})
    content = _content(message, raw)
    if not is_chat(chat) or content is None:
        reading.ignored += 1
        return reading
    when = unix_time(message.get("timestamp"))
    if when is None:
        reading.rejected.append(f"message {text(message.get('id'))!r}: no valid timestamp")
        return reading
    reading.messages.append(
        chat_message(
            account=phone(me.get("id")),
            chat=chat,
            from_me=from_me,
            contact=_participant(message, raw) if is_group(chat) else chat,
            contact_name="" if from_me else _pushed_name(raw),
            message_id=message.get("id"),
            timestamp=when,
            content=content,
        )
    )
    return reading


def _failed_send(ack: dict[str, Any]) -> list[SendReport]:
    """A ``message.ack`` of the business's own message that says ``ERROR`` (``ack`` -1):
    WhatsApp did not take a message WAHA had accepted; any other ack changes nothing."""
    failed = ack.get("ack") == ACK_ERROR or ack.get("ackName") == "ERROR"
    if ack.get("fromMe") is not True or not failed or not text(ack.get("id")):
        return []
    return [SendReport(text(ack["id"]), failed=True, error=ACK_ERROR_WORDS)]


def _chat(message: dict[str, Any], raw: dict[str, Any], from_me: bool, *, own: set[str]) -> str:
    """The chat: a group among ``from``/``to``, else the one that is not the business
    (``to`` first for the business's own message, as WEBJS writes it), else the engine's
    chat id; a hidden ``@lid`` id becomes the phone id the engine gives beside it."""
    ends = [chat_id(message.get(end)) for end in (("to", "from") if from_me else ("from", "to"))]
    group = next((jid for jid in ends if is_group(jid)), "")
    if group:
        return group
    others = [jid for jid in ends if jid and jid not in own]
    info, key = obj(raw.get("Info")), obj(raw.get("key"))
    chat = others[0] if others else chat_id(key.get("remoteJid") or info.get("Chat"))
    alternative = key.get("remoteJidAlt") or info.get("RecipientAlt" if from_me else "SenderAlt")
    return _with_phone(chat, alternative)


def _participant(message: dict[str, Any], raw: dict[str, Any]) -> str:
    """Who wrote in a group (NOWEB: ``key.participantAlt``, GOWS: ``Info.SenderAlt`` hold
    the phone id beside a hidden one)."""
    participant = chat_id(message.get("participant") or message.get("author"))
    alternative = obj(raw.get("key")).get("participantAlt") or obj(raw.get("Info")).get("SenderAlt")
    return _with_phone(participant, alternative)


def _with_phone(jid: str, alternative: Any) -> str:
    return chat_id(alternative) if jid.endswith("@lid") and phone(alternative) else jid


def _pushed_name(raw: dict[str, Any]) -> str:
    """The sender's WhatsApp name: WEBJS ``notifyName``, NOWEB ``pushName``, GOWS
    ``Info.PushName``."""
    pushed = raw.get("notifyName") or raw.get("pushName") or obj(raw.get("Info")).get("PushName")
    return name(pushed)


def _content(message: dict[str, Any], raw: dict[str, Any]) -> Content | None:
    body = text(message.get("body"))
    if message.get("hasMedia") is True:
        media = obj(message.get("media"))
        attachment = {
            "type": _media_type(raw, text(media.get("mimetype"))),
            "mime_type": media.get("mimetype"),
            "filename": media.get("filename"),
            "url": media.get("url") or message.get("mediaUrl"),
        }
        return body, [clipped(attachment)]
    if obj(message.get("location")):
        return "", [{"type": "location"}]
    cards = message.get("vCards")
    if isinstance(cards, list) and any(isinstance(card, str) and card for card in cards):
        return "", [{"type": "contacts"}]
    return (body, []) if body else None


def _media_type(raw: dict[str, Any], mimetype: str) -> str:
    """image, video, audio, voice, document or sticker: from the engine's message (WEBJS
    ``type``; the ``…Message`` part of NOWEB's ``message`` or GOWS' ``Message``), else
    from the mimetype."""
    webjs_type = text(raw.get("type"))
    if webjs_type in WEBJS_MEDIA:
        return WEBJS_MEDIA[webjs_type]
    content = _unwrapped(obj(raw.get("message")) or obj(raw.get("Message")))
    for part, kind in PROTO_MEDIA.items():
        if part in content:
            voice = part == "audioMessage" and _is_voice(obj(content[part]))
            return "voice" if voice else kind
    major = mimetype.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


def _unwrapped(content: dict[str, Any]) -> dict[str, Any]:
    """The message inside WhatsApp's wrappers (disappearing, view once, captioned file)."""
    for wrapper in MESSAGE_WRAPPERS:
        inner = obj(obj(content.get(wrapper)).get("message"))
        if inner:
            return _unwrapped(inner)
    return content


def _is_voice(audio: dict[str, Any]) -> bool:
    return audio.get("ptt") is True or audio.get("PTT") is True


def sample(secrets: Mapping[str, str], message_id: str, now: datetime, url: str) -> RawRequest:
    """A ``message.any`` event as WAHA sends it for a received text."""
    body = json.dumps(
        {
            "event": "message.any",
            "session": "default",
            "engine": "WEBJS",
            "me": {"id": "16505551111@c.us", "pushName": "chathooks sample"},
            "payload": {
                "id": message_id,
                "timestamp": int(now.timestamp()),
                "from": "16315551181@c.us",
                "fromMe": False,
                "to": "16505551111@c.us",
                "body": "this is a text message",
                "hasMedia": False,
                "ack": 1,
                "_data": {"notifyName": "test user name"},
            },
        },
        separators=(",", ":"),
    ).encode()
    key = secrets.get("hmac_key", "")
    headers = {
        "content-type": "application/json",
        "x-webhook-hmac": signature(key, body),
        "x-webhook-hmac-algorithm": "sha512",
    }
    return RawRequest(headers, body)


def send_call(secrets: Mapping[str, str], reply: Reply) -> Call:
    """WAHA's ``POST /api/sendText``: to the chat's id, or a phone's ``<digits>@c.us``."""
    chat = reply.chat_external_id or reply.phone.removeprefix("+") + "@c.us"
    payload = {"session": _session(secrets), "chatId": chat, "text": reply.text}
    return json_call("POST", _url(secrets, "/api/sendText"), _key(secrets), payload)


def read_send(status: int, body: str) -> SendAnswer:
    """The sent message's id as its ``message.any`` echo carries it (``payload.id``): WEBJS
    answers whatsapp-web.js' message (``id._serialized``), NOWEB Baileys' (``key``, from
    which WAHA builds ``{fromMe}_{chat}_{id}``), GOWS its own (``id``). An error body is
    NestJS': ``message`` (a text or a list), or the session's state (``error``, ``status``)."""
    found = answer(body)
    if 200 <= status < 300:
        return SendAnswer("sent", message_id=_sent_id(found))
    said = f"WAHA answered HTTP {status}: {_reason(found, body)}"
    return SendAnswer("retry" if transient(status) else "failed", error=said)


def check_call(secrets: Mapping[str, str]) -> Call:
    """``GET /api/sessions/{session}``: the session's status, WAHA's cheapest read."""
    return json_call(
        "GET", _url(secrets, f"/api/sessions/{segment(_session(secrets))}"), _key(secrets)
    )


SESSION_STATES = {
    "STOPPED": "start it in WAHA's Dashboard (or POST /api/sessions/{name}/start)",
    "STARTING": "wait a moment, then check again",
    "SCAN_QR_CODE": "open WAHA's Dashboard and scan its QR code with the phone's WhatsApp "
    "› Linked devices",
    "FAILED": "restart it in WAHA's Dashboard; if it fails again, log out and scan the QR "
    "code again",
}
"""What to do for each status but WORKING (WAHA's ``WAHASessionStatus``)."""


def read_check(status: int, body: str) -> CheckAnswer:
    """WORKING can send; any other status says what to do. WAHA's errors are NestJS's
    ``{statusCode, message, error?}``."""
    found = answer(body)
    if status == 401:
        return CheckAnswer(
            False,
            "WAHA refused the API key (401 Unauthorized): save WAHA's WAHA_API_KEY as the "
            "X-Api-Key here.",
        )
    if status == 404:
        return CheckAnswer(
            False, "WAHA has no session with this name (404): check the session name."
        )
    if status != 200:
        said = text(found.get("message")) or excerpt(body) or "no reason given"
        return CheckAnswer(False, f"WAHA answered {status}: {said}.")
    name_of_session = text(found.get("name"))
    state = text(found.get("status"))
    if not name_of_session or not state:
        return CheckAnswer(False, not_the_sender(LABEL, "WAHA API URL", body))
    label = f"Session {name_of_session!r}"
    if state == "WORKING":
        me = obj(found.get("me"))
        who = f" as {phone(me.get('id')) or text(me.get('id'))}" if me.get("id") else ""
        return CheckAnswer(True, f"{label} is WORKING{who}: chathooks can send.")
    what = SESSION_STATES.get(state, "start it in WAHA's Dashboard")
    return CheckAnswer(
        False,
        f"{label} is {state or 'in no known state'}, not WORKING: "
        f"{what.format(name=name_of_session)}.",
    )


def _session(secrets: Mapping[str, str]) -> str:
    return secrets.get("session") or DEFAULT_SESSION


def _url(secrets: Mapping[str, str], path: str) -> str:
    return base(secrets.get("api_url", "")) + path


def _key(secrets: Mapping[str, str]) -> dict[str, str]:
    """WAHA's ``X-Api-Key``, when WAHA is set up with one."""
    key = secrets.get("x_api_key", "")
    return {"x-api-key": key} if key else {}


def _sent_id(answer: dict[str, Any]) -> str:
    own = answer.get("id")
    if isinstance(own, str):
        return own
    serialized = text(obj(own).get("_serialized"))
    if serialized:
        return serialized
    key = obj(answer.get("key"))
    if text(key.get("id")):
        from_me = "true" if key.get("fromMe") is not False else "false"
        return f"{from_me}_{chat_id(key.get('remoteJid'))}_{key['id']}"
    return ""


def _reason(answer: dict[str, Any], body: str) -> str:
    message = answer.get("message")
    if isinstance(message, list):
        message = "; ".join(str(part) for part in message)
    if isinstance(message, str) and message:
        return message[:500]
    if text(answer.get("error")):
        state = text(answer.get("status"))
        return text(answer["error"])[:500] + (f" (session status {state})" if state else "")
    exception = obj(answer.get("exception"))
    if text(exception.get("message")):
        return text(exception["message"])[:500]
    return body.strip()[:500] or "no answer body"
