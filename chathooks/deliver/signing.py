"""Standard Webhooks signatures: the headers that let a receiver verify a request."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache

USER_AGENT = "chathooks/0.1 (+https://www.standardwebhooks.com)"
ROTATION_OVERLAP = timedelta(hours=24)
"""How long the previous secret keeps signing after a rotation (SPEC §5)."""


SECRET_PREFIX = "whsec_"


@lru_cache(maxsize=1024)
def _key(secret: str) -> bytes:
    """The secret's key bytes, decoded as ``standardwebhooks.Webhook`` does (padding added
    in case it is unpadded base64)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")


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
    secrets: Sequence[str], message_id: str, at: datetime, body: bytes
) -> dict[str, str]:
    """``webhook-signature`` holds one ``v1,…`` per secret, space-separated: HMAC-SHA256
    of ``{id}.{timestamp}.{body}``, as ``standardwebhooks`` signs, but of the bytes sent
    (that library takes text and encodes a copy of a bundle's ~14 KB body per secret)."""
    stamp = str(int(at.timestamp()))
    head = f"{message_id}.{stamp}.".encode()
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": " ".join(_signature(_key(s), head, body) for s in secrets),
    }


def _signature(key: bytes, head: bytes, body: bytes) -> str:
    mac = hmac.new(key, head, hashlib.sha256)
    mac.update(body)
    return "v1," + base64.b64encode(mac.digest()).decode()
