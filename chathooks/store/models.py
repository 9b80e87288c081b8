"""The tables. Indexes are few on purpose: each one serves a query the hot path runs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chathooks.states import (
    Aggregation,
    DeliveryStatus,
    OutgoingStatus,
    SourceKind,
    WebhookStatus,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC on every backend, always read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC).replace(tzinfo=None)

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite straight to the text the dialect stores (its ``DATETIME`` format), in
        one step rather than two: every message stored binds several of these."""
        if dialect.name == "sqlite":
            return _utc_as_text
        return super().bind_processor(dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite the stored text goes straight to ``fromisoformat``, skipping the
        dialect's own parser: a quarter of the time it took to read the messages a claim
        of bundles carries."""
        if dialect.name == "sqlite":
            return _utc_from_text
        return super().result_processor(dialect, coltype)


def _utc_as_text(value: datetime | None) -> str | None:
    """As SQLAlchemy's SQLite ``DATETIME`` writes naive UTC: ``2021-02-24 16:25:29.000000``."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _utc_from_text(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _stored_as_text(values: type[StrEnum], length: int) -> Enum:
    """A state kept as its plain value in a VARCHAR (no database enum type, no CHECK: the
    columns the migrations made), read back as the enum; an unknown value is refused."""
    return Enum(
        values,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON}


class Meta(Base):
    """Operator-level key/value facts, such as the hash of the generated admin token."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Workspace(Base):
    __tablename__ = "workspaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_name: Mapped[str] = mapped_column(String(200))
    owner_email: Mapped[str] = mapped_column(String(320))
    api_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class Teammate(Base):
    __tablename__ = "teammates"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime]


class WhatsappAccount(Base):
    """A business number. A removed one keeps its row, since its chats and messages stay
    (they are what was delivered); its next event or ``POST`` brings the row back."""

    __tablename__ = "whatsapp_accounts"
    __table_args__ = (UniqueConstraint("workspace_id", "phone"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    phone: Mapped[str] = mapped_column(String(40))
    teammate_id: Mapped[int] = mapped_column(ForeignKey("teammates.id"))
    created_at: Mapped[datetime]
    name: Mapped[str] = mapped_column(String(200), default="")
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), default=None)
    """The source whose event created the account; none: connected by hand (API or page)."""
    removed_at: Mapped[datetime | None] = mapped_column(default=None)


class Chat(Base):
    __tablename__ = "chats"
    __table_args__ = (
        UniqueConstraint("account_id", "external_id"),
        Index("ix_chats_activity", "workspace_id", "last_message_at", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("whatsapp_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    full_name: Mapped[str] = mapped_column(String(200))
    is_group: Mapped[bool] = mapped_column(Boolean)
    phone: Mapped[str] = mapped_column(String(40))
    responsible_id: Mapped[int | None] = mapped_column(ForeignKey("teammates.id"), default=None)
    created_at: Mapped[datetime]
    has_deliverable: Mapped[bool] = mapped_column(Boolean, default=False)
    """A message without attachments is stored: the next one is no longer ``is_new_chat``."""
    last_message_at: Mapped[datetime | None] = mapped_column(default=None)
    """The latest ``timestamp`` of its messages: the Chats list's order (kept here, as a
    list by the messages themselves would read every message of the workspace)."""


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("workspace_id", "external_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(8))
    timestamp: Mapped[datetime]
    received_at: Mapped[datetime]
    sender_name: Mapped[str] = mapped_column(String(200))
    sender_phone: Mapped[str] = mapped_column(String(40))
    recipient_name: Mapped[str] = mapped_column(String(200))
    recipient_phone: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JSON)
    has_attachments: Mapped[bool] = mapped_column(Boolean)
    is_first_in_chat: Mapped[bool] = mapped_column(Boolean)
    """The chat's first deliverable message (SPEC §3 ``is_new_chat``)."""


class Webhook(Base):
    __tablename__ = "webhooks"
    __table_args__ = {"sqlite_autoincrement": True}
    """A deleted webhook's id is never given to a new one (its in-flight results are dropped
    by id)."""
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    name: Mapped[str] = mapped_column(String(100), default="")
    aggregation: Mapped[Aggregation] = mapped_column(_stored_as_text(Aggregation, 8))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[WebhookStatus] = mapped_column(_stored_as_text(WebhookStatus, 16))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str] = mapped_column(String(100), default="")
    previous_secret_until: Mapped[datetime | None] = mapped_column(default=None)
    """After a rotation the previous secret signs too, until then (SPEC §5: 24 h)."""
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    """Failed attempts in a row: requests that failed together count once."""
    failed_requests: Mapped[int] = mapped_column(Integer, default=0)
    """Failed requests since the last success (what the attempts above were made of)."""
    retry_at: Mapped[datetime | None] = mapped_column(default=None)
    max_requests_per_second: Mapped[float | None] = mapped_column(Float, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_failure_at: Mapped[datetime | None] = mapped_column(default=None)
    status_changed_at: Mapped[datetime]
    created_at: Mapped[datetime]


class Delivery(Base):
    """One payload for one webhook: a single message, or a bundle of one chat's messages.

    ``status`` is ``open`` while a bundle gathers, ``pending`` until a 2xx answer, then
    ``delivered``. A worker owns a pending row while ``lease_until`` is in the future and,
    on PostgreSQL, while the connection that holds the lock ``leased_by`` names is open.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        Index(
            "ix_deliveries_due",
            "due_at",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_deliveries_lane",
            "webhook_id",
            "chat_id",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_deliveries_bundle_uuid",
            "uuid",
            unique=True,
            sqlite_where=text("aggregation != 'none'"),
            postgresql_where=text("aggregation != 'none'"),
        ),
        Index(
            "ix_deliveries_closing",
            "due_at",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index(
            "ix_deliveries_open_bundle",
            "webhook_id",
            "chat_id",
            "period_start",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(40))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id"))
    message_id: Mapped[int | None] = mapped_column(default=None)
    """A message id, kept without a foreign key: retention deletes messages in batches,
    and a foreign key without an index on this column would scan the table per row."""
    status: Mapped[str] = mapped_column(_stored_as_text(DeliveryStatus, 16))
    """A ``DeliveryStatus`` (typed ``str`` while ingest assigns plain strings)."""
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    leased_by: Mapped[int | None] = mapped_column(default=None)
    """The claiming worker's liveness lock (PostgreSQL): once its connection is gone (the
    worker died), the lease is void at once instead of at ``lease_until``."""
    period_start: Mapped[datetime | None] = mapped_column(default=None)
    aggregation: Mapped[Aggregation] = mapped_column(_stored_as_text(Aggregation, 8))
    message_count: Mapped[int] = mapped_column(Integer, default=1)
    body_bytes: Mapped[int] = mapped_column(Integer, default=0)
    note_chars: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class Lane(Base):
    """One (webhook, chat) queue and its head: the oldest pending delivery, the only one a
    claim may start from (per-chat order). A claim reads heads here, so its cost does not
    grow with the deliveries waiting behind them, or behind a webhook that backs off.

    Kept by the statements that make a delivery pending or delivered (``store.deliveries``);
    a lane with nothing pending keeps its row, with no head."""

    __tablename__ = "lanes"
    __table_args__ = (
        Index(
            "ix_lanes_due",
            "webhook_id",
            "due_at",
            "head_id",
            sqlite_where=text("head_id IS NOT NULL"),
            postgresql_where=text("head_id IS NOT NULL"),
        ),
    )
    webhook_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    chat_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_id: Mapped[int | None] = mapped_column(default=None)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    """The head's ``due_at``: the claim walks a webhook's heads in this order."""


class BundleMessage(Base):
    """Which messages a bundle delivery carries, in arrival order."""

    __tablename__ = "bundle_messages"
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), primary_key=True)
    message_id: Mapped[int] = mapped_column(primary_key=True)
    """No foreign key, for the same reason as ``Delivery.message_id``."""


class Attempt(Base):
    """One HTTP request and its response: a row of the downloadable request log."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_webhook", "webhook_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"))
    delivery_id: Mapped[int | None] = mapped_column(default=None)
    """A log line outlives its delivery: retention removes delivered deliveries."""
    at: Mapped[datetime]
    url: Mapped[str] = mapped_column(String(2000))
    request_headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_body: Mapped[str] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    response_body: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[float] = mapped_column(Float)


class Activity(Base):
    """One action shown in a webhook's activity log (delivered, failed, skipped ...)."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_webhook", "webhook_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[int | None] = mapped_column(default=None)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    request_id: Mapped[int | None] = mapped_column(Integer, default=None)
    """The attempt this action made, if any. No foreign key: pruning the request log never
    has to wait for the activity log (which keeps fewer rows, so only newer attempts)."""


class Alert(Base):
    """An e-mail to send; written in the transaction that decides it, so it is never lost."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class LoginCounter(Base):
    """Login attempts of one e-mail or one client address in the current window. Kept in
    the database, so a limit holds across every ``chathooks api`` behind a load balancer."""

    __tablename__ = "login_counters"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(index=True)


class PageSession(Base):
    """A logged-in browser. Its cookie holds a random token and only the token's hash is
    stored: deleting the row ends the session at once, whoever holds a copy of the cookie."""

    __tablename__ = "page_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    teammate_id: Mapped[int] = mapped_column(ForeignKey("teammates.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Source(Base):
    """A WhatsApp connection that pushes its messages to ``/in/{key}`` (SPEC §8).

    ``secrets`` holds the kind's own (verify token, app secret, HMAC key, API key ...), so a
    new kind needs no new column. ``teammate_id`` owns the accounts its events create; none
    means the workspace owner.
    """

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    kind: Mapped[SourceKind] = mapped_column(_stored_as_text(SourceKind, 32))
    name: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    secrets: Mapped[dict[str, Any]] = mapped_column(JSON)
    teammate_id: Mapped[int | None] = mapped_column(ForeignKey("teammates.id"), default=None)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    ignored: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    last_event_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class InboundRequest(Base):
    """One request a source received and what became of it (secrets masked)."""

    __tablename__ = "inbound_requests"
    __table_args__ = (Index("ix_inbound_requests_source", "source_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    at: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(8))
    status_code: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text, default="")


class SendSlot(Base):
    """One paced target's request schedule, shared by every worker: the moment (seconds
    since the epoch, on the database server's clock) at which its next request may start.
    ``target`` names what is paced: ``webhook:<id>`` or ``account:<id>`` (sends through
    one WhatsApp account)."""

    __tablename__ = "send_slots"
    target: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float)


class Outgoing(Base):
    """One message to send through a source's sender (``chathooks.send``).

    A lane is (account, ``chat_key``): the chat's external id, or ``<digits>@c.us`` for a
    chat started by phone (``chat_id`` is then set once the sent message made the chat).
    Only a lane's oldest ``queued`` row is claimed, so a chat's sends go out in order. A
    worker owns a queued row while ``lease_until`` is in the future and, on PostgreSQL,
    while the liveness lock ``leased_by`` names is held (as deliveries). ``source_id`` and
    ``chat_id`` are plain ids: removing a source or a chat must not be blocked by its sends.
    """

    __tablename__ = "outgoing"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index(
            "ix_outgoing_due",
            "next_try_at",
            "id",
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_outgoing_lane",
            "account_id",
            "chat_key",
            "id",
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_outgoing_sent_id",
            "source_id",
            "sender_message_id",
            sqlite_where=text("sender_message_id != ''"),
            postgresql_where=text("sender_message_id != ''"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("whatsapp_accounts.id"))
    source_id: Mapped[int] = mapped_column(Integer)
    chat_id: Mapped[int | None] = mapped_column(Integer, default=None)
    chat_key: Mapped[str] = mapped_column(String(200))
    is_group: Mapped[bool] = mapped_column(Boolean)
    phone: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    template: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    teammate_id: Mapped[int | None] = mapped_column(Integer, default=None)
    sender_name: Mapped[str] = mapped_column(String(200))
    """The teammate who wrote it (the chat page), or the workspace (the API)."""
    status: Mapped[OutgoingStatus] = mapped_column(_stored_as_text(OutgoingStatus, 16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime]
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    leased_by: Mapped[int | None] = mapped_column(default=None)
    sender_message_id: Mapped[str] = mapped_column(String(200), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str] = mapped_column(String(64), default="")
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """The first answer given for ``idempotency_key``: a retry with the key gets it again."""
    created_at: Mapped[datetime]
    queued_at: Mapped[datetime]
    """When it was last queued (created, or retried from the page or API): a send that
    still cannot go out ``send_give_up_seconds`` later fails."""
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
