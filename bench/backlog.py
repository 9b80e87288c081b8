"""A backlog after an outage (issue 9, target 5): a million messages while the receiver
answers 503, then the drain once it is back.

``chathooks serve`` on SQLite with one ``aggregation: none`` webhook. The receiver answers
503; N messages (default 1,000,000) over 10,000 chats go in through the batch API (1,000
per batch, 2 in flight) while the webhook fails and backs off. Then the receiver answers
200 again and the bench does what the webhook's owner would: ``POST .../retry`` (try now),
or ``PATCH {"enabled": true}`` if it was auto-disabled meanwhile; then waits for every
message. The resident set of chathooks' processes is sampled every second throughout:
it should stay flat, whatever the backlog's size.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import stop
from bench.config import Config
from bench.harness import (
    Cleanup,
    Receiver,
    api,
    ingest,
    set_up_workspace,
    start_profiler,
    start_service,
    stop_profiler,
)
from bench.payload import iter_batches
from bench.procs import Watch

FLAT = 1.10
"""RSS is flat if, at the end of the drain, it is within 10 % of what it was a quarter
into the ingest (past the start-up and the first batches, before most of the backlog)."""


async def resume(http: aiohttp.ClientSession, base: str, token: str) -> str:
    """Make the (only) webhook send now; returns the status it had."""
    hooks = await api(http, "GET", f"{base}/api/v1/outbound-webhooks", token)
    url = f"{base}/api/v1/outbound-webhooks/{hooks[0]['id']}"
    if hooks[0]["status"] != "auto_disabled":
        try:
            await api(http, "POST", f"{url}/retry", token)
            return str(hooks[0]["status"])
        except RuntimeError as error:  # auto-disabled since: 409
            if ": 409 " not in str(error):
                raise
    await api(http, "PATCH", url, token, {"enabled": True})
    return "auto_disabled"


def rss_at(watch: Watch, at: float) -> float | None:
    """The resident set (MiB, all processes) sampled nearest to ``at``."""
    return min(watch.rss_series, key=lambda s: abs(s[0] - at), default=(at, None))[1]


def rss_profile(watch: Watch, start: float, end: float) -> dict[str, float | None]:
    """Resident set at the start, middle and end of a window, and its largest sample."""
    samples = watch.rss_between(start, end)
    return {
        "start": rss_at(watch, start),
        "mid": rss_at(watch, (start + end) / 2),
        "end": rss_at(watch, end),
        "max": max(samples, default=None),
    }


def rss_growth(watch: Watch, ingest_start: float, ingest_end: float, drain_end: float) -> float:
    """RSS at the end of the drain ÷ RSS a quarter into the ingest."""
    before = rss_at(watch, ingest_start + (ingest_end - ingest_start) / 4)
    after = rss_at(watch, drain_end)
    return after / before if after and before else float("nan")


def file_mib(path: Path) -> float:
    files = [path, Path(f"{path}-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 2**20


async def phase_backlog(cleanup: Cleanup, receiver: Receiver, cfg: Config) -> dict[str, Any]:
    path = cleanup.tmp / "backlog.db"
    env = {"CHATHOOKS_LOG_LEVEL": "WARNING"}
    service = await start_service(
        cleanup, ["chathooks", "serve"], f"sqlite:///{path}", "serve-backlog-sqlite", env
    )
    deadline = time.monotonic() + cfg.backlog_timeout
    per_chat = cfg.backlog_messages // cfg.backlog_chats
    events = iter_batches("backlog", cfg.backlog_chats, per_chat, cfg.batch_size, chat_major=False)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        await receiver.reset(http)
        token = await set_up_workspace(http, service, receiver.hook, "none")
        await receiver.answer(http, 503)
        async with Watch([service.pid]) as watch:
            ingested = await ingest(http, service, token, events, cfg.ingest_concurrency)
            watch.sample()
            cpu_ingest = watch.cpu()
            database_mib = file_mib(path)
            refused = (await receiver.stats(http))["refused"]
            await receiver.answer(http, 200)
            profiler = start_profiler(cleanup, service, "backlog-drain") if cfg.profile else None
            resumed = time.monotonic()
            status = await resume(http, service.base, token)
            try:
                stats = await receiver.wait_for(http, "messages", ingested.accepted, deadline)
            except TimeoutError:
                stats = await receiver.stats(http)  # a partial drain: its rate still tells
        stop_profiler(profiler)
    stop(service.proc)
    received = stats["messages"]
    drain_end = stats["last"] or resumed
    growth = rss_growth(watch, ingested.started, ingested.finished, drain_end)
    cpu = watch.cpu()
    return {
        "messages": ingested.accepted,
        "chats": cfg.backlog_chats,
        "complete": received >= ingested.accepted,
        "received": received,
        "not_received": ingested.accepted - received,
        "duplicates": stats["duplicates"],
        "refused_during_outage": refused,
        "webhook_status_at_resume": status,
        "ingest_msg_per_s": ingested.rate,
        "ingest_seconds": ingested.finished - ingested.started,
        "drain_msg_per_s": received / (drain_end - resumed) if received else None,
        "drain_seconds": drain_end - resumed,
        "database_mib_after_ingest": database_mib,
        "rss_mib_ingest": rss_profile(watch, ingested.started, ingested.finished),
        "rss_mib_drain": rss_profile(watch, resumed, drain_end),
        "rss_growth": growth,
        "rss_flat": growth <= FLAT,
        "rss_mib_series": [
            (round(at - ingested.started, 1), round(rss, 1)) for at, rss in watch.rss_series
        ],
        "ingest_cpu_ms_per_message": cpu_ingest * 1000 / ingested.accepted,
        "drain_cpu_ms_per_message": (cpu - cpu_ingest) * 1000 / received if received else None,
        **watch.figures(received),
    }
