"""Meta's WhatsApp Business Cloud API: the app's webhook (``whatsapp_business_account``).

Verification: the ``hub.challenge`` handshake with the generated verify token, and
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`` with the app secret.
Each ``entry[].changes[]`` with ``field: messages`` holds received ``messages[]`` (and
``statuses[]``, ignored); ``field: smb_message_echoes`` holds ``message_echoes[]`` that the
business sent from the WhatsApp Business app.

A customer who has a WhatsApp username may come without a phone: Meta's business-scoped
user id (BSUID, ``US.13491208655302741918``) is in ``from_user_id`` (echoes:
``to_user_id``) and ``contacts[].user_id``, the phone in ``from``/``wa_id`` (echoes: ``to``)
only when Meta shares it. A person's chat is named by the BSUID when there is one, else by
the phone; ``ingest`` keeps a chat that began under the phone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

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
from chathooks.sources.protocol import JSON, Handshake, RawRequest, Reading, Secret
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
WIRE = JSON

MEDIA = ("image", "video", "audio", "document", "sticker")
"""Message types that carry a file: stored with an attachment, not forwarded."""
SHARED = ("location", "contacts", "order")
"""Other content without text: stored as an attachment describing it."""


def screen(headers: Mapping[str, str], secrets: Mapping[str, str], *, url: str) -> Screen:
    """``url`` is not signed by this sender."""
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
    reading.ignored += len(objs(value.get("statuses"))) + len(objs(value.get("errors")))
    for message, content, when in _readable(value.get("messages"), reading):
        sender, user_id = phone(message.get("from")), _user_id(message.get("from_user_id"))
        if not sender and not user_id:
            reading.rejected.append(f"message {text(message.get('id'))!r}: no sender")
            continue
        sender_name = _name(_contact(contacts, sender, user_id))
        group = text(message.get("group_id"))
        reading.messages.append(
            message_event(
                account=account,
                chat=group or _person_chat(sender, user_id),
                group=bool(group),
                chat_name="" if group else sender_name,
                chat_phone=sender,
                message_id=message.get("id"),
                direction="received",
                timestamp=when,
                sender=(sender_name, sender),
                recipient=("", "" if group else account),
                body=content[0],
                attachments=content[1],
            )
        )


def _echoes(value: dict[str, Any], reading: Reading) -> None:
    account = phone(obj(value.get("metadata")).get("display_phone_number"))
    for message, content, when in _readable(value.get("message_echoes"), reading):
        recipient, user_id = phone(message.get("to")), _user_id(message.get("to_user_id"))
        if not recipient and not user_id:
            reading.rejected.append(f"message {text(message.get('id'))!r}: no recipient")
            continue
        reading.messages.append(
            message_event(
                account=account,
                chat=_person_chat(recipient, user_id),
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


def _user_id(value: Any) -> str:
    """A business-scoped user id (``US.13491208655302741918``), or ``""``."""
    return text(value).strip()


def _person_chat(number: str, user_id: str) -> str:
    """A customer's chat id: the BSUID when Meta gives one (it stays when the phone comes
    and goes), else the phone's ``<digits>@c.us``."""
    return user_id or f"{number.lstrip('+')}@c.us"


def _contact(contacts: list[dict[str, Any]], number: str, user_id: str) -> dict[str, Any]:
    """The ``contacts[]`` entry of the sender (by ``wa_id`` or ``user_id``); a single entry
    is the sender's."""
    for contact in contacts:
        if (number and phone(contact.get("wa_id")) == number) or (
            user_id and _user_id(contact.get("user_id")) == user_id
        ):
            return contact
    return contacts[0] if len(contacts) == 1 else {}


def _name(contact: dict[str, Any]) -> str:
    """The profile name, else the username."""
    profile = obj(contact.get("profile"))
    return name(profile.get("name")) or name(profile.get("username"))


Content = tuple[str, list[dict[str, Any]]]


class Unreadable(Exception):
    """A message of a known type whose content is not what Meta sends: rejected, never
    stored with an empty text."""


def _readable(
    messages: Any, reading: Reading
) -> Iterator[tuple[dict[str, Any], Content, datetime]]:
    """The messages to store, with their content and time; the others counted."""
    for message in objs(messages):
        try:
            content = _content(message)
        except Unreadable as problem:
            reading.rejected.append(f"message {text(message.get('id'))!r}: {problem}")
            continue
        if content is None:
            reading.ignored += 1
            continue
        when = unix_time(message.get("timestamp"))
        if when is None:
            reading.rejected.append(f"message {text(message.get('id'))!r}: no valid timestamp")
            continue
        yield message, content, when


TEXT_FIELDS = {"text": "body", "button": "text"}
"""Types whose text is one field of their part: a message, a template's quick-reply button."""


def _content(message: dict[str, Any]) -> Content | None:
    """(text, attachments) of a message, or None for what is not a message to store
    (reactions, system notices, unsupported and unknown types); ``Unreadable`` when a text
    or caption is not a string."""
    kind = text(message.get("type"))
    part = obj(message.get(kind)) if kind else {}
    if field := TEXT_FIELDS.get(kind):
        return _string(part.get(field), f"{kind}.{field}", required=True), []
    if kind == "interactive":
        reply = obj(part.get("button_reply")) or obj(part.get("list_reply"))
        if not reply:
            return None
        return _string(reply.get("title"), "interactive reply's title", required=True), []
    if kind in MEDIA:
        attachment = {
            "type": kind,
            "id": part.get("id"),
            "mime_type": part.get("mime_type"),
            "filename": part.get("filename"),
            "sha256": part.get("sha256"),
        }
        caption = _string(part.get("caption"), f"{kind}.caption", required=False)
        return caption, [clipped(attachment)]
    if kind in SHARED:
        return "", [{"type": kind}]
    return None


def _string(value: Any, where: str, *, required: bool) -> str:
    """A text field's value; an absent optional one is ``""``."""
    if isinstance(value, str):
        return value
    if value is None and not required:
        return ""
    raise Unreadable(f"{where} is {'missing' if value is None else 'not a string'}")


def sample(secrets: Mapping[str, str], message_id: str, now: datetime, url: str) -> RawRequest:
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
