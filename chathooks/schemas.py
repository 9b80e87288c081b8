"""Request and response bodies of the API; their descriptions and examples are the OpenAPI
reference at ``/docs``. What chathooks sends to webhooks is in ``payload_models``."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Strict as StrictType

from chathooks.payload_models import ACCOUNT_PHONE, ChatId
from chathooks.sources.kinds import KINDS
from chathooks.sources.protocol import Secret
from chathooks.states import Aggregation, OutgoingStatus, SourceKind, WebhookState
from chathooks.storable import text_problem


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


NoneAsEmpty = BeforeValidator(_none_as_empty, json_schema_input_type=str | None)
"""null is taken as "": the published schema says so (string or null)."""

RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)


def _date_time_text(value: Any) -> Any:
    """Only what the published ``date-time`` format allows: no Unix times, no dates
    without a time. (Without an offset it goes on to be refused as naive, by name; a
    ``datetime`` passes: sources build events in Python.)"""
    if isinstance(value, datetime) or (isinstance(value, str) and RFC3339.fullmatch(value)):
        return value
    raise ValueError("must be a date-time such as 2021-02-24T16:25:29Z (RFC 3339, with an offset)")


def _in_utc_years(value: datetime) -> datetime:
    """The moment in UTC; one that falls outside years 1-9999 there cannot be stored."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within years 1 to 9999 once converted to UTC") from None


Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_date_time_text), AfterValidator(_in_utc_years)
]


Text = Annotated[str, NoneAsEmpty, Field(max_length=200)]
Email = Annotated[
    str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$", examples=["amnon@acme.com"])
]
"""Checked for shape only: self-hosted teams use internal domains a strict check refuses."""
Phone = Annotated[str, NoneAsEmpty, Field(max_length=40)]
Rate = Annotated[float, StrictType()]
"""A number in JSON; "5" is refused, as the schema says."""

ActivityAction = Literal[
    "delivered",
    "failed",
    "skipped",
    "auto_disabled",
    "re_enabled",
    "enabled",
    "disabled",
    "flushed",
    "retried",
    "test",
]

EVENT_EXAMPLE: dict[str, Any] = {
    "whatsapp_account_phone": ACCOUNT_PHONE,
    "chat": {
        "external_id": "972540000000@c.us",
        "full_name": "John Doe",
        "is_group": False,
        "phone": "+972540000000",
    },
    "message_id": "ddfskhsd76dsfs6dsd5skjsdhf",
    "direction": "received",
    "timestamp": "2021-02-24T16:25:29Z",
    "sender": {"full_name": "John Doe", "phone": "+972540000000"},
    "recipient": {"full_name": "Amnon Haha", "phone": ACCOUNT_PHONE},
    "text": "lorem ipsum",
    "attachments": [],
}


def _trimmed(text: str, *, required: bool) -> str:
    if problem := text_problem(text):
        raise ValueError(problem)
    trimmed = text.strip()
    if required and not trimmed:
        raise ValueError("must not be blank")
    return trimmed


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any, info: ValidationInfo) -> Any:
        """Text holds no NUL and no lone surrogate (a database would refuse them: a 500, not
        a 422), and loses its surrounding spaces only now, after its checks: its limits and
        patterns judge what was sent, as the published schema does."""
        if isinstance(value, str) and not isinstance(value, Enum):  # a StrEnum is checked
            return _trimmed(value, required=_required(cls, info.field_name or ""))
        return value


@functools.cache
def _required(model: type[BaseModel], name: str) -> bool:
    """Whether the field has a minimum length: read once per field, not per value (every
    message's every text passes here)."""
    return any(getattr(rule, "min_length", 0) for rule in model.model_fields[name].metadata)


class ErrorOut(BaseModel):
    detail: str = Field(description="What went wrong, in words.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description='Where: ["body", "messages", 3, "timestamp"] is item 3\'s timestamp.'
    )
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    detail: list[FieldError]


class WorkspaceIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Acme", "owner_name": "Amnon Haha", "owner_email": "amnon@acme.com"}
            ]
        }
    )
    name: str = Field(min_length=1, max_length=200, description="The team's name.")
    owner_name: str = Field(min_length=1, max_length=200, description="The owner's full name.")
    owner_email: Email = Field(
        description="The owner's e-mail: the first teammate, who gets the alert e-mails."
    )


class WorkspaceCreated(BaseModel):
    id: int = Field(description="The workspace's id.")
    name: str
    api_token: str = Field(
        description="The workspace's API token (`chk_…`), shown only in this answer. Send it "
        "as `Authorization: Bearer <token>` to every other route.",
        examples=["chk_3q2Wm0Lw8mO6m5Tq7hXyJb0rTzq8ZgAaBQ1c9uDk7Ls"],
    )
    owner_password_link: str = Field(
        description="One-time link where the owner sets a password for the web pages.",
        examples=["http://127.0.0.1:8000/set-password/eyJ0IjoxfQ.Zx1c/"],
    )


class ApiTokenOut(BaseModel):
    api_token: str = Field(description="The new token, shown only here.")


class TeammateIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"full_name": "Dana Levi", "email": "dana@acme.com"}]}
    )
    full_name: str = Field(min_length=1, max_length=200, description="Shown in payloads.")
    email: Email = Field(description="Unique within the workspace; the login of the pages.")


class TeammateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    full_name: str
    email: str


class TeammateCreated(TeammateOut):
    password_link: str = Field(
        description="One-time link (7 days) where the teammate sets a password for the pages."
    )


class AccountIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"phone": ACCOUNT_PHONE, "full_name": "Amnon Haha", "email": "amnon@acme.com"}
            ]
        }
    )
    phone: str = Field(
        min_length=1,
        max_length=40,
        description="The connected WhatsApp number, as message events name it in "
        "`whatsapp_account_phone`.",
        examples=[ACCOUNT_PHONE],
    )
    full_name: str = Field(
        min_length=1, max_length=200, description="The full name of the number's owner."
    )
    email: Email = Field(
        description="The owner's e-mail; a teammate with this e-mail is created if there is none."
    )


class AccountSource(BaseModel):
    id: int
    kind: str
    name: str


class AccountOut(BaseModel):
    id: int
    phone: str = Field(examples=[ACCOUNT_PHONE])
    name: str = Field(description='The account\'s own name (`""` until it is given one).')
    full_name: str = Field(description="The owner's full name.")
    email: str = Field(description="The owner's e-mail.")
    source: AccountSource | None = Field(
        description="The WhatsApp source whose first event created the account; `null`: "
        "connected with `POST /api/v1/whatsapp-accounts` or on the page."
    )


class AccountChange(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Sales line"}]})
    name: str = Field(max_length=200, description='A name for the account; `""` clears it.')


class ChatIn(Strict):
    external_id: str = Field(
        min_length=1,
        max_length=200,
        description="The chat's id where the message comes from (a WhatsApp JID such as "
        "`972540000000@c.us`); the same value always means the same chat.",
        examples=["972540000000@c.us"],
    )
    full_name: Text = Field(default="", description="The contact's or the group's name.")
    is_group: StrictBool = Field(default=False, description="true for a group chat.")
    phone: Phone = Field(default="", description="The contact's phone; empty for a group.")


class Party(Strict):
    full_name: Text = Field(default="", description="null is taken as empty.")
    phone: Phone = Field(default="", description="null is taken as empty.")


class MessageEvent(Strict):
    """One WhatsApp message that a connected account sent or received."""

    model_config = ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]})
    whatsapp_account_phone: str = Field(
        min_length=1,
        max_length=40,
        description="The phone of a WhatsApp account added with `POST /api/v1/whatsapp-accounts`.",
        examples=[ACCOUNT_PHONE],
    )
    chat: ChatIn
    message_id: str = Field(
        min_length=1,
        max_length=200,
        description="Unique within the workspace: sending the same id again stores and sends "
        "nothing (the answer says `duplicate`).",
    )
    direction: Literal["sent", "received"] = Field(
        description="sent: by the account's owner; received: by the contact."
    )
    timestamp: Timestamp = Field(
        description="When the message was sent, with a UTC offset (`Z` or `+02:00`).",
        examples=["2021-02-24T16:25:29Z"],
    )
    sender: Party = Party()
    recipient: Party = Party()
    text: Annotated[str, NoneAsEmpty, Field(max_length=65536)] = Field(
        default="", description="The message's text, emoji included; null is taken as empty."
    )
    attachments: list[Any] = Field(
        default_factory=list,
        max_length=100,
        description="Any non-empty list marks a media message: stored, shown on the chat's "
        "page, never sent (it is `skipped`).",
    )


class MessageBatch(Strict):
    """Message events in one transaction: all are stored, or none."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"messages": [EVENT_EXAMPLE]}]})
    messages: list[MessageEvent] = Field(
        min_length=1,
        max_length=1000,
        description="1 to 1,000 message events, each as `POST /api/v1/messages` takes one.",
    )


class MessageResult(BaseModel):
    message_id: str = Field(examples=["ddfskhsd76dsfs6dsd5skjsdhf"])
    chat_id: ChatId
    status: Literal["accepted", "skipped", "duplicate"] = Field(
        description="accepted: stored and queued; skipped: stored, not forwarded "
        "(it has attachments); duplicate: this message_id was already stored, nothing re-sent."
    )


class BatchResult(BaseModel):
    results: list[MessageResult] = Field(description="One result per event, in the same order.")


class ChatOut(BaseModel):
    chat_id: ChatId
    full_name: str
    is_group: bool
    phone: str = Field(description="Empty for a group.")
    whatsapp_account_phone: str = Field(examples=[ACCOUNT_PHONE])
    responsible_name: str = Field(description="The responsible teammate; empty if none.")
    responsible_email: str = Field(description="The responsible teammate; empty if none.")
    chat_url: str = Field(
        description="The chat's page in chathooks, as payloads link it.",
        examples=["http://127.0.0.1:8000/chat/1/messages/"],
    )


class ChatListed(ChatOut):
    last_message_at: datetime = Field(
        description="When its latest message was sent (the message's `timestamp`)."
    )


class ChatListOut(BaseModel):
    chats: list[ChatListed] = Field(description="Latest message first.")
    next_cursor: str | None = Field(
        description="Pass it as `cursor` for the next page; null on the last page."
    )


class ChatPatch(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"responsible_email": "dana@acme.com"}]}
    )
    responsible_email: Email | None = Field(
        description="E-mail of a teammate of this workspace; null removes the responsible."
    )


WebhookName = Annotated[
    str,
    NoneAsEmpty,
    Field(max_length=100, description="A name to tell webhooks apart; may be empty."),
]
Direction = Literal["received", "sent"]
URL_DESCRIPTION = (
    "Where to POST, `http` or `https`. Loopback and private addresses are refused unless "
    "the operator sets CHATHOOKS_ALLOW_PRIVATE_TARGETS=true."
)
AGGREGATION_DESCRIPTION = (
    "none: one POST per message, at once. "
    + ", ".join(period for period in Aggregation if period is not Aggregation.NONE)
    + ": one POST per chat per period (aligned to UTC), when the period ends."
)
RATE_DESCRIPTION = "At most this many requests per second to this URL; null for no limit."


def _both_directions() -> list[Direction]:
    return ["received", "sent"]


class WebhookFilters(Strict):
    """Which messages the webhook gets; a message its filters exclude is not queued."""

    directions: list[Direction] = Field(
        default_factory=_both_directions,
        min_length=1,
        max_length=2,
        description="received, sent, or both.",
    )
    include_groups: StrictBool = Field(default=True, description="false: direct chats only.")
    account_phones: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Only messages of these WhatsApp accounts; empty means every account.",
    )


class WebhookIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://crm.example.com/hooks/whatsapp",
                    "name": "CRM",
                    "aggregation": "none",
                    "filters": {"directions": ["received"], "include_groups": False},
                }
            ]
        }
    )
    url: str = Field(min_length=1, max_length=2000, description=URL_DESCRIPTION)
    name: WebhookName = ""
    aggregation: Aggregation = Field(default=Aggregation.NONE, description=AGGREGATION_DESCRIPTION)
    enabled: StrictBool = Field(
        default=True, description="false: created disabled; nothing queued."
    )
    filters: WebhookFilters = Field(default_factory=WebhookFilters)
    max_requests_per_second: Rate | None = Field(
        default=None, gt=0, le=10000, description=RATE_DESCRIPTION
    )


class WebhookPatch(Strict):
    """Only the fields given change."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"enabled": True}, {"aggregation": "1h"}, {"rotate_secret": True}]
        }
    )
    url: str | None = Field(
        default=None, min_length=1, max_length=2000, description=URL_DESCRIPTION
    )
    name: WebhookName | None = Field(default=None, description="A new name; may be empty.")
    aggregation: Aggregation | None = Field(default=None, description=AGGREGATION_DESCRIPTION)
    enabled: StrictBool | None = Field(
        default=None,
        description="true re-enables a disabled or auto-disabled webhook (failure count reset, "
        "backlog sent in order); false disables it.",
    )
    filters: WebhookFilters | None = Field(
        default=None, description="Replaces the filters; keys left out take their defaults."
    )
    max_requests_per_second: Rate | None = Field(
        default=None, gt=0, le=10000, description=RATE_DESCRIPTION
    )
    rotate_secret: StrictBool = Field(
        default=False,
        description="true: a new signing secret; for 24 h the previous one keeps signing too.",
    )


class WebhookOut(BaseModel):
    id: int
    url: str = Field(examples=["https://crm.example.com/hooks/whatsapp"])
    name: str
    aggregation: Aggregation
    filters: WebhookFilters
    enabled: bool = Field(description="Whether `status` is `enabled` or `failing`.")
    status: WebhookState = Field(
        description="enabled: sending. failing: enabled, but its latest attempt failed; it "
        "backs off and tries again (see `retry_at`), and is auto-disabled after too many "
        "failed attempts. disabled: turned off by hand; what was queued still goes out, new "
        "messages are not queued. auto_disabled: turned off after too many failed attempts "
        "or a 410; its backlog waits until it is enabled again."
    )
    secret: str = Field(
        description="The signing secret: verify each request's `webhook-signature` with it.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until when the previous secret signs requests too."
    )
    consecutive_failures: int = Field(
        description="Failed attempts since the last success (requests failing together, as "
        "in one outage, count once)."
    )
    failed_requests: int = Field(description="Requests that failed since the last success.")
    last_error: str = Field(description="The last failure's HTTP status or error; empty if none.")
    retry_at: datetime | None = Field(
        description="While backing off after a failure: when the next attempt is due. null "
        "when no attempt waits, and while auto-disabled (nothing is tried until it is "
        "enabled again)."
    )
    last_success_at: datetime | None
    last_failure_at: datetime | None
    backlog: int = Field(description="Deliveries waiting to be sent.")
    status_changed_at: datetime
    max_requests_per_second: float | None = Field(description=RATE_DESCRIPTION)
    created_at: datetime


class ActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    action: ActivityAction = Field(
        description="delivered / failed: a request and its outcome; skipped: a message with "
        "attachments, not sent; auto_disabled, re_enabled, enabled, disabled: status changes; "
        "flushed: open bundles sent now; retried: Retry now; test: a test request."
    )
    chat_id: ChatId | None
    message_count: int = Field(description="Messages in the request (a bundle holds several).")
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str = Field(description="What went wrong, if anything: a status or a network error.")
    latency_ms: float | None
    request_id: int | None = Field(
        description="The request this action made: GET …/requests/{request_id}."
    )

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id_as_text(cls, value: Any) -> Any:
        """Stored as an integer; a string everywhere chathooks shows it."""
        return value if value is None else str(value)


class AttemptOut(BaseModel):
    """One request chathooks sent, and what came back."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    delivery_id: int | None = Field(description="null for a test request.")
    url: str
    request_headers: dict[str, Any]
    request_body: str
    response_status: int | None = Field(description="null when no answer came (see `error`).")
    response_headers: dict[str, Any]
    response_body: str = Field(description="Up to 64 KiB of it.")
    error: str = Field(description="A non-2xx status or a network error; empty on success.")
    latency_ms: float
    success: bool = Field(description="Whether the receiver answered 2xx.")

    @classmethod
    def of(cls, attempt: Any) -> AttemptOut:
        """From a stored ``Attempt`` row; ``success`` is derived from its status."""
        status_code = attempt.response_status
        return cls.model_validate(
            {
                **{c: getattr(attempt, c) for c in cls.model_fields if c != "success"},
                "success": status_code is not None and 200 <= status_code < 300,
            }
        )


class FlushResult(BaseModel):
    bundles: int = Field(description="Bundles queued to go out now.")


class ReplayIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"since": "2021-02-24T00:00:00Z", "until": "2021-02-25T00:00:00Z"}]
        }
    )
    since: Timestamp = Field(description="Start, included: when chathooks received them.")
    until: Timestamp = Field(description="End, excluded.")


class ReplayResult(BaseModel):
    messages: int = Field(description="Messages found in the range.")
    deliveries: int = Field(description="Deliveries queued for them.")


SecretValue = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Up to 200 printable ASCII characters without spaces; a key or token "
        "has at least 8 (a shorter one is guessed too easily), a sender's API URL must be "
        "one chathooks may call.",
    ),
]


def _secrets_help() -> str:
    """Each kind's secrets, from the kinds themselves."""

    def need(secret: Secret) -> str:
        if secret.generated:
            return "generated unless given"
        return "required" if secret.required else "optional"

    def said(kind: SourceKind) -> str:
        return ", ".join(f"`{s.name}` ({need(s)})" for s in KINDS[kind].SECRETS)

    return "The kind's secrets. " + "; ".join(f"{kind}: {said(kind)}" for kind in SourceKind) + "."


class SourceIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "whatsapp_cloud",
                    "name": "Sales number",
                    "secrets": {"app_secret": "0123456789abcdef0123456789abcdef"},
                },
                {"kind": "waha", "name": "Support phone"},
            ]
        }
    )
    kind: SourceKind = Field(
        description="; ".join(f"{kind}: {KINDS[kind].LABEL}" for kind in SourceKind) + "."
    )
    name: str = Field(min_length=1, max_length=200, description="Shown on the pages.")
    secrets: dict[str, SecretValue] = Field(default_factory=dict, description=_secrets_help())
    teammate_email: Email | None = Field(
        default=None,
        description="Owner of the WhatsApp accounts this source's events create; "
        "the workspace owner if not given.",
    )


class SourcePatch(Strict):
    """Only the fields given change."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Sales number (new phone)"}, {"secrets": {"hmac_key": None}}]
        }
    )
    name: str | None = Field(default=None, min_length=1, max_length=200, description="A new name.")
    secrets: dict[str, SecretValue | None] = Field(
        default_factory=dict,
        description="New values; null makes a new one for a secret chathooks generates.",
    )
    teammate_email: Email | None = Field(
        default=None, description="A new owner for the accounts this source's events create."
    )


class SourceOut(BaseModel):
    id: int
    kind: SourceKind
    name: str
    url: str = Field(description="Paste it into the sender's webhook configuration.")
    reachability_warning: str | None = Field(
        description="Why senders on other machines cannot reach `url` (loopback, a private "
        "address or plain http), naming the guide docs/going-live.md; null when they can."
    )
    secrets: dict[str, str]
    teammate_email: str = Field(description='"" when the workspace owner owns new accounts.')
    stored: int
    duplicates: int
    ignored: int
    rejected: int
    last_event_at: datetime | None
    created_at: datetime


class InboundRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    method: str
    status_code: int
    outcome: str
    detail: str
    headers: dict[str, Any]
    body: str = Field(description="The first 16 KiB, secrets masked.")


class CheckResult(BaseModel):
    ok: bool = Field(description="The source can send through its sender's API.")
    words: str = Field(description="What the sender answered, or what is wrong, in plain words.")


class SampleResult(BaseModel):
    success: bool
    status: int | None
    body: str
    error: str
    latency_ms: float


SEND_TEXT_CHARS = 4096
"""WhatsApp's limit on a text message."""
SendText = Annotated[
    str,
    NoneAsEmpty,
    Field(
        max_length=SEND_TEXT_CHARS,
        description="The message's text (up to 4,096 characters, WhatsApp's limit). May be "
        "empty only with a `template`.",
        examples=["Thanks, your quote is attached"],
    ),
]


def _storable_parameters(values: list[str]) -> list[str]:
    for value in values:
        if problem := text_problem(value):
            raise ValueError(problem)
    return values


class TemplateIn(Strict):
    """An approved message template: Meta's (WhatsApp Manager) for WhatsApp Cloud API
    sources, a Content template (``name``: its ``HX…`` SID) for Twilio sources. WhatsApp
    refuses free text outside the 24-hour customer-service window."""

    name: str = Field(min_length=1, max_length=512, examples=["order_update"])
    language: str = Field(
        min_length=1, max_length=20, description="The template's language code.", examples=["en"]
    )
    parameters: Annotated[list[Annotated[str, Field(max_length=1024)]], AfterValidator(
        _storable_parameters
    )] = Field(
        default_factory=list,
        max_length=50,
        description="The body's parameters ({{1}}, {{2}} …), in order.",
    )  # fmt: skip


class _SendIn(Strict):
    text: SendText = ""
    template: TemplateIn | None = Field(
        default=None,
        description="Send this approved template instead of free text: WhatsApp Cloud API "
        "and Twilio sources only; any other kind answers 422. A `text` given with it is not "
        "sent: it only becomes the sent message's text on your webhooks (without one: "
        "`[template <name>]`).",
    )

    @model_validator(mode="after")
    def _text_or_template(self) -> Self:
        if self.template is None and not self.text:
            raise ValueError(
                "give a text (or, for WhatsApp Cloud API and Twilio sources, a template)"
            )
        return self


class ChatSendIn(_SendIn):
    """A message to an existing chat (direct or group)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "Thanks, your quote is attached"}]}
    )


class PhoneSendIn(_SendIn):
    """A message to a phone number, from one of the workspace's WhatsApp accounts: the
    chat with that number, started if it is new."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "whatsapp_account_phone": ACCOUNT_PHONE,
                    "phone": "+14155550123",
                    "text": "Hello from Acme",
                }
            ]
        }
    )
    whatsapp_account_phone: str = Field(
        min_length=1,
        max_length=40,
        description="The phone of the workspace's WhatsApp account to send from.",
        examples=[ACCOUNT_PHONE],
    )
    phone: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^\+?[0-9]{5,20}$",
        description="The recipient's number in international form, digits only, with or "
        "without a leading +.",
        examples=["+14155550123"],
    )


class OutgoingOut(BaseModel):
    """A message sent through the account's source: `queued` until its sender accepts it
    (retried meanwhile), then `sent`; or `failed`, with the sender's reason."""

    id: str = Field(description="Follow it with `GET /api/v1/outgoing/{id}`.", examples=["17"])
    status: OutgoingStatus
    chat_id: ChatId | None = Field(
        description="The chat; null for a message to a new phone number until it is sent."
    )
    sender_message_id: str = Field(
        description="The sender's id of the sent message (the `message_id` it is delivered "
        "to your webhooks with); empty until sent."
    )
    last_error: str = Field(
        description="Why the latest attempt failed, in the sender's words (empty: none)."
    )
    attempts: int = Field(description="Calls made to the sender so far.")
    created_at: datetime
    sent_at: datetime | None
