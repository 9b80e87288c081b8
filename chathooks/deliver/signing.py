"""Standard Webhooks signatures: the headers that let a receiver verify a request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from standardwebhooks import Webhook

USER_AGENT = "chathooks/0.1 (+https://www.standardwebhooks.com)"
ROTATION_OVERLAP = timedelta(hours=24)
"""How long the previous secret keeps signing after a rotation (SPEC §5)."""


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def webhook_id(delivery_uuid: str) -> str:
    """The delivery's stable id: the same on every attempt, for receivers to de-duplicate."""
    return "msg_" + delivery_uuid.replace("-", "")


def signing_secrets(
    secret: str, previous: str, previous_until: datetime | None, at: datetime
) -> tuple[str, ...]:
    """The current secret, then the previous one while its overlap lasts: a receiver that
    still verifies with the previous secret keeps accepting until it is updated."""
    if previous and previous_until is not None and at < previous_until:
        return (secret, previous)
    return (secret,)


def signed_headers(
    secrets: Sequence[str], message_id: str, at: datetime, body: str
) -> dict[str, str]:
    """``webhook-signature`` holds one ``v1,…`` per secret, space-separated."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(_signer(s).sign(message_id, at, body) for s in secrets),
    }
