"""Issue 16's targets 7 and 8, on PostgreSQL: scaling out, and a killed worker's recovery.

scale: one ``chathooks api`` ingesting through the batch API while 1, 2 and then 4
    ``chathooks worker`` processes (each count on a fresh database) deliver to the
    receiver. Figures: delivered msg/s (first POST start → last receipt), the CPU per
    message of the API, of the workers and of the PostgreSQL backends serving the phase's
    database, and the share of the machine's cores kept busy (by anyone).
recovery: a slow receiver (answers 10 s late) makes one worker hold every chat mid-run;
    the other worker is stopped (SIGSTOP) meanwhile, so it holds none. Then the receiver
    answers at once, the other worker resumes, and the first gets ``kill -9``. Figures:
    kill → the first receipt of each chat (the largest is the takeover time), kill → the
    last receipt, per-chat order, nothing lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import aiohttp
import psycopg

from bench.busy import order_check
from bench.common import stop
from bench.config import Config
from bench.harness import (
    PG_ADMIN_URL,
    Cleanup,
    Receiver,
    Service,
    create_database,
    guarded,
    ingest,
    set_up_workspace,
    start_service,
)
from bench.payload import batches
from bench.procs import Watch, machine_jiffies

ENV = {"CHATHOOKS_LOG_LEVEL": "WARNING"}
RECOVERY_CHATS = 40
"""Fewer than the worker's 64 requests in flight: it sends every chat's head at once."""
RECOVERY_PER_CHAT = 10
SLOW_ANSWER_S = 10.0
"""Long enough to kill the worker while it waits, shorter than its 15 s request limit."""
RESUMED_S = 2.0
"""The other worker runs this long before the kill: its timers are back in their normal
rhythm (a timer that fell due while it was stopped would fire at once and flatter it)."""


class Backends:
    """The PostgreSQL server processes serving one database (on this machine): their CPU
    is part of a message's cost once the workers scale out."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.conn = psycopg.connect(PG_ADMIN_URL, autocommit=True)

    def __call__(self) -> list[int]:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = %s"
        return [int(row[0]) for row in self.conn.execute(query, (self.database,)).fetchall()]

    def size_mib(self) -> float:
        """The database on disk (tables, indexes, TOAST; not the server's WAL)."""
        row = self.conn.execute("SELECT pg_database_size(%s)", (self.database,)).fetchone()
        return int(row[0]) / 2**20 if row else 0.0

    def close(self) -> None:
        self.conn.close()


def _database(cleanup: Cleanup, label: str) -> tuple[str, str]:
    name = f"chathooks_bench_{os.getpid()}_{label}"
    cleanup.databases.append(name)
    return name, create_database(name)


async def _workers(cleanup: Cleanup, url: str, label: str, count: int) -> list[Service]:
    return list(
        await asyncio.gather(
            *(
                start_service(cleanup, ["chathooks", "worker"], url, f"{label}-worker{i}", ENV)
                for i in range(count)
            )
        )
    )


async def phase_scale(
    cleanup: Cleanup, receiver: Receiver, cfg: Config, workers: int
) -> dict[str, Any]:
    name, url = _database(cleanup, f"scale{workers}")
    api = await start_service(cleanup, ["chathooks", "api"], url, f"scale{workers}-api", ENV)
    procs = await _workers(cleanup, url, f"scale{workers}", workers)
    deadline = time.monotonic() + cfg.phase_timeout
    chats = max(1, cfg.scale_messages // 10)
    events = batches(f"s{workers}", chats, 10, cfg.batch_size, chat_major=False)
    backends = Backends(name)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            token = await set_up_workspace(http, api, receiver.hook, "none")
            await receiver.reset(http)
            busy_before, total_before = machine_jiffies()
            async with Watch([api.pid, *(p.pid for p in procs)], others=backends) as watch:
                ingested = await ingest(http, api, token, events, cfg.ingest_concurrency)
                at_ingest_end = (await receiver.stats(http))["messages"]
                stats = await receiver.wait_for(http, "messages", ingested.accepted, deadline)
            busy_after, total_after = machine_jiffies()
        database_mib = backends.size_mib()
    finally:
        backends.close()
    for process in [*procs, api]:
        stop(process.proc)
    received, span = stats["messages"], stats["last"] - ingested.started
    left = ingested.accepted - at_ingest_end
    drain = stats["last"] - ingested.finished
    api_cpu, database_cpu = watch.cpu(api.pid), watch.others_cpu()
    workers_cpu = watch.cpu() - api_cpu

    def per_message(cpu: float) -> float:
        return cpu * 1000 / received

    return {
        "workers": workers,
        "messages": ingested.accepted,
        "chats": chats,
        "ingest_msg_per_s": ingested.rate,
        "delivered_msg_per_s": received / span,
        "delivered_seconds": span,
        "left_at_ingest_end": left,
        "drain_msg_per_s_after_ingest": left / drain if left > 0 and drain > 0 else None,
        "api_cpu_ms_per_message": per_message(api_cpu),
        "workers_cpu_ms_per_message": per_message(workers_cpu),
        "database_cpu_ms_per_message": per_message(database_cpu),
        "all_cpu_ms_per_message": per_message(watch.cpu() + database_cpu),
        "database_mib": database_mib,
        "database_kib_per_message": database_mib * 1024 / ingested.accepted,
        "machine_busy_share": (busy_after - busy_before) / max(1, total_after - total_before),
        "loadavg_at_end": os.getloadavg()[0],
        **watch.figures(received),
        "duplicates": stats["duplicates"],
    }


async def phase_recovery(cleanup: Cleanup, receiver: Receiver, cfg: Config) -> dict[str, Any]:
    _, url = _database(cleanup, "recovery")
    api = await start_service(cleanup, ["chathooks", "api"], url, "recovery-api", ENV)
    survivor, doomed = await _workers(cleanup, url, "recovery", 2)
    deadline = time.monotonic() + cfg.phase_timeout
    events = batches("k", RECOVERY_CHATS, RECOVERY_PER_CHAT, cfg.batch_size, chat_major=True)
    posted = [e["message_id"] for batch in events for e in batch]
    os.kill(survivor.pid, signal.SIGSTOP)  # so the doomed worker claims every chat
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            token = await set_up_workspace(http, api, receiver.hook, "none")
            await receiver.reset(http)
            await receiver.answer(http, 200, delay=SLOW_ANSWER_S)
            ingested = await ingest(http, api, token, events, 1)
            await receiver.wait_for(http, "in_flight", RECOVERY_CHATS, deadline)
            await receiver.answer(http, 200)
            os.kill(survivor.pid, signal.SIGCONT)
            await asyncio.sleep(RESUMED_S)
            killed = time.monotonic()
            os.kill(doomed.pid, signal.SIGKILL)
            stats = await receiver.wait_for(http, "messages", ingested.accepted, deadline)
            found = await receiver.arrivals(http)
    finally:
        os.kill(survivor.pid, signal.SIGCONT)
    for process in (survivor, doomed, api):
        stop(process.proc)
    arrivals: dict[str, float] = found["arrivals"]
    firsts, checks = [], []
    for chat in range(RECOVERY_CHATS):
        ids = posted[chat * RECOVERY_PER_CHAT : (chat + 1) * RECOVERY_PER_CHAT]
        firsts.append(min(arrivals[m] for m in ids) - killed)
        checks.append(order_check(ids, found["order"]))
    return {
        "chats": RECOVERY_CHATS,
        "messages": ingested.accepted,
        "held_at_the_kill": RECOVERY_CHATS,
        "takeover_s": max(firsts),
        "first_chat_s": min(firsts),
        "all_delivered_s": stats["last"] - killed,
        "not_received": sum(c["not_received"] for c in checks),
        "out_of_order": sum(c["out_of_order"] for c in checks),
        "duplicates": stats["duplicates"],
        "abandoned_by_the_killed_worker": stats["abandoned"],
    }


async def scale_phases(
    cleanup: Cleanup, receiver: Receiver, cfg: Config, results: dict[str, Any], limit: float
) -> None:
    """Target 8 for each worker count, then target 7."""
    for workers in cfg.scale_workers:
        results[f"scale_{workers}"] = await guarded(
            f"scale out / PostgreSQL: api ingesting + {workers} worker(s)",
            phase_scale(cleanup, receiver, cfg, workers),
            limit,
        )
    results["recovery"] = await guarded(
        "recovery / PostgreSQL: kill -9 of the worker holding every chat",
        phase_recovery(cleanup, receiver, cfg),
        limit,
    )
