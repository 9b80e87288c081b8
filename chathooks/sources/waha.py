"""WAHA, the self-hosted WhatsApp HTTP API: a session's webhook.

Verification: ``X-Webhook-Hmac``, the hex HMAC-SHA512 of the raw body with the HMAC key
chathooks generates (WAHA's webhook ``hmac.key``). Events ``message.any`` (both directions)
and ``message`` (received; the same message again is a duplicate) carry one message in
``payload``; every other event is ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from chathooks.sources import RawRequest, Reading, Secret, posts_only
from chathooks.sources.fields import (
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
)
SETUP = (
    "In WAHA's Dashboard open the session's configuration (or send "
    "`POST /api/sessions` / `PUT /api/sessions/{{session}}`) and add a webhook:",
    "URL: `{url}`",
    "Events: `message.any` (it carries both received and sent messages).",
    "HMAC key: `{hmac_key}`",
    "Save; WAHA signs every request with it (X-Webhook-Hmac, SHA-512).",
)
MESSAGE_EVENTS = ("message", "message.any")
NOT_MESSAGES = ("revoked", "protocol", "e2e_notification", "notification_template", "gp2")
"""WEBJS ``_data.type`` values of events that are notices, not messages."""

handshake = posts_only


def signature(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha512).hexdigest()


def screen(headers: Mapping[str, str], secrets: Mapping[str, str]) -> Screen:
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
    if event.get("event") not in MESSAGE_EVENTS or raw.get("type") in NOT_MESSAGES:
        reading.ignored += 1
        return reading
    from_me = message.get("fromMe") is True
    chat = chat_id(message.get("to") if from_me else message.get("from"))
    content = _content(message)
    if not is_chat(chat) or content is None:
        reading.ignored += 1
        return reading
    when = unix_time(message.get("timestamp"))
    account = phone(obj(event.get("me")).get("id"))
    if when is None:
        reading.rejected.append(f"message {text(message.get('id'))!r}: no valid timestamp")
        return reading
    contact = chat_id(message.get("participant") or message.get("author"))
    reading.messages.append(
        chat_message(
            account=account,
            chat=chat,
            from_me=from_me,
            contact=contact if is_group(chat) else chat,
            contact_name="" if from_me else name(raw.get("notifyName") or raw.get("pushName")),
            message_id=message.get("id"),
            timestamp=when,
            content=content,
        )
    )
    return reading


def _content(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    body = text(message.get("body"))
    if message.get("hasMedia") is True:
        media = obj(message.get("media"))
        attachment = {
            "type": "media",
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


def sample(secrets: Mapping[str, str], message_id: str, now: datetime) -> RawRequest:
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
