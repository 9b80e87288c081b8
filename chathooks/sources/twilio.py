"""Twilio: WhatsApp through Twilio Messaging (a WhatsApp sender's or a Messaging Service's
incoming-message webhook).

Verification, as Twilio signs: ``X-Twilio-Signature`` is base64(HMAC-SHA1(Auth Token, the
URL Twilio called + every POST parameter sorted by name, name and value concatenated)).
The URL comes from ``CHATHOOKS_PUBLIC_BASE_URL`` (``RawRequest.url``); like Twilio's own
validators, it is also tried without its port and with the scheme's default port, since
Twilio's signing is not consistent about ports. When a Webhooks Rule gives the URL a
Setting with a SharedKey, Twilio adds ``X-Twilio-Webhooks-Signature-Settings:
key=<id>,algorithm=HMAC_SHA256`` and signs the same string with the key's secret and that
algorithm.

Twilio posts one message per request as a form, without a time (it is dated when it
arrives), and answers the customer with whatever TwiML it gets back: the answer is an
empty ``<Response/>``. Status callbacks are not messages (counted as ignored): they are read
as ``SendReport``s on the messages chathooks sent. Twilio never posts the business's own
messages, so every message read here is received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from chathooks.sources.answers import (
    answer,
    digits,
    excerpt,
    not_the_sender,
    public_api,
    root,
    segment,
    sending,
    transient,
)
from chathooks.sources.fields import clipped, message_event, name, phone, same_secret, text
from chathooks.sources.protocol import (
    Call,
    CheckAnswer,
    RawRequest,
    Reading,
    Reply,
    Secret,
    SendAnswer,
    SendReport,
    Wire,
    posts_only,
)
from chathooks.sources.screening import Refusal, Screen

NAME = "twilio"
TWILIO_API = "https://api.twilio.com"
LABEL = "Twilio (WhatsApp)"
SECRETS = (
    Secret(
        "auth_token",
        "Auth Token",
        generated=False,
        hint="Twilio Console › Account Info › Auth Token (the primary one): Twilio signs "
        "every webhook with it.",
    ),
    Secret(
        "shared_key",
        "Webhooks SharedKey secret",
        generated=False,
        required=False,
        hint="Only if a Webhooks Rule signs this URL with a SharedKey: the secret Twilio "
        "returned when the key was created. Leave it empty otherwise.",
    ),
    sending(
        "account_sid",
        "Account SID",
        role="name",
        hint="To send replies: the account's SID (AC…, Console › Account Info); chathooks "
        "signs in with it and the Auth Token.",
    ),
    sending(
        "sender",
        "WhatsApp sender",
        role="name",
        hint="To send replies: the WhatsApp sender's number (whatsapp:+14155238886) or the "
        "Messaging Service's SID (MG…) that sends.",
    ),
    public_api("Twilio API URL", TWILIO_API),
)
SEND_SECRETS = ("account_sid", "sender")
"""With the Auth Token, which receiving needs already; ``api_url`` is optional."""
PER_SECOND = 20.0
SETUP = (
    "In the Twilio Console open Messaging › Senders › WhatsApp senders and choose the "
    "number (or, if it belongs to a Messaging Service, open the service › Integration).",
    "Webhook URL for incoming messages (the service's Request URL): `{url}`, method "
    "`HTTP POST`; save.",
    "If chathooks sends replies through this number, set the status callback URL to the "
    "same URL: a reply that fails later (outside WhatsApp's 24-hour window, say) is then "
    "marked failed. Statuses are not messages: they are counted as ignored.",
    "Save the account's primary Auth Token here (Console › Account Info). If a Webhooks "
    "Rule signs this URL with a SharedKey, save that key's secret too.",
    "Twilio does not post the messages the business sends (through Twilio's API or "
    "Console): only customers' messages arrive here. Replies sent through chathooks are "
    "stored from Twilio's answer; to forward others too, post them to chathooks' API as "
    "`sent`.",
)
WIRE = Wire("form", ("text/xml", '<?xml version="1.0" encoding="UTF-8"?><Response/>'))
"""An empty TwiML answer, so that Twilio replies nothing to the customer."""

SIGNATURE = "x-twilio-signature"
SIGNATURE_SETTINGS = "x-twilio-webhooks-signature-settings"
ALGORITHMS: dict[str, Callable[[], Any]] = {
    "HMAC_SHA1": hashlib.sha1,
    "HMAC_SHA256": hashlib.sha256,
}
PREFIX = "whatsapp:"
MAX_MEDIA = 10
"""Twilio's limit of media per message."""
DEFAULT_PORTS = {"https": 443, "http": 80}
BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
"""Meta's business-scoped user id: a country code, a dot, up to 128 alphanumerics (a
parent BSUID has ``ENT.`` after the dot)."""

handshake = posts_only


def signature(
    key: str, url: str, fields: Mapping[str, list[str]], algorithm: str = "HMAC_SHA1"
) -> str:
    """Twilio's signature of a form posted to ``url``: a repeated name's values are sorted
    (and repeats dropped), as Twilio's libraries do."""
    signed = url + "".join(
        field + value for field in sorted(fields) for value in sorted(set(fields[field]))
    )
    digest = hmac.new(key.encode(), signed.encode(), ALGORITHMS[algorithm]).digest()
    return base64.b64encode(digest).decode()


def screen(headers: Mapping[str, str], secrets: Mapping[str, str], *, url: str) -> Screen:
    """Twilio signs the URL it called and the form's fields, so the signature is checked once
    the form is parsed (its bodies are a few hundred bytes)."""
    return FormScreen(headers, secrets, url=url)


class FormScreen:
    """``X-Twilio-Signature`` over ``url`` + the sorted fields, with the Auth Token (or, as
    the signature settings header says, a Webhooks Rule's SharedKey)."""

    def __init__(self, headers: Mapping[str, str], secrets: Mapping[str, str], *, url: str):
        self.url = url
        self.given = headers.get(SIGNATURE)
        self.key, self.algorithm = _signing(headers.get(SIGNATURE_SETTINGS), secrets)
        self.early: Refusal | None = None
        if self.given is None:
            self.early = Refusal("signature_missing", f"the {SIGNATURE} header is missing")
        elif self.algorithm not in ALGORITHMS:
            self.early = Refusal(
                "algorithm_unexpected",
                f"{SIGNATURE_SETTINGS} names {self.algorithm[:40]!r}, not one of "
                f"{', '.join(ALGORITHMS)}",
            )

    @property
    def refused(self) -> bool:
        return self.early is not None

    def feed(self, chunk: bytes) -> None:
        """The signature covers the parsed fields, not the bytes: nothing to do yet."""

    def verdict(self) -> Refusal | None:
        return self.early

    def confirm(self, body: Any) -> Refusal | None:
        fields = body if isinstance(body, dict) else {}
        given = self.given or ""
        if self.key and any(
            same_secret(given, signature(self.key, url, fields, self.algorithm))
            for url in _urls(self.url)
        ):
            return None
        return Refusal(
            "signature_wrong",
            f"the {SIGNATURE} signature does not match this URL and form signed with this "
            "source's secret (is CHATHOOKS_PUBLIC_BASE_URL exactly the URL Twilio calls?)",
        )


def _signing(settings: str | None, secrets: Mapping[str, str]) -> tuple[str, str]:
    """(key, algorithm): the Auth Token and HMAC-SHA1, unless Twilio says a Webhooks
    Setting's SharedKey signed the request."""
    if settings is None:
        return secrets.get("auth_token", ""), "HMAC_SHA1"
    named = {}
    for part in settings.split(","):
        field, _, value = part.partition("=")
        named[field.strip()] = value.strip()
    return secrets.get("shared_key", ""), named.get("algorithm", "")


def _urls(url: str) -> set[str]:
    """The URL as written, without its port, and with its scheme's default port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return {url}
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host = hostport if port is None else hostport.rsplit(":", 1)[0]
    urls = {url, urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}"))}
    default = DEFAULT_PORTS.get(parts.scheme)
    if port is None and default:
        urls.add(urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{default}")))
    return urls


def read(body: Any) -> Reading:
    reading = Reading()
    fields = _fields(body)
    sender = fields.get("From", "")
    if "Body" not in fields and "MessageStatus" in fields:  # a status callback
        reading.ignored += 1
        reading.reports += [report] if (report := _report(fields)) else []
        return reading
    if not sender.startswith(PREFIX):  # another channel (SMS, RCS …)
        reading.ignored += 1
        return reading
    content = _content(fields)
    if content is None:
        reading.ignored += 1
        return reading
    message_id = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid")
    account = phone(fields.get("To", "").removeprefix(PREFIX))
    customer = phone(sender.removeprefix(PREFIX)) or phone(fields.get("WaId"))
    user_id = _user_id(fields)
    if not account or not (customer or user_id):
        reading.rejected.append(f"message {message_id!r}: no business number or no sender")
        return reading
    contact = name(fields.get("ProfileName")) or name(_username(fields))
    reading.messages.append(
        message_event(
            account=account,
            chat=user_id or f"{customer.lstrip('+')}@c.us",
            group=False,
            chat_name=contact,
            chat_phone=customer,
            message_id=message_id,
            direction="received",
            timestamp=None,
            sender=(contact, customer),
            recipient=("", account),
            body=content[0],
            attachments=content[1],
        )
    )
    return reading


def _fields(body: Any) -> dict[str, str]:
    """Each field's first value (Twilio sends each once)."""
    if not isinstance(body, dict):
        return {}
    return {
        str(field): values[0]
        for field, values in body.items()
        if isinstance(values, list) and values and isinstance(values[0], str)
    }


def _user_id(fields: dict[str, str]) -> str:
    """The customer's business-scoped user id (BSUID): Twilio's ``ExternalUserId``, or the
    ``From`` of a user whose phone is hidden behind a username (``whatsapp:US.1234…``)."""
    given = fields.get("ExternalUserId") or fields.get("From", "").removeprefix(PREFIX)
    return given if BSUID.fullmatch(given) else ""


def _username(fields: dict[str, str]) -> str:
    return fields.get("ProfileUsername") or fields.get("Username", "")


def _content(fields: dict[str, str]) -> tuple[str, list[dict[str, Any]]] | None:
    """(text, attachments), or None for a request with nothing to store."""
    attachments = _media(fields)
    if fields.get("Latitude") and fields.get("Longitude"):
        location = {
            "type": "location",
            "latitude": fields["Latitude"],
            "longitude": fields["Longitude"],
            "address": fields.get("Address"),
            "label": fields.get("Label"),
        }
        attachments.append(clipped(location))
    text = fields.get("ButtonText") or fields.get("Body", "")
    if not text and not attachments:
        return None
    return text, attachments


def _media(fields: dict[str, str]) -> list[dict[str, Any]]:
    try:
        count = min(int(fields.get("NumMedia", "0")), MAX_MEDIA)
    except ValueError:
        return []
    attachments = []
    for index in range(max(count, 0)):
        mime = fields.get(f"MediaContentType{index}", "")
        attachment = {"type": _media_type(mime), "mime_type": mime}
        attachments.append(clipped({**attachment, "url": fields.get(f"MediaUrl{index}")}))
    return attachments


def _media_type(mime: str) -> str:
    major = mime.partition("/")[0]
    if major in ("image", "video", "audio"):
        return "sticker" if mime == "image/webp" else major
    return "contacts" if mime in ("text/vcard", "text/x-vcard") else "document"


def sample(secrets: Mapping[str, str], message_id: str, now: datetime, url: str) -> RawRequest:
    """A received text as Twilio posts it (the parameters of Twilio's WhatsApp sandbox),
    signed for ``url``."""
    fields = {
        "SmsMessageSid": message_id,
        "NumMedia": "0",
        "ProfileName": "test user name",
        "MessageType": "text",
        "SmsSid": message_id,
        "WaId": "16315551181",
        "SmsStatus": "received",
        "Body": "this is a text message",
        "To": "whatsapp:+16505551111",
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": message_id,
        "AccountSid": "AC00000000000000000000000000000000",
        "From": "whatsapp:+16315551181",
        "ApiVersion": "2010-04-01",
    }
    key = secrets.get("auth_token", "")
    signed = signature(key, url, {field: [value] for field, value in fields.items()})
    return RawRequest(
        {"content-type": "application/x-www-form-urlencoded", SIGNATURE: signed},
        urlencode(fields).encode(),
        url=url,
    )


def send_call(secrets: Mapping[str, str], reply: Reply) -> Call:
    """``POST /2010-04-01/Accounts/{sid}/Messages.json``, a form signed in with the Account
    SID and the Auth Token: ``Body``, or a ``template`` as an approved Content template
    (its ``name`` is the ``HX…`` Content SID, its parameters ``{{1}}``, ``{{2}}``…)."""
    chat = reply.chat_external_id
    to = chat if BSUID.fullmatch(chat) and not reply.phone else "+" + digits(reply.phone or chat)
    sender = secrets.get("sender", "")
    fields = {
        "To": f"{PREFIX}{to}",
        "From" if sender.startswith(PREFIX) else "MessagingServiceSid": sender,
    }
    if reply.template is None:
        fields["Body"] = reply.text
    else:
        variables = {str(i): value for i, value in enumerate(reply.template.parameters, 1)}
        fields["ContentSid"] = reply.template.name
        fields["ContentVariables"] = json.dumps(variables, ensure_ascii=False)
    headers = {**_basic(secrets), "content-type": "application/x-www-form-urlencoded"}
    return Call(
        "POST", _account_url(secrets, "/Messages.json"), headers, urlencode(fields).encode()
    )


def read_send(status: int, body: str) -> SendAnswer:
    """201 with the Message resource: its ``sid`` (SM…) is the id its status callbacks
    carry. 429 and 5xx are tried again; other errors fail with Twilio's message."""
    found = answer(body)
    if 200 <= status < 300:
        return SendAnswer("sent", message_id=text(found.get("sid")))
    words = _problem(status, found, body)
    return SendAnswer("retry" if transient(status) else "failed", error=words)


def check_call(secrets: Mapping[str, str]) -> Call:
    """``GET /2010-04-01/Accounts/{sid}.json``: the account, with the same sign-in."""
    return Call(
        "GET", _account_url(secrets, ".json"), {**_basic(secrets), "accept": "application/json"}
    )


def read_check(status: int, body: str) -> CheckAnswer:
    found = answer(body)
    if status != 200:
        return CheckAnswer(False, _problem(status, found, body))
    state = text(found.get("status"))
    if not state:
        return CheckAnswer(False, not_the_sender("Twilio", "Twilio API URL", body))
    account = f"Account {name(found.get('friendly_name')) or text(found.get('sid'))!r}"
    if state == "active":
        return CheckAnswer(True, f"{account} is active: chathooks can send.")
    return CheckAnswer(False, f"{account} is {state}: reactivate it in Twilio's Console.")


OUTSIDE_WINDOW = 63016
ADVICE = {
    OUTSIDE_WINDOW: "The customer last wrote more than 24 hours ago, so WhatsApp refuses free "
    "text. Send an approved Content template instead (the send's template, its name the "
    "HX… Content SID); once the customer answers, free text works again for 24 hours.",
    20003: "Twilio refused the sign-in: check the Account SID and the Auth Token.",
    63007: "Twilio knows no WhatsApp sender with this number on this account: check the "
    "WhatsApp sender.",
    21211: "The recipient's number is not valid.",
}


def _problem(status: int, found: dict[str, Any], body: str) -> str:
    """Twilio's error ``{code, message, more_info, status}`` in words."""
    code = found.get("code")
    said = text(found.get("message")) or excerpt(body) or "no reason given"
    number = f" (error {code})" if isinstance(code, int) and not isinstance(code, bool) else ""
    words = f"Twilio answered {status}{number}: {said.rstrip('.')}."
    return f"{words} {ADVICE[code]}" if code in ADVICE else words


def _report(fields: dict[str, str]) -> SendReport | None:
    """A status callback of a message sent through the API: ``failed``/``undelivered`` with
    its ``ErrorCode`` in words (63016 explained), or not."""
    message_id, state = fields.get("MessageSid", ""), fields.get("MessageStatus", "")
    if not message_id or state in ("queued", "accepted", "sending", "scheduled", ""):
        return None
    if state not in ("failed", "undelivered"):
        return SendReport(message_id, failed=False)
    code = fields.get("ErrorCode", "")
    said = fields.get("ErrorMessage", "").rstrip(".")
    words = f"Twilio reports it {state}{f' (error {code})' if code else ''}"
    words += f": {said}." if said else "."
    advice = ADVICE.get(int(code)) if code.isdigit() else None
    return SendReport(message_id, failed=True, error=f"{words} {advice}" if advice else words)


def _account_url(secrets: Mapping[str, str], rest: str) -> str:
    account = segment(secrets.get("account_sid", ""))
    return f"{root(secrets, TWILIO_API)}/2010-04-01/Accounts/{account}{rest}"


def _basic(secrets: Mapping[str, str]) -> dict[str, str]:
    pair = f"{secrets.get('account_sid', '')}:{secrets.get('auth_token', '')}"
    return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
