"""Meta's WhatsApp Business Cloud API: the app's webhook (``whatsapp_business_account``).

Verification: the ``hub.challenge`` handshake with the generated verify token, and
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`` with the app secret.
Each ``entry[].changes[]`` with ``field: messages`` holds received ``messages[]`` (and
``statuses[]``, ignored); ``field: smb_message_echoes`` holds ``message_echoes[]`` that the
business sent from the WhatsApp Business app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from chathooks.sources import Handshake, RawRequest, Reading, Secret
from chathooks.sources.fields import (
    clipped,
    message_event,
    name,
    obj,
    objs,
    phone,
    same_secret,
    text,
    unix_time,
)
from chathooks.sources.screening import HmacScreen, Screen

NAME = "whatsapp_cloud"
LABEL = "WhatsApp Cloud API (Meta)"
SECRETS = (
    Secret(
        "verify_token",
        "Verify token",
        generated=True,
        hint="Paste it as the Verify token in Meta's App Dashboard.",
    ),
    Secret(
        "app_secret",
        "App secret",
        generated=False,
        hint="From Meta's App Dashboard › App settings › Basic › App secret.",
    ),
)
SETUP = (
    "In Meta's App Dashboard open your app's WhatsApp › Configuration and press Edit "
    "next to Webhook.",
    "Callback URL: `{url}`",
    "Verify token: `{verify_token}`, then press Verify and save.",
    "Under Webhook fields subscribe to `messages` (and to `smb_message_echoes` if the "
    "number also uses the WhatsApp Business app, so its sent messages arrive too).",
    "Make sure the App secret saved here is the one in App settings › Basic.",
)

MEDIA = ("image", "video", "audio", "document", "sticker")
"""Message types that carry a file: stored with an attachment, not forwarded."""
SHARED = ("location", "contacts", "order")
"""Other content without text: stored as an attachment describing it."""


def screen(headers: Mapping[str, str], secrets: Mapping[str, str]) -> Screen:
    """The signature is over the raw bytes exactly as sent (Meta escapes non-ASCII)."""
    key = secrets.get("app_secret", "")
    return HmacScreen(
        headers, header="x-hub-signature-256", prefix="sha256=", algorithm="sha256", key=key
    )


def handshake(query: Mapping[str, str], secrets: Mapping[str, str]) -> Handshake:
    """Meta's subscription check: echo ``hub.challenge`` when the token matches."""
    if query.get("hub.mode") == "subscribe" and same_secret(
        query.get("hub.verify_token"), secrets.get("verify_token", "")
    ):
        return Handshake(200, query.get("hub.challenge", ""))
    return Handshake(403, "verify token does not match")


def read(body: Any) -> Reading:
    reading = Reading()
    payload = obj(body)
    if payload.get("object") != "whatsapp_business_account":
        reading.ignored += 1
        return reading
    for entry in objs(payload.get("entry")):
        for change in objs(entry.get("changes")):
            value = obj(change.get("value"))
            field = change.get("field")
            if field == "messages":
                _received(value, reading)
            elif field == "smb_message_echoes":
                _echoes(value, reading)
            else:
                reading.ignored += 1
    return reading


def _received(value: dict[str, Any], reading: Reading) -> None:
    account = phone(obj(value.get("metadata")).get("display_phone_number"))
    contacts = objs(value.get("contacts"))
    names = {text(c.get("wa_id")): name(obj(c.get("profile")).get("name")) for c in contacts}
    only_name = next(iter(names.values())) if len(names) == 1 else ""
    reading.ignored += len(objs(value.get("statuses"))) + len(objs(value.get("errors")))
    for message, content, when in _readable(value.get("messages"), reading):
        sender = text(message.get("from"))
        sender_name = names.get(sender, only_name)
        group = text(message.get("group_id"))
        if not phone(sender):
            reading.rejected.append(f"message {text(message.get('id'))!r}: no sender number")
            continue
        chat = group or f"{phone(sender).lstrip('+')}@c.us"
        reading.messages.append(
            message_event(
                account=account,
                chat=chat,
                group=bool(group),
                chat_name="" if group else sender_name,
                chat_phone=phone(sender),
                message_id=message.get("id"),
                direction="received",
                timestamp=when,
                sender=(sender_name, phone(sender)),
                recipient=("", "" if group else account),
                body=content[0],
                attachments=content[1],
            )
        )


def _echoes(value: dict[str, Any], reading: Reading) -> None:
    account = phone(obj(value.get("metadata")).get("display_phone_number"))
    for message, content, when in _readable(value.get("message_echoes"), reading):
        recipient = phone(message.get("to"))
        if not recipient:
            reading.rejected.append(f"message {text(message.get('id'))!r}: no recipient number")
            continue
        reading.messages.append(
            message_event(
                account=account,
                chat=f"{recipient.lstrip('+')}@c.us",
                group=False,
                chat_name="",
                chat_phone=recipient,
                message_id=message.get("id"),
                direction="sent",
                timestamp=when,
                sender=("", account),
                recipient=("", recipient),
                body=content[0],
                attachments=content[1],
            )
        )


Content = tuple[str, list[dict[str, Any]]]


def _readable(
    messages: Any, reading: Reading
) -> Iterator[tuple[dict[str, Any], Content, datetime]]:
    """The messages to store, with their content and time; the others counted."""
    for message in objs(messages):
        content = _content(message)
        if content is None:
            reading.ignored += 1
            continue
        when = unix_time(message.get("timestamp"))
        if when is None:
            reading.rejected.append(f"message {text(message.get('id'))!r}: no valid timestamp")
            continue
        yield message, content, when


def _content(message: dict[str, Any]) -> Content | None:
    """(text, attachments) of a message, or None for what is not a message to store
    (reactions, system notices, unsupported and unknown types)."""
    kind = text(message.get("type"))
    part = obj(message.get(kind)) if kind else {}
    if kind == "text":
        return text(part.get("body")), []
    if kind == "button":
        return text(part.get("text")), []
    if kind == "interactive":
        reply = obj(part.get("button_reply")) or obj(part.get("list_reply"))
        return (text(reply.get("title")), []) if reply else None
    if kind in MEDIA:
        attachment = {
            "type": kind,
            "id": part.get("id"),
            "mime_type": part.get("mime_type"),
            "filename": part.get("filename"),
            "sha256": part.get("sha256"),
        }
        return text(part.get("caption")), [clipped(attachment)]
    if kind in SHARED:
        return "", [{"type": kind}]
    return None


def sample(secrets: Mapping[str, str], message_id: str, now: datetime) -> RawRequest:
    """The sample Meta's own dashboard "Test" button sends, with a fresh message id."""
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "0",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": "16505551111",
                                    "phone_number_id": "123456123",
                                },
                                "contacts": [
                                    {"profile": {"name": "test user name"}, "wa_id": "16315551181"}
                                ],
                                "messages": [
                                    {
                                        "from": "16315551181",
                                        "id": message_id,
                                        "timestamp": str(int(now.timestamp())),
                                        "type": "text",
                                        "text": {"body": "this is a text message"},
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        },
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(secrets.get("app_secret", "").encode(), body, hashlib.sha256)
    return RawRequest(
        {
            "content-type": "application/json",
            "x-hub-signature-256": f"sha256={signature.hexdigest()}",
        },
        body,
    )
