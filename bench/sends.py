"""Sends (issue 18): messages to WhatsApp through each kind of source, against a fake sender.

One ``chathooks serve`` on SQLite and one ``bench.fake_sender`` process (every kind's send
answered at once with its success shape). Each kind gets a workspace of its own with one
source of that kind whose ``api_url`` is the fake's; the source's **Send sample** makes
its business account (every kind's sample names the same number, hence one workspace
each). Then, kind after kind, ``--send-messages`` texts are queued through
``POST /api/v1/messages/send`` (16 in flight) to ``--send-chats`` phone numbers in turn
(each number is a chat: its sends go out one at a time, in order; different chats in
parallel, up to ``CHATHOOKS_SEND_CONCURRENCY``), and the bench waits until every one is
``sent`` (the fake counts the calls, then serve's ``chathooks_sends_total``).

The pace per account (1/s for WAHA and Evolution, 20/s for the Cloud API and Twilio) would
cap the figure at the pace: the phase sets ``CHATHOOKS_SEND_PER_SECOND`` to ``PACE`` so the
measurement is chathooks' own cost. No webhook is set up: the sent messages are stored
and queued for nobody (the delivery side is measured elsewhere).

Figures per kind: sends/s (first POST start → last ``sent_at``), CPU ms per send of serve
(the API's POSTs and the worker's sends) and of the fake, the same after the last 202 (the
worker alone), the 202 → ``sent_at`` latency p50/p99 (wall clock on both sides:
``sent_at`` is chathooks' clock), per-chat order at the fake; then the same for N sends to
one chat (Cloud API); and the raw limit: ``bench.rawclient`` (plain aiohttp, keep-alive,
as many requests in flight as chathooks' sends) against the same fake route, with its own
CPU per request.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import aiohttp

from bench.busy import order_check
from bench.common import PYTHON, ROOT, free_port, percentile, start, stop, wait_ready
from bench.config import Config
from bench.harness import (
    ADMIN_TOKEN,
    Cleanup,
    Service,
    api,
    start_profiler,
    start_service,
    stop_profiler,
)
from bench.payload import chat_phone, text_for
from bench.procs import Watch

KINDS = ("whatsapp_cloud", "waha", "evolution", "twilio")
SECRETS = {
    "whatsapp_cloud": {
        "app_secret": "bench-app-secret-0123456789abcdef",
        "access_token": "bench-access-token-0123456789",
        "phone_number_id": "106540352242922",
    },
    "waha": {"x_api_key": "bench-waha-api-key"},
    "evolution": {"api_key": "BENCH0EVOLUTION0API0KEY000000000", "instance": "bench"},
    "twilio": {
        "auth_token": "bench0twilio0auth0token000000000",
        "account_sid": "AC" + "0" * 32,
        "sender": "whatsapp:+14155238886",
    },
}
"""Receiving and sending secrets of each kind's bench source (``api_url`` is added)."""
ACCOUNT = "+16505551111"
"""The business number every kind's Send sample names."""
PACE = 100_000
"""``CHATHOOKS_SEND_PER_SECOND`` in this phase: far above any rate reached, so no send
waits for its account's pace."""
POSTS_IN_FLIGHT = 16


async def phase_sends(cleanup: Cleanup, cfg: Config) -> dict[str, Any]:
    port = free_port()
    log = cleanup.tmp / "fake-sender.log"
    proc = start([PYTHON, "-m", "bench.fake_sender", str(port)], log, cwd=ROOT)
    cleanup.procs.append(proc)
    fake = Fake(proc, f"http://127.0.0.1:{port}")
    await wait_ready(f"{fake.url}/_stats", fake.proc, timeout=30, log=log)
    env = {
        "CHATHOOKS_SEND_PER_SECOND": str(PACE),
        "CHATHOOKS_SEND_CONCURRENCY": str(cfg.send_concurrency),
        "CHATHOOKS_SENDER_HOSTS": f"127.0.0.1:{port}",
        "CHATHOOKS_LOG_LEVEL": "WARNING",
    }
    url = f"sqlite:///{cleanup.tmp / 'sends.db'}"
    service = await start_service(cleanup, ["chathooks", "serve"], url, "serve-sends", env)
    deadline = time.monotonic() + cfg.phase_timeout
    results: dict[str, Any] = {
        "sends_per_kind": cfg.send_messages,
        "chats": cfg.send_chats,
        "send_concurrency": cfg.send_concurrency,
        "posts_in_flight": POSTS_IN_FLIGHT,
        "send_per_second_setting": PACE,
        "database": "sqlite",
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        tokens = {kind: await _sending_workspace(http, service, kind, fake.url) for kind in KINDS}
        for kind in KINDS:
            profiler = start_profiler(cleanup, service, f"sends-{kind}") if cfg.profile else None
            run = Run(http, service, fake, tokens[kind], kind)
            results[kind] = await run.measure(cfg.send_messages, cfg.send_chats, deadline)
            stop_profiler(profiler)
            results[kind]["raw"] = await _raw(cleanup, fake, kind, cfg)
            results[kind]["ratio_to_raw"] = (
                results[kind]["sends_per_s"] / results[kind]["raw"]["requests_per_second"]
            )
        one_chat = Run(http, service, fake, tokens[KINDS[0]], KINDS[0])
        results["one_chat"] = await one_chat.measure(cfg.send_messages, 1, deadline)
    cloud_raw = results[KINDS[0]]["raw"]["requests_per_second"]
    results["one_chat"]["ratio_to_raw"] = results["one_chat"]["sends_per_s"] / cloud_raw
    stop(service.proc)
    stop(fake.proc)
    return results


async def _sending_workspace(
    http: aiohttp.ClientSession, service: Service, kind: str, fake_url: str
) -> str:
    """A workspace with a ``kind`` source that sends to the fake, and the business account
    its Send sample makes; returns the workspace's token."""
    v1 = f"{service.base}/api/v1"
    owner = {"name": f"Bench {kind}", "owner_name": "Bench", "owner_email": f"{kind}@bench.example"}
    token = str((await api(http, "POST", f"{v1}/workspaces", ADMIN_TOKEN, owner))["api_token"])
    secrets = {**SECRETS[kind], "api_url": f"{fake_url}/{kind}"}
    body = {"kind": kind, "name": f"Bench {kind}", "secrets": secrets}
    source = await api(http, "POST", f"{v1}/sources", token, body)
    sample = await api(http, "POST", f"{v1}/sources/{source['id']}/sample", token)
    if not sample["success"]:
        raise RuntimeError(f"{kind} sample: {sample}")
    return token


@dataclass(frozen=True)
class Fake:
    proc: subprocess.Popen[bytes]
    url: str


@dataclass
class Run:
    """One kind's sends: queued through the API, waited for, then read back."""

    http: aiohttp.ClientSession
    service: Service
    fake: Fake
    token: str
    kind: str
    queued: dict[int, tuple[int, float]] = field(default_factory=dict)
    """Text index → (outgoing id, wall time of its 202)."""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def measure(self, count: int, chats: int, deadline: float) -> dict[str, Any]:
        """``count`` sends to ``chats`` numbers in turn. Besides the whole run's figures,
        those of its tail (after the last 202: the worker alone, the API idle)."""
        async with self.http.post(f"{self.fake.url}/_reset") as resp:
            resp.raise_for_status()
        before = await self._sends_counted()
        async with Watch([self.service.pid, self.fake.proc.pid]) as watch:
            started = time.time()
            await self._queue(count, chats)
            queued_at = time.time()
            watch.sample()
            cpu_queued = watch.cpu(self.service.pid)
            await self._wait(count, deadline)
            counted = await self._sends_counted(before, count, deadline)
            watch.sample()
        outgoing = await self._read_back()
        sent_at = {i: _wall(o["sent_at"]) for i, o in outgoing.items() if o["status"] == "sent"}
        latencies = [(sent_at[i] - self.queued[i][1]) * 1000 for i in sent_at]
        last = max(sent_at.values(), default=started)
        tail = sum(at > queued_at for at in sent_at.values())
        serve_cpu = watch.cpu(self.service.pid)
        return {
            "queued": len(self.queued),
            "sent": len(sent_at),
            "chats": chats,
            "outcomes": counted,
            "queue_per_s": len(self.queued) / (queued_at - started),
            "sends_per_s": len(sent_at) / (last - started) if last > started else 0.0,
            "seconds": last - started,
            "latency_ms_from_202": {
                "p50": percentile(latencies, 50),
                "p99": percentile(latencies, 99),
                "max": max(latencies, default=None),
            },
            "serve_cpu_ms_per_send": serve_cpu * 1000 / count,
            "fake_cpu_ms_per_send": watch.cpu(self.fake.proc.pid) * 1000 / count,
            "after_last_202": {
                "sends": tail,
                "sends_per_s": tail / (last - queued_at) if tail else None,
                "serve_cpu_ms_per_send": (serve_cpu - cpu_queued) * 1000 / tail if tail else None,
            },
            "peak_rss_mib": watch.peak_rss_mib,
            **await self._order(chats),
        }

    async def _queue(self, count: int, chats: int) -> None:
        url = f"{self.service.base}/api/v1/messages/send"
        pending: Iterator[int] = iter(range(count))

        async def poster() -> None:
            for index in pending:
                body = {
                    "whatsapp_account_phone": ACCOUNT,
                    "phone": chat_phone(index % chats),
                    "text": text_for(index),
                }
                async with self.http.post(url, json=body, headers=self.headers) as resp:
                    answer = await resp.json()
                    if resp.status != 202:
                        raise RuntimeError(f"{url}: {resp.status} {answer}")
                self.queued[index] = (int(answer["id"]), time.time())

        await asyncio.gather(*(poster() for _ in range(POSTS_IN_FLIGHT)))

    async def _wait(self, count: int, deadline: float) -> None:
        """Until the fake has answered ``count`` sends (polling it, not serve)."""
        progress, last_change = -1, time.monotonic()
        while True:
            async with self.http.get(f"{self.fake.url}/_stats") as resp:
                sends = int((await resp.json())["sends"])
            if sends >= count:
                return
            now = time.monotonic()
            if sends != progress:
                progress, last_change = sends, now
            if now > deadline or now - last_change > 60:
                raise TimeoutError(f"{self.kind}: the fake sender got {sends}/{count} sends")
            await asyncio.sleep(0.05)

    async def _sends_counted(
        self, before: dict[str, float] | None = None, count: int = 0, deadline: float = 0.0
    ) -> dict[str, float]:
        """serve's ``chathooks_sends_total`` of this kind by outcome (less ``before``); with
        ``count``, waits until that many are recorded (sent or failed)."""
        while True:
            async with self.http.get(f"{self.service.base}/metrics") as resp:
                text = await resp.text()
            found = {outcome: 0.0 for outcome in ("sent", "retry", "failed")}
            for line in text.splitlines():
                if line.startswith(f'chathooks_sends_total{{kind="{self.kind}",'):
                    outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
                    found[outcome] = float(line.rsplit(" ", 1)[1]) - (before or {}).get(
                        outcome, 0.0
                    )
            if found["sent"] + found["failed"] >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)

    async def _read_back(self) -> dict[int, dict[str, Any]]:
        """Every send's ``GET /api/v1/outgoing/{id}`` (after the measurement)."""
        found: dict[int, dict[str, Any]] = {}
        pending = iter(self.queued.items())

        async def reader() -> None:
            for index, (outgoing_id, _) in pending:
                url = f"{self.service.base}/api/v1/outgoing/{outgoing_id}"
                async with self.http.get(url, headers=self.headers) as resp:
                    found[index] = await resp.json()

        await asyncio.gather(*(reader() for _ in range(POSTS_IN_FLIGHT)))
        return found

    async def _order(self, chats: int) -> dict[str, int]:
        """Per chat, the sends as the fake got them against the order they were queued in
        (their outgoing ids), summed over the chats; and sends the fake got twice."""
        async with self.http.get(f"{self.fake.url}/_sent") as resp:
            got: list[tuple[float, str, str]] = await resp.json()
        posted: dict[str, list[str]] = {}
        for index, (outgoing_id, _) in sorted(self.queued.items(), key=lambda q: q[1][0]):
            posted.setdefault(_digits(chat_phone(index % chats)), []).append(str(outgoing_id))
        arrived: dict[str, list[str]] = {}
        for _, kind, body in got:
            chat, index = _recipient_and_index(kind, body)
            arrived.setdefault(chat, []).append(str(self.queued.get(index, (-1, 0.0))[0]))
        totals = {"duplicates": sum(len(ids) - len(set(ids)) for ids in arrived.values())}
        for chat in posted.keys() | arrived.keys():
            first = list(dict.fromkeys(arrived.get(chat, [])))
            for key, value in order_check(posted.get(chat, []), first).items():
                totals[key] = totals.get(key, 0) + value
        return totals


def _recipient_and_index(kind: str, body: str) -> tuple[str, int]:
    """The chat (the recipient's digits) and the text's index (``#<index> …``) of one
    send body as the fake got it."""
    if kind == "twilio":
        form = {k: v[0] for k, v in parse_qs(body).items()}
        to, text = form["To"], form["Body"]
    else:
        sent = json.loads(body)
        to = sent.get("chatId") or sent.get("number") or sent.get("to")
        text = sent.get("text")
        text = text["body"] if isinstance(text, dict) else text
    return _digits(str(to)), int(str(text).split(" ", 1)[0].lstrip("#"))


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _wall(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def _raw(cleanup: Cleanup, fake: Fake, kind: str, cfg: Config) -> dict[str, Any]:
    """``bench.rawclient`` against the fake's route for ``kind``, as many in flight as
    chathooks sends; with the raw client's (its own count) and the fake's CPU per request."""
    log = cleanup.tmp / "rawclient-sends.log"
    proc = await asyncio.create_subprocess_exec(
        *(PYTHON, "-m", "bench.rawclient", f"{fake.url}/{kind}/raw"),
        *(str(cfg.raw_requests), str(cfg.send_concurrency)),
        stdout=asyncio.subprocess.PIPE,
        stderr=log.open("ab"),
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        async with Watch([fake.proc.pid]) as watch:
            out, _ = await asyncio.wait_for(proc.communicate(), cfg.phase_timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"raw client failed: {log.read_text()[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    done = result["requests"] or 1
    result["client_cpu_ms_per_request"] = result["cpu_seconds"] * 1000 / done
    result["fake_cpu_ms_per_request"] = watch.cpu(fake.proc.pid) * 1000 / done
    return result
