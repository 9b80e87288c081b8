"""The sources phase: Meta Cloud API webhooks through a source, one message per request as
Meta sends them, next to the project's own single-message API in the same service.

Both halves POST ``count`` messages, ``concurrency`` requests in flight, to one
``chathooks serve`` (SQLite, one ``aggregation: none`` webhook); figures per half: messages
per second (first POST start → last answer) and latency from each message's 200/202 to
its receipt at the receiver.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.common import percentile
from bench.payload import ACCOUNT_PHONE, event, text_for

APP_SECRET = "bench-app-secret-0123456789abcdef"


@dataclass(frozen=True)
class Posted:
    started: float
    finished: float
    answered: dict[str, float]
    """message_id → when its request was answered."""

    @property
    def rate(self) -> float:
        return len(self.answered) / (self.finished - self.started)

    def latencies(self, arrivals: dict[str, float]) -> list[float]:
        return [(arrivals[m] - t) * 1000 for m, t in self.answered.items() if m in arrivals]

    def figures(self, arrivals: dict[str, float]) -> dict[str, Any]:
        lat = self.latencies(arrivals)
        return {
            "messages": len(self.answered),
            "msg_per_s": self.rate,
            "latency_ms_from_answer": {
                "p50": percentile(lat, 50),
                "p99": percentile(lat, 99),
                "max": max(lat) if lat else None,
            },
        }


def cloud_webhook(index: int, chat: int) -> tuple[str, bytes]:
    """(message id, body): one received text in Meta's ``messages`` webhook shape."""
    message_id = f"wamid.bench-{index}"
    sender = f"9725{chat:08d}"
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": ACCOUNT_PHONE.lstrip("+"),
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": f"Contact {chat}"}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": message_id,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text_for(index)},
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }
    return message_id, json.dumps(body).encode()  # Meta escapes non-ASCII, as json does


def signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


async def post_each(
    http: aiohttp.ClientSession,
    url: str,
    requests: list[tuple[str, bytes, dict[str, str]]],
    concurrency: int,
    expected: int,
) -> Posted:
    """POST every (message id, body, headers), ``concurrency`` in flight."""
    answered: dict[str, float] = {}
    pending = iter(requests)
    started = time.monotonic()

    async def poster() -> None:
        for message_id, body, headers in pending:
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != expected:
                    raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")
            answered[message_id] = time.monotonic()

    await asyncio.gather(*(poster() for _ in range(concurrency)))
    return Posted(started, max(answered.values()), answered)


async def create_source(http: aiohttp.ClientSession, base: str, token: str) -> str:
    """A Cloud API source; returns its URL on this service."""
    async with http.post(
        f"{base}/api/v1/sources",
        json={"kind": "whatsapp_cloud", "name": "Bench", "secrets": {"app_secret": APP_SECRET}},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        answer = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"create source: {resp.status} {answer}")
    return base + "/in/" + str(answer["url"]).rsplit("/", 1)[1]


def api_requests(token: str, count: int, chats: int) -> list[tuple[str, bytes, dict[str, str]]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    now = datetime.now(UTC)
    return [
        (f"api-{i}", json.dumps(event("api", i, i % chats, now)).encode(), headers)
        for i in range(count)
    ]


def source_requests(count: int, chats: int) -> list[tuple[str, bytes, dict[str, str]]]:
    made = [cloud_webhook(i, i % chats) for i in range(count)]
    return [(message_id, body, signed(body)) for message_id, body in made]
