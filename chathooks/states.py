"""The values each state machine may take, named once. The tables, the API's schemas (and so
the OpenAPI's enums), the pages and the metrics all take them from here: a new status,
period or source kind is one new member, and nothing that lists them can miss it.

The docstrings of the enums the API shows are the OpenAPI's descriptions of them."""

from __future__ import annotations

from enum import StrEnum


class WebhookStatus(StrEnum):
    """A webhook's stored status: what it does with new messages and its backlog."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    """Turned off by hand: what was queued still goes out, new messages are not queued."""
    AUTO_DISABLED = "auto_disabled"
    """Turned off after too many failed attempts or a 410: new messages are queued, and the
    backlog waits until the webhook is enabled again."""


class WebhookState(StrEnum):
    """How a webhook is doing: enabled, failing (enabled, but its latest attempt failed),
    disabled, or auto_disabled."""

    ENABLED = "enabled"
    FAILING = "failing"
    DISABLED = "disabled"
    AUTO_DISABLED = "auto_disabled"

    @classmethod
    def of(cls, status: WebhookStatus, consecutive_failures: int) -> WebhookState:
        """The stored status as the API, the pages, ``/metrics`` and ``chathooks status``
        show it: an enabled webhook with failures since its last success is failing."""
        if status is WebhookStatus.ENABLED and consecutive_failures > 0:
            return cls.FAILING
        return cls(status.value)


class DeliveryStatus(StrEnum):
    """``open`` while a bundle gathers, ``pending`` until a 2xx answer, then ``delivered``."""

    OPEN = "open"
    PENDING = "pending"
    DELIVERED = "delivered"
    TEST = "test"
    """A test send's bundle, never sent again: kept so the permalink in its note works."""


class OutgoingStatus(StrEnum):
    """A send through a source's sender: ``queued`` until the sender accepts it (retried
    meanwhile), then ``sent``; ``failed`` when the sender refused it, with its reason."""

    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class Aggregation(StrEnum):
    """One request per message (none), or one per chat per period aligned to UTC."""

    NONE = "none"
    HOUR = "1h"
    SIX_HOURS = "6h"
    TWELVE_HOURS = "12h"
    DAY = "24h"


class SourceKind(StrEnum):
    """A kind of WhatsApp sender (its module in chathooks is ``sources.<kind>``)."""

    WHATSAPP_CLOUD = "whatsapp_cloud"
    WAHA = "waha"
    EVOLUTION = "evolution"
    TWILIO = "twilio"


class FailureClass(StrEnum):
    """Why a webhook request failed, in few enough values to be a metric's label."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    REDIRECT = "3xx"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"
    OTHER = "other"

    @classmethod
    def of(cls, status: int | None, error: str) -> FailureClass:
        """From a failed request's status, or its error when no answer came."""
        if status is None:
            return cls.TIMEOUT if error == TIMED_OUT else cls.CONNECTION
        return {3: cls.REDIRECT, 4: cls.CLIENT_ERROR, 5: cls.SERVER_ERROR}.get(
            status // 100, cls.OTHER
        )


TIMED_OUT = "timed out"
"""The error of a request that got no answer in time (what the transport records)."""
