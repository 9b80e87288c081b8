"""Meta's WhatsApp Business Cloud API: the app's webhook (``whatsapp_business_account``).

Verification: the ``hub.challenge`` handshake with the generated verify token, and
``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`` with the app secret.
Each ``entry[].changes[]`` with ``field: messages`` holds received ``messages[]`` (and
``statuses[]`` of the messages sent through the API: not messages, read as ``SendReport``s);
``field: smb_message_echoes`` holds ``message_echoes[]`` that the business sent from the
WhatsApp Business app.

Sending: ``POST /{version}/{phone_number_id}/messages`` with the access token; Meta's error
object (``code``, ``error_subcode``, ``error_data.details``) is said in words, 131047 (the
24-hour window closed) with what to do.

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

from chathooks.sources.answers import (
    answer,
    digits,
    excerpt,
    json_call,
    not_the_sender,
    public_api,
    root,
    segment,
    sending,
    transient,
)
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
from chathooks.sources.protocol import (
    JSON,
    Call,
    CheckAnswer,
    Handshake,
    RawRequest,
    Reading,
    Reply,
    Secret,
    SendAnswer,
    SendReport,
)
from chathooks.sources.screening import HmacScreen, Screen

NAME = "whatsapp_cloud"
GRAPH_URL = "https://graph.facebook.com"
GRAPH_VERSION = "v23.0"
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
    sending(
        "access_token",
        "Access token",
        role="credential",
        hint="To send replies: a system user's token with the whatsapp_business_messaging "
        "permission (Meta Business Settings › Users › System users › Generate new token).",
    ),
    sending(
        "phone_number_id",
        "Phone number ID",
        role="name",
        hint="To send replies: the number's Phone number ID (App Dashboard › WhatsApp › API "
        "Setup), as in the webhooks' metadata.phone_number_id.",
    ),
    public_api("Graph API URL", GRAPH_URL),
)
SEND_SECRETS = ("access_token", "phone_number_id")
"""``api_url`` is optional: Meta's Graph API unless set."""
PER_SECOND = 20.0
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
    statuses = objs(value.get("statuses"))
    reading.ignored += len(statuses) + len(objs(value.get("errors")))
    reading.reports += [report for status in statuses if (report := _report(status))]
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


def send_call(secrets: Mapping[str, str], reply: Reply) -> Call:
    """A text, or the ``template`` (name, language, body parameters) Meta takes outside the
    24-hour window. A person is addressed by phone, else by the business-scoped user id
    the chat is named by (``recipient``); a group by its id."""
    chat = reply.chat_external_id
    payload: dict[str, Any] = {"messaging_product": "whatsapp"}
    if reply.is_group:
        payload |= {"recipient_type": "group", "to": chat}
    elif reply.phone or chat.endswith("@c.us"):
        payload |= {"recipient_type": "individual", "to": digits(reply.phone or chat)}
    else:
        payload |= {"recipient_type": "individual", "recipient": chat}
    if reply.template is None:
        payload |= {"type": "text", "text": {"preview_url": False, "body": reply.text}}
    else:
        template: dict[str, Any] = {
            "name": reply.template.name,
            "language": {"code": reply.template.language},
        }
        if reply.template.parameters:
            parameters = [{"type": "text", "text": p} for p in reply.template.parameters]
            template["components"] = [{"type": "body", "parameters": parameters}]
        payload |= {"type": "template", "template": template}
    return json_call("POST", _url(secrets, "messages"), _bearer(secrets), payload)


def read_send(status: int, body: str) -> SendAnswer:
    """``messages[0].id``, the wamid its ``statuses`` and echoes carry; Meta's rate limits
    and its own failures are sent again later, any other error fails the send."""
    found = answer(body)
    if 200 <= status < 300:
        sent = objs(found.get("messages"))
        return SendAnswer("sent", message_id=text(sent[0].get("id")) if sent else "")
    code, words = _error(status, found, body)
    if transient(status) or code in RATE_LIMITS or code in PASSING:
        return SendAnswer("retry", error=words)
    return SendAnswer("failed", error=words)


def check_call(secrets: Mapping[str, str]) -> Call:
    """The number's own fields: the cheapest read that needs both the token and the id."""
    url = f"{_url(secrets)}?fields=display_phone_number,verified_name,quality_rating"
    return json_call("GET", url, _bearer(secrets))


def read_check(status: int, body: str) -> CheckAnswer:
    found = answer(body)
    if status == 200 and not found.get("display_phone_number"):
        return CheckAnswer(False, not_the_sender("the Graph API", "Graph API URL", body))
    if status == 200:
        number = f"{name(found.get('verified_name'))} ({text(found.get('display_phone_number'))})"
        quality = text(found.get("quality_rating")) or "UNKNOWN"
        if quality == "RED":
            return CheckAnswer(
                True,
                f"Connected to {number}, but its quality rating is RED: Meta may soon limit "
                "its sends. See WhatsApp Manager › Phone numbers › Insights.",
            )
        return CheckAnswer(True, f"Connected to {number}, quality rating {quality}.")
    return CheckAnswer(False, _error(status, found, body)[1])


def _error(status: int, found: dict[str, Any], body: str) -> tuple[int | None, str]:
    """The code of Meta's error object and the error in words (an answer without one,
    from a proxy say, is quoted)."""
    error = obj(found.get("error"))
    if not error:
        return None, f"Meta answered {status}: {excerpt(body) or 'no reason given'}."
    code = _code(error.get("code"))
    subcode = _code(error.get("error_subcode"))
    return code, explained(code, subcode, text(error.get("message")), error)


RATE_LIMITS = {4, 80007, 130429, 131048, 131056}
"""Meta's rate limits (app, WhatsApp account, number's throughput, spam, one customer):
the same send is accepted later."""
PASSING = {1, 2, 131000, 131016}
"""Meta's own temporary failures (unknown, service, "something went wrong", unavailable)."""
OUTSIDE_WINDOW = 131047
ADVICE = {
    OUTSIDE_WINDOW: "More than 24 hours have passed since the customer last wrote, so Meta "
    "refuses free text (the 24-hour customer-service window is closed). Send an approved "
    "message template instead (the send's template: name, language, parameters); once the "
    "customer answers, free text works again for 24 hours.",
    190: "The access token is expired, revoked or wrong: generate a system user's token "
    "with whatsapp_business_messaging and save it as the Access token.",
    131030: "The number is not in the test number's allowed list: add it in the App "
    "Dashboard › WhatsApp › API Setup, or send from a registered business number.",
    131026: "WhatsApp could not deliver it: the number may not be on WhatsApp, or the "
    "customer has not accepted WhatsApp's latest terms or uses an old version.",
    131031: "Meta has locked this WhatsApp Business account: see WhatsApp Manager.",
    133010: "The phone number is not registered on the Cloud API: register it first.",
}
PERMISSION = "The access token lacks a permission: give the system user "
PERMISSION_FIX = (
    "whatsapp_business_messaging on this WhatsApp Business account, then generate a new token."
)
UNKNOWN_NUMBER_SUBCODE = 33
"""Graph's "object does not exist or cannot be loaded": the phone number id is wrong, or
this token cannot use it."""


def explained(code: int | None, subcode: int | None, message: str, error: dict[str, Any]) -> str:
    """Meta's error in words: what it said (``message`` or ``title``, ``error_data.details``),
    its code, and what to do when the code says it."""
    details = text(obj(error.get("error_data")).get("details"))
    said = message or text(error.get("title")) or "no reason given"
    number = "" if code is None else f" (error {code}{f'/{subcode}' if subcode else ''})"
    words = f"Meta refused it{number}: {said}"
    if details and details not in said:
        words += f". {details}"
    words = words.rstrip(".") + "."
    if code in ADVICE:
        return f"{words} {ADVICE[code]}"
    if code == 10 or (code is not None and 200 <= code <= 299):
        return f"{words} {PERMISSION}{PERMISSION_FIX}"
    if code == 100 and subcode == UNKNOWN_NUMBER_SUBCODE:
        return f"{words} Check the Phone number ID (App Dashboard › WhatsApp › API Setup)."
    if code in RATE_LIMITS:
        return f"{words} chathooks sends it again later."
    return words


def _report(status: dict[str, Any]) -> SendReport | None:
    """A status of a message sent through the API: ``failed`` with its first error in
    words (131047 explained), or not; ``None`` without an id or a known status."""
    message_id, state = text(status.get("id")), text(status.get("status"))
    if not message_id or state not in ("sent", "delivered", "read", "failed"):
        return None
    if state != "failed":
        return SendReport(message_id, failed=False)
    errors = objs(status.get("errors"))
    if not errors:
        return SendReport(message_id, failed=True, error="Meta reports the send failed.")
    error = errors[0]
    code = _code(error.get("code"))
    words = explained(code, None, text(error.get("title")) or text(error.get("message")), error)
    return SendReport(message_id, failed=True, error=words)


def _code(value: Any) -> int | None:
    """A code as Meta writes it: a number, sometimes a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _url(secrets: Mapping[str, str], edge: str = "") -> str:
    """The number's node (``edge``: one of its edges) on the Graph API."""
    number = segment(secrets.get("phone_number_id", ""))
    return f"{root(secrets, GRAPH_URL)}/{GRAPH_VERSION}/{number}" + (f"/{edge}" if edge else "")


def _bearer(secrets: Mapping[str, str]) -> dict[str, str]:
    return {"authorization": f"Bearer {secrets.get('access_token', '')}"}
