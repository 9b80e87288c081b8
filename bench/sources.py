"""The sources phases: webhooks of Meta's Cloud API, WAHA and Evolution through a source,
one message per request as the senders send them, next to the project's own single-message
API in the same service.

- Under ``serve`` (``run.phase_single``): the API and the Cloud API source POST ``count``
  messages, ``concurrency`` requests in flight, to one ``chathooks serve`` (SQLite, one
  ``aggregation: none`` webhook); figures per half: messages per second (first POST start
  → last answer) and latency from each message's 200/202 to its receipt at the receiver.
- The ingest path alone (``phase_ingest_alone``, issue 16's targets 1 and 2): the same,
  on ``chathooks api`` (nothing delivers), for the API and all three kinds of source,
  each as a share of the minimal FastAPI endpoint.
- A flood (``phase_flood``, issue 15): the API's median answer and ``serve``'s memory while
  ``flood_requests`` requests of ``flood_bytes`` with a bad signature are in flight at all
  times, side by side with the same probe without the flood.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.common import PYTHON, ROOT, percentile, start, stop
from bench.config import Config
from bench.harness import (
    Cleanup,
    Receiver,
    set_up_workspace,
    start_profiler,
    start_service,
    stop_profiler,
)
from bench.payload import ACCOUNT_PHONE, event, text_for
from bench.procs import Watch

APP_SECRET = "bench-app-secret-0123456789abcdef"
HMAC_KEY = "bench-waha-hmac-key-0123456789abcdef"
API_KEY = "BENCH0EVOLUTION0API0KEY000000000"
SECRETS = {
    "whatsapp_cloud": {"app_secret": APP_SECRET},
    "waha": {"hmac_key": HMAC_KEY},
    "evolution": {"api_key": API_KEY},
}


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


def waha_webhook(index: int, chat: int) -> tuple[str, bytes]:
    """(message id, body): one received text as WAHA's ``message.any`` event."""
    message_id = f"true_9725{chat:08d}@c.us_BENCH{index}"
    own = ACCOUNT_PHONE.lstrip("+") + "@c.us"
    body = {
        "event": "message.any",
        "session": "default",
        "engine": "WEBJS",
        "me": {"id": own, "pushName": "Bench"},
        "payload": {
            "id": message_id,
            "timestamp": int(time.time()),
            "from": f"9725{chat:08d}@c.us",
            "fromMe": False,
            "to": own,
            "body": text_for(index),
            "hasMedia": False,
            "ack": 1,
            "_data": {"notifyName": f"Contact {chat}"},
        },
    }
    return message_id, json.dumps(body).encode()


def evolution_webhook(index: int, chat: int) -> tuple[str, bytes]:
    """(message id, body): one received text as Evolution's ``messages.upsert`` event."""
    message_id = f"BENCH{index:016X}"
    body = {
        "event": "messages.upsert",
        "instance": "bench",
        "data": {
            "key": {
                "remoteJid": f"9725{chat:08d}@s.whatsapp.net",
                "fromMe": False,
                "id": message_id,
            },
            "pushName": f"Contact {chat}",
            "message": {"conversation": text_for(index)},
            "messageType": "conversation",
            "messageTimestamp": int(time.time()),
        },
        "date_time": datetime.now(UTC).isoformat(),
        "sender": ACCOUNT_PHONE.lstrip("+") + "@s.whatsapp.net",
        "apikey": API_KEY,
    }
    return message_id, json.dumps(body).encode()


def waha_signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(HMAC_KEY.encode(), body, hashlib.sha512).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Webhook-Hmac": digest,
        "X-Webhook-Hmac-Algorithm": "sha512",
    }


WEBHOOKS = {
    "whatsapp_cloud": (cloud_webhook, signed),
    "waha": (waha_webhook, waha_signed),
    "evolution": (evolution_webhook, lambda _: {"Content-Type": "application/json"}),
}


async def create_source(
    http: aiohttp.ClientSession, base: str, token: str, kind: str = "whatsapp_cloud"
) -> str:
    """A source of ``kind``; returns its URL on this service."""
    async with http.post(
        f"{base}/api/v1/sources",
        json={"kind": kind, "name": f"Bench {kind}", "secrets": SECRETS[kind]},
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


def source_requests(
    count: int, chats: int, kind: str = "whatsapp_cloud"
) -> list[tuple[str, bytes, dict[str, str]]]:
    webhook, signing = WEBHOOKS[kind]
    made = [webhook(i, i % chats) for i in range(count)]
    return [(message_id, body, signing(body)) for message_id, body in made]


KINDS = ("whatsapp_cloud", "waha", "evolution")


async def phase_ingest_alone(
    cleanup: Cleanup,
    receiver: Receiver,
    cfg: Config,
    minimal: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Issue 16's targets 1 and 2: the minimal endpoint, then, on one ``chathooks api``
    (SQLite; nothing delivers), the single-message API and a source of each kind, one
    message per request; each as a share of the minimal endpoint's rate."""
    url = f"sqlite:///{cleanup.tmp / 'ingest-alone.db'}"
    service = await start_service(cleanup, ["chathooks", "api"], url, "api-ingest-alone", {})
    count, chats = cfg.source_messages, max(1, cfg.source_messages // 10)
    results: dict[str, Any] = {"concurrency": cfg.source_concurrency, "minimal": await minimal()}
    floor = results["minimal"]["msg_per_s"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        token = await set_up_workspace(http, service, receiver.hook, "none")
        runs = {"api": (f"{service.base}/api/v1/messages", api_requests(token, count, chats), 202)}
        for kind in KINDS:
            target = await create_source(http, service.base, token, kind)
            runs[kind] = (target, source_requests(count, chats, kind), 200)
        for label, (target, requests, expected) in runs.items():
            profiler = start_profiler(cleanup, service, f"alone-{label}") if cfg.profile else None
            async with Watch([service.pid]) as watch:
                posted = await post_each(http, target, requests, cfg.source_concurrency, expected)
                watch.sample()
            stop_profiler(profiler)
            results[label] = {
                "messages": len(posted.answered),
                "msg_per_s": posted.rate,
                "ratio_to_minimal": posted.rate / floor,
                **watch.figures(len(posted.answered)),
            }
    stop(service.proc)
    return results


async def phase_flood(cleanup: Cleanup, receiver: Receiver, cfg: Config) -> dict[str, Any]:
    """Issue 15's cheap refusals: one ``chathooks serve`` (SQLite, one webhook, a Cloud API
    source); ``flood_probes`` single-message API requests one after another, first alone,
    then while ``bench.flood`` keeps ``flood_requests`` forged requests of ``flood_bytes``
    in flight. Figures: the probes' median and p99 answer time and serve's resident memory
    (the largest sample) in each run, and flood ÷ idle."""
    url = f"sqlite:///{cleanup.tmp / 'flood.db'}"
    service = await start_service(cleanup, ["chathooks", "serve"], url, "serve-flood", {})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        token = await set_up_workspace(http, service, receiver.hook, "none")
        source = await create_source(http, service.base, token)
        probes = api_requests(token, 2 * cfg.flood_probes, 10)
        idle = await _probed(http, service, probes[: cfg.flood_probes])
        log = cleanup.tmp / "flood.log"
        args = [PYTHON, "-m", "bench.flood", source, str(cfg.flood_bytes)]
        flooder = start([*args, str(cfg.flood_requests)], log, cwd=ROOT)
        cleanup.procs.append(flooder)
        deadline = time.monotonic() + cfg.phase_timeout
        while "flooding" not in log.read_text():
            if flooder.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the flood did not start: {log.read_text()[-2000:]}")
            await asyncio.sleep(0.1)
        flooded = await _probed(http, service, probes[cfg.flood_probes :])
        stop(flooder)
    stop(service.proc)
    answers = json.loads(log.read_text().strip().splitlines()[-1])["answers"]
    return {
        "flood_requests": cfg.flood_requests,
        "flood_bytes": cfg.flood_bytes,
        "idle": idle,
        "flood": {**flooded, "flood_answers": answers},
        "median_ratio": flooded["median_ms"] / idle["median_ms"],
        "rss_ratio": flooded["rss_mib"] / idle["rss_mib"],
    }


def forged_body(size: int) -> bytes:
    """A Cloud API body of ``size`` bytes (at least a small one) that no secret signed."""
    head = b'{"object":"whatsapp_business_account","entry":[],"pad":"'
    return head + b"x" * max(0, size - len(head) - 2) + b'"}'


async def _probed(
    http: aiohttp.ClientSession, service: Any, probes: list[tuple[str, bytes, dict[str, str]]]
) -> dict[str, Any]:
    """Single-message API requests one after another: their answer times, and serve's
    memory meanwhile."""
    latencies = []
    messages = f"{service.base}/api/v1/messages"
    async with Watch([service.pid], interval=0.2) as watch:
        started = time.monotonic()
        for _, body, headers in probes:
            sent = time.monotonic()
            async with http.post(messages, data=body, headers=headers) as r:
                await r.read()
                if r.status != 202:
                    raise RuntimeError(f"probe: {r.status} {await r.text()}")
            latencies.append((time.monotonic() - sent) * 1000)
        watch.sample()
        rss = watch.rss_between(started, time.monotonic())
    return {
        "probes": len(latencies),
        "median_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "rss_mib": max(rss),
    }
