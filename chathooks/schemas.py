"""Request and response bodies of the API; their OpenAPI is the API reference."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from chathooks.schedule import Aggregation
from chathooks.sources import KINDS
from chathooks.storable import text_problem


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


def _in_utc_years(value: datetime) -> datetime:
    """The moment in UTC; one that falls outside years 1-9999 there cannot be stored."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within years 1 to 9999 once converted to UTC") from None


Timestamp = Annotated[AwareDatetime, AfterValidator(_in_utc_years)]


Text = Annotated[str, BeforeValidator(_none_as_empty), Field(max_length=200)]
Email = Annotated[
    str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$", examples=["amnon@acme.com"])
]
"""Checked for shape only: self-hosted teams use internal domains a strict check refuses."""
Phone = Annotated[str, BeforeValidator(_none_as_empty), Field(max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        """No NUL, no lone surrogate: a database would refuse them (a 500, not a 422)."""
        if isinstance(value, str) and (problem := text_problem(value)):
            raise ValueError(problem)
        return value


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
    name: str = Field(min_length=1, max_length=200)
    owner_name: str = Field(min_length=1, max_length=200)
    owner_email: Email


class WorkspaceCreated(BaseModel):
    id: int
    name: str
    api_token: str
    owner_password_link: str = Field(
        description="One-time link where the owner sets a password for the web pages."
    )


class ApiTokenOut(BaseModel):
    api_token: str = Field(description="The new token, shown only here.")


class TeammateIn(Strict):
    full_name: str = Field(min_length=1, max_length=200)
    email: Email


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
    phone: str = Field(min_length=1, max_length=40)
    full_name: str = Field(min_length=1, max_length=200)
    email: Email


class AccountOut(BaseModel):
    id: int
    phone: str
    full_name: str
    email: str


class ChatIn(Strict):
    external_id: str = Field(min_length=1, max_length=200)
    full_name: Text = ""
    is_group: bool = False
    phone: Phone = ""


class Party(Strict):
    full_name: Text = ""
    phone: Phone = ""


class MessageEvent(Strict):
    whatsapp_account_phone: str = Field(min_length=1, max_length=40)
    chat: ChatIn
    message_id: str = Field(min_length=1, max_length=200)
    direction: Literal["sent", "received"]
    timestamp: Timestamp
    sender: Party = Party()
    recipient: Party = Party()
    text: Annotated[str, BeforeValidator(_none_as_empty), Field(max_length=65536)] = ""
    attachments: list[Any] = Field(default_factory=list, max_length=100)


class MessageBatch(Strict):
    messages: list[MessageEvent] = Field(min_length=1, max_length=1000)


class MessageResult(BaseModel):
    message_id: str
    chat_id: str
    status: Literal["accepted", "skipped", "duplicate"] = Field(
        description="accepted: stored and queued; skipped: stored, not forwarded "
        "(it has attachments); duplicate: this message_id was already stored, nothing re-sent."
    )


class BatchResult(BaseModel):
    results: list[MessageResult]


class ChatOut(BaseModel):
    chat_id: str
    full_name: str
    is_group: bool
    phone: str
    whatsapp_account_phone: str
    responsible_name: str
    responsible_email: str
    chat_url: str


class ChatPatch(Strict):
    responsible_email: Email | None = Field(
        description="E-mail of a teammate of this workspace; null removes the responsible."
    )


WebhookName = Annotated[str, BeforeValidator(_none_as_empty), Field(max_length=100)]
Direction = Literal["received", "sent"]


def _both_directions() -> list[Direction]:
    return ["received", "sent"]


class WebhookFilters(Strict):
    """Which messages the webhook gets; a message its filters exclude is not queued."""

    directions: list[Direction] = Field(
        default_factory=_both_directions, min_length=1, max_length=2
    )
    include_groups: bool = Field(default=True, description="false: direct chats only.")
    account_phones: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Only messages of these WhatsApp accounts; empty means every account.",
    )


class WebhookIn(Strict):
    url: str = Field(min_length=1, max_length=2000)
    name: WebhookName = ""
    aggregation: Aggregation = "none"
    enabled: bool = True
    filters: WebhookFilters = Field(default_factory=WebhookFilters)
    max_requests_per_second: float | None = Field(default=None, gt=0, le=10000)


class WebhookPatch(Strict):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    name: WebhookName | None = None
    aggregation: Aggregation | None = None
    enabled: bool | None = None
    filters: WebhookFilters | None = None
    max_requests_per_second: float | None = Field(default=None, gt=0, le=10000)
    rotate_secret: bool = Field(
        default=False,
        description="A new secret; for 24 h the previous one keeps signing too.",
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    name: str
    aggregation: Aggregation
    filters: WebhookFilters
    enabled: bool
    status: Literal["enabled", "disabled", "auto_disabled"]
    secret: str
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until when the previous secret signs requests too."
    )
    consecutive_failures: int = Field(
        description="Failed attempts in a row (requests that failed together count once)."
    )
    failed_requests: int = Field(description="Requests that failed since the last success.")
    last_error: str
    retry_at: datetime | None = Field(description="When a webhook backing off tries again.")
    last_success_at: datetime | None
    last_failure_at: datetime | None
    backlog: int = Field(description="Deliveries waiting to be sent.")
    status_changed_at: datetime
    max_requests_per_second: float | None
    created_at: datetime


class ActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    action: str
    chat_id: int | None
    message_count: int
    status_code: int | None
    error: str
    latency_ms: float | None
    request_id: int | None = Field(
        description="The request this action made: GET …/requests/{request_id}."
    )


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    delivery_id: int | None
    url: str
    request_headers: dict[str, Any]
    request_body: str
    response_status: int | None
    response_headers: dict[str, Any]
    response_body: str
    error: str
    latency_ms: float
    success: bool

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
    bundles: int


class ReplayIn(Strict):
    since: Timestamp
    until: Timestamp


class ReplayResult(BaseModel):
    messages: int
    deliveries: int


SecretValue = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Printable ASCII without spaces.",
    ),
]
SOURCE_SECRETS_HELP = (
    "The kind's secrets. whatsapp_cloud: `app_secret` (required, from Meta's App Dashboard) "
    "and `verify_token` (generated unless given); waha: `hmac_key` (generated unless given); "
    "evolution: `api_key` (required, the instance's API key)."
)


class SourceIn(Strict):
    kind: str = Field(json_schema_extra={"enum": list(KINDS)})
    name: str = Field(min_length=1, max_length=200)
    secrets: dict[str, SecretValue] = Field(default_factory=dict, description=SOURCE_SECRETS_HELP)
    teammate_email: Email | None = Field(
        default=None,
        description="Owner of the WhatsApp accounts this source's events create; "
        "the workspace owner if not given.",
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"must be one of: {', '.join(KINDS)}")
        return kind


class SourcePatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    secrets: dict[str, SecretValue | None] = Field(
        default_factory=dict,
        description="New values; null makes a new one for a secret chathooks generates.",
    )
    teammate_email: Email | None = None


class SourceOut(BaseModel):
    id: int
    kind: str
    name: str
    url: str = Field(description="Paste it into the sender's webhook configuration.")
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


class SampleResult(BaseModel):
    success: bool
    status: int | None
    body: str
    error: str
    latency_ms: float
