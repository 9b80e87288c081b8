"""The wire format of SPEC §3, as pure functions of stored rows."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, Protocol

BUNDLE_MAX_MESSAGES = 1000
BUNDLE_MAX_BYTES = 1024 * 1024
NOTE_MAX_CHARS = 65536
BUNDLE_ENVELOPE_BYTES = 16 * 1024
"""Room kept in a bundle's byte budget for everything but its messages (chat, account …)."""

TEST_HEADER = "chathooks-test"
TEST_ID_PREFIX = "test_"
"""A test request carries ``chathooks-test: true`` and ``test_``-prefixed message ids
(SPEC §5), so a receiver can tell it from a real message and never logs a duplicate. Send
test adds both to the request it makes; Send sample's message is stored with a ``test_``
id, and that id is what marks its deliveries (``is_test``)."""


class MessageRow(Protocol):
    """The stored message fields a payload shows (an ORM object or a plain result row)."""

    @property
    def id(self) -> int: ...
    @property
    def direction(self) -> str: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def external_id(self) -> str: ...
    @property
    def sender_name(self) -> str: ...
    @property
    def sender_phone(self) -> str: ...
    @property
    def recipient_name(self) -> str: ...
    @property
    def recipient_phone(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def is_first_in_chat(self) -> bool: ...


class ChatRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def full_name(self) -> str: ...
    @property
    def is_group(self) -> bool: ...
    @property
    def phone(self) -> str: ...


class PersonRow(Protocol):
    @property
    def full_name(self) -> str: ...
    @property
    def email(self) -> str: ...


class AccountRow(Protocol):
    @property
    def phone(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ChatContext:
    """A chat with the people a payload names: the account's owner and the responsible."""

    chat: ChatRow
    account: AccountRow
    owner: PersonRow
    responsible: PersonRow | None


def timestamp(moment: datetime) -> str:
    """``%Y-%m-%dT%H:%M:%S+0000``, with four-digit years also before 1000 (which
    ``strftime`` writes as ``1``, not ``0001``, on Linux). Cut from ``isoformat``: each
    message of a bundle needs it, and ``strftime`` cost a tenth of building a bundle."""
    return _iso(moment)[:19] + "+0000"


def _iso(moment: datetime) -> str:
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return utc.isoformat(timespec="seconds")


def chat_url(base_url: str, chat_id: int) -> str:
    return f"{base_url}/chat/{chat_id}/messages/"


def permalink(base_url: str, uuid: str) -> str:
    return f"{base_url}/permalink/{uuid}/"


def account_object(ctx: ChatContext) -> dict[str, str]:
    return {"full_name": ctx.owner.full_name, "email": ctx.owner.email, "phone": ctx.account.phone}


def chat_object(ctx: ChatContext, base_url: str, is_new_chat: bool) -> dict[str, Any]:
    chat, responsible = ctx.chat, ctx.responsible
    return {
        "full_name": chat.full_name,
        "responsible_name": responsible.full_name if responsible else "",
        "responsible_email": responsible.email if responsible else "",
        "chat_url": chat_url(base_url, chat.id),
        "chat_id": str(chat.id),
        "is_new_chat": is_new_chat,
        "is_group": chat.is_group,
        "phone": "" if chat.is_group else chat.phone,
    }


_string = encode_basestring
"""A string as ``dumps`` writes it (``ensure_ascii=False``), quotes included."""


def message_json(message: MessageRow) -> str:
    """A message object as ``dumps`` would write its dict, straight from the row: no dict
    per message for the encoder to walk (a bundle holds up to 1,000)."""
    return (
        f'{{"direction":{_string(message.direction)},'
        f'"timestamp":"{timestamp(message.timestamp)}",'
        f'"message_id":{_string(message.external_id)},'
        f'"sender":{{"full_name":{_string(message.sender_name)},'
        f'"phone":{_string(message.sender_phone)}}},'
        f'"recipient":{{"full_name":{_string(message.recipient_name)},'
        f'"phone":{_string(message.recipient_phone)}}},'
        f'"text":{_string(message.text)}}}'
    )


def _envelope(ctx: ChatContext, base_url: str, is_new_chat: bool) -> str:
    """The opening of a body, up to its messages."""
    account, chat = dumps(account_object(ctx)), dumps(chat_object(ctx, base_url, is_new_chat))
    return f'{{"whatsapp_account":{account},"chat":{chat}'


def single_body(ctx: ChatContext, message: MessageRow, base_url: str) -> str:
    """The JSON text of a delivery without aggregation (SPEC §3: ``MessagePayload``)."""
    envelope = _envelope(ctx, base_url, message.is_first_in_chat)
    return f'{envelope},"message":{message_json(message)}}}'


def note_footer(link: str) -> str:
    return f"<br/>Click <a href='{link}'>here</a> to open the conversation in chathooks"


def note_line(message: MessageRow) -> str:
    """One message as a line of the CRM note: escaped, line breaks as ``<br/>``."""
    text = _escape(message.text)
    if "\n" in text:
        text = text.replace("\r\n", "\n").replace("\n", "<br/>")
    iso = _iso(message.timestamp)
    return f"from {_escape(message.sender_name)} on {iso[:10]} {iso[11:16]}: {text}"


def _escape(text: str) -> str:
    """``html.escape``, which makes five passes over the text, only for a text that needs
    it: a search for one character is far cheaper than a replace of it."""
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return html.escape(text)
    return text


def note_line_budget(footer_chars: int) -> int:
    """Characters a single line may take so that one message alone fits the note."""
    return NOTE_MAX_CHARS - footer_chars


def fit_line(line: str, budget: int) -> str:
    """The line, or as much of it as fits followed by "…", cut between HTML entities and
    tags, never inside one (``&l…`` would not parse in the CRM that receives the note)."""
    if len(line) <= budget:
        return line
    cut = line[: budget - 1]
    for opener, closer in (("&", ";"), ("<", ">")):
        start = cut.rfind(opener)
        if start > cut.rfind(closer):
            cut = cut[:start]
    return cut + "…"


def aggregation_note(messages: Sequence[MessageRow], link: str) -> str:
    footer = note_footer(link)
    budget = note_line_budget(len(footer))
    return "<br/>".join(fit_line(note_line(m), budget) for m in messages) + footer


def ordered(messages: Sequence[MessageRow]) -> list[MessageRow]:
    return sorted(messages, key=lambda m: (m.timestamp, m.id))


def bundle_body(ctx: ChatContext, messages: Sequence[MessageRow], base_url: str, uuid: str) -> str:
    """The JSON text of a bundle (SPEC §3: ``BundlePayload``), exactly as ``dumps`` would
    write it as a dict, with its keys in the same order."""
    in_order = ordered(messages)
    envelope = _envelope(ctx, base_url, any(m.is_first_in_chat for m in in_order))
    items = ",".join([message_json(m) for m in in_order])
    note = _string(aggregation_note(in_order, permalink(base_url, uuid)))
    return (
        f'{envelope},"messages":[{items}],'
        f'"first_message_timestamp":"{timestamp(in_order[0].timestamp)}",'
        f'"last_message_timestamp":"{timestamp(in_order[-1].timestamp)}",'
        f'"aggregation":{note}}}'
    )


def dumps(payload: dict[str, Any]) -> str:
    """JSON with emoji as they are, no padding: the body as text (the request log keeps it)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def bundle_costs(message: MessageRow, footer_chars: int) -> tuple[int, int]:
    """What one message adds to a bundle: (body bytes, note characters), separators included.

    The body carries the message twice, as an object and as its line of the note, so both
    count toward the byte limit (the note's line as JSON-encoded bytes).
    """
    line = fit_line(note_line(message), note_line_budget(footer_chars)) + "<br/>"
    line_bytes = len(json.dumps(line, ensure_ascii=False).encode()) - 2
    body = len(message_json(message).encode()) + 1 + line_bytes
    return body, len(line)


def bundle_fits(count: int, body_bytes: int, note_chars: int, footer_chars: int) -> bool:
    return (
        count <= BUNDLE_MAX_MESSAGES
        and body_bytes <= BUNDLE_MAX_BYTES - BUNDLE_ENVELOPE_BYTES
        and note_chars + footer_chars <= NOTE_MAX_CHARS + len("<br/>")
    )


def is_test(messages: Sequence[MessageRow]) -> bool:
    """A delivery of test messages only (Send sample's) goes out marked as a test; one
    that carries a real message too is not, so a receiver never drops the real one."""
    return bool(messages) and all(m.external_id.startswith(TEST_ID_PREFIX) for m in messages)
