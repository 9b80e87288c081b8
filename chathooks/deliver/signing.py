"""Standard Webhooks signatures: the headers that let a receiver verify a request."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from standardwebhooks import Webhook

USER_AGENT = "chathooks/0.1 (+https://www.standardwebhooks.com)"


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def webhook_id(delivery_uuid: str) -> str:
    """The delivery's stable id: the same on every attempt, for receivers to de-duplicate."""
    return "msg_" + delivery_uuid.replace("-", "")


def signed_headers(secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": _signer(secret).sign(message_id, at, body),
    }
