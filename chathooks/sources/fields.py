"""Reading senders' JSON defensively, and WhatsApp's ids, phones and times.

A sender's body may hold anything that is valid JSON; these helpers turn a wrong type into
"absent" instead of an exception, so one odd field ignores or rejects one event, never the
request.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

NAME_CHARS = 200
ATTACHMENT_FIELD_CHARS = 2000
PERSON_SERVERS = ("c.us", "s.whatsapp.net")
LATEST_UNIX_SECOND = 253402300799
"""9999-12-31 23:59:59 UTC: the last moment a stored timestamp can hold."""
MESSAGE_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
)
"""Parts of a WhatsApp protocol message (Baileys, whatsmeow) whose ``message`` holds the
real content: disappearing, view-once and captioned-file messages."""


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> list[dict[str, Any]]:
    """The objects of a list (anything else in it, or a non-list, is skipped)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def name(value: Any) -> str:
    """A display name, cut to the stored length: a long name must not lose the message."""
    return text(value).strip()[:NAME_CHARS]


def same_secret(given: Any, expected: str) -> bool:
    """Constant-time comparison that never raises, whatever a stranger sent."""
    if not isinstance(given, str) or not expected:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def unix_time(value: Any) -> datetime | None:
    """Unix seconds (a number or a numeric string) as UTC, or None if absent or absurd."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not 0 <= value <= LATEST_UNIX_SECOND:
        return None
    return datetime.fromtimestamp(int(value), UTC)


def phone(value: Any) -> str:
    """E.164 with a leading ``+`` from bare digits, ``+1 650-555-1234`` or a person's chat id
    (``972540000000@c.us``, ``…:12@s.whatsapp.net``); ``""`` when it holds no number."""
    user, at, server = text(value).partition("@")
    if at and server not in PERSON_SERVERS:
        return ""  # a group, a hidden @lid id or a channel: not a phone number
    user = user.split(":", 1)[0]
    digits = "".join(c for c in user if c not in "+ -().")
    return "+" + digits if digits.isascii() and digits.isdigit() and 5 <= len(digits) <= 20 else ""


def chat_id(jid: Any) -> str:
    """A chat id as WAHA and the SPEC write it: ``…@s.whatsapp.net`` becomes ``…@c.us``, a
    device suffix (``:12``) is dropped, also from a hidden ``@lid`` id."""
    user, _, server = text(jid).partition("@")
    if server in PERSON_SERVERS:
        return f"{user.split(':', 1)[0]}@c.us"
    if server == "lid":
        return f"{user.split(':', 1)[0]}@lid"
    return text(jid)


def is_group(jid: str) -> bool:
    return jid.endswith("@g.us")


def is_chat(jid: str) -> bool:
    """A person (also a hidden ``@lid`` id) or a group; not a status, broadcast or channel."""
    user, _, server = jid.partition("@")
    return bool(user) and server in (*PERSON_SERVERS, "lid", "g.us")


def clipped(values: dict[str, Any]) -> dict[str, Any]:
    """An attachment's description: its string fields cut, the empty ones dropped."""
    return {
        key: value[:ATTACHMENT_FIELD_CHARS] if isinstance(value, str) else value
        for key, value in values.items()
        if value not in ("", None)
    }


def message_event(
    *,
    account: str,
    chat: str,
    group: bool,
    chat_name: str,
    chat_phone: str,
    message_id: Any,
    direction: str,
    timestamp: datetime | None,
    sender: tuple[str, str],
    recipient: tuple[str, str],
    body: str,
    attachments: list[dict[str, Any]],
) -> dict[str, Any]:
    """A ``MessageEvent`` as plain input. The business's own name is left empty: the
    receiving service fills in the account owner's; so is the time of a sender that does
    not date its messages (``None``: the time it arrived)."""
    return {
        "whatsapp_account_phone": account,
        "chat": {
            "external_id": chat,
            "full_name": chat_name,
            "is_group": group,
            "phone": "" if group else chat_phone,
        },
        "message_id": message_id,
        "direction": direction,
        **({} if timestamp is None else {"timestamp": timestamp}),
        "sender": {"full_name": sender[0], "phone": sender[1]},
        "recipient": {"full_name": recipient[0], "phone": recipient[1]},
        "text": body,
        "attachments": attachments,
    }


def chat_message(
    *,
    account: str,
    chat: str,
    from_me: bool,
    contact: str,
    contact_name: str,
    message_id: Any,
    timestamp: datetime,
    content: tuple[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """A message as WhatsApp Web bridges (WAHA, Evolution) tell it: a chat id, whether the
    business sent it, and in a group the participant who did."""
    group = is_group(chat)
    them = (contact_name, phone(contact))
    us = ("", account)
    return message_event(
        account=account,
        chat=chat,
        group=group,
        chat_name="" if group else contact_name,
        chat_phone=phone(chat),
        message_id=message_id,
        direction="sent" if from_me else "received",
        timestamp=timestamp,
        sender=us if from_me else them,
        recipient=("", "") if group else (them if from_me else us),
        body=content[0],
        attachments=content[1],
    )
