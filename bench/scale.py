"""Issue 16's targets 7 and 8, on PostgreSQL: scaling out, and a killed worker's recovery.

scale: ``chathooks api`` and 1, 2 and then 4 ``chathooks worker`` processes, each count
    on a fresh database. First the workers alone: a backlog stored while they are stopped
    (SIGSTOP, so their start-up is not counted), then drained. Then the API ingests new
    messages through the batch API while the workers deliver them; then a quarter as many
    one per request (``POST /api/v1/messages``, 16 in flight). Figures: delivered
    msg/s, the CPU per message of the API, of the workers and of the PostgreSQL backends
    serving the phase's database, and the share of the machine's cores kept busy (by
    anyone).
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
import subprocess
import time
from dataclasses import dataclass
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
    start_profiler,
    start_service,
    stop_profiler,
)
from bench.payload import batches
from bench.procs import Watch, machine_jiffies
from bench.sources import api_requests, post_each

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


@dataclass(frozen=True)
class Setup:
    """One scale-out run's processes and client."""

    http: aiohttp.ClientSession
    receiver: Receiver
    api: Service
    workers: list[Service]
    backends: Backends
    token: str
    deadline: float
    cleanup: Cleanup
    cfg: Config

    def profiler(self, stage: str) -> subprocess.Popen[bytes] | None:
        """py-spy on the first worker during ``stage`` (``--profile``)."""
        if not self.cfg.profile:
            return None
        label = f"scale{len(self.workers)}-{stage}-worker0"
        return start_profiler(self.cleanup, self.workers[0], label)


def _busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1])


async def _drain(setup: Setup, events: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The workers alone: a backlog stored while they are stopped, then drained."""
    http, receiver, concurrency = setup.http, setup.receiver, setup.cfg.ingest_concurrency
    profiler = None
    for worker in setup.workers:
        os.kill(worker.pid, signal.SIGSTOP)
    try:
        ingested = await ingest(http, setup.api, setup.token, events, concurrency)
        await receiver.reset(http)
        profiler = setup.profiler("drain")
        before = machine_jiffies()
        async with Watch([w.pid for w in setup.workers], others=setup.backends) as watch:
            resumed = time.monotonic()
            for worker in setup.workers:
                os.kill(worker.pid, signal.SIGCONT)
            stats = await receiver.wait_for(http, "messages", ingested.accepted, setup.deadline)
        after = machine_jiffies()
    finally:
        for worker in setup.workers:
            os.kill(worker.pid, signal.SIGCONT)
        stop_profiler(profiler)
    received = stats["messages"]
    return {
        "drain_messages": received,
        "drain_msg_per_s": received / (stats["last"] - resumed),
        "drain_workers_cpu_ms_per_message": watch.cpu() * 1000 / received,
        "drain_database_cpu_ms_per_message": watch.others_cpu() * 1000 / received,
        "drain_machine_busy_share": _busy_share(before, after),
        "drain_duplicates": stats["duplicates"],
    }


async def _live(setup: Setup, events: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The API ingesting while the workers deliver."""
    http, receiver, api = setup.http, setup.receiver, setup.api
    await receiver.reset(http)
    before = machine_jiffies()
    roots = [api.pid, *(w.pid for w in setup.workers)]
    async with Watch(roots, others=setup.backends) as watch:
        ingested = await ingest(http, api, setup.token, events, setup.cfg.ingest_concurrency)
        at_ingest_end = (await receiver.stats(http))["messages"]
        stats = await receiver.wait_for(http, "messages", ingested.accepted, setup.deadline)
    after = machine_jiffies()
    received, span = stats["messages"], stats["last"] - ingested.started
    left = ingested.accepted - at_ingest_end
    drain = stats["last"] - ingested.finished
    api_cpu, database_cpu = watch.cpu(api.pid), watch.others_cpu()

    def per_message(cpu: float) -> float:
        return cpu * 1000 / received

    return {
        "messages": ingested.accepted,
        "ingest_msg_per_s": ingested.rate,
        "delivered_msg_per_s": received / span,
        "delivered_seconds": span,
        "left_at_ingest_end": left,
        "drain_msg_per_s_after_ingest": left / drain if left > 0 and drain > 0 else None,
        "api_cpu_ms_per_message": per_message(api_cpu),
        "workers_cpu_ms_per_message": per_message(watch.cpu() - api_cpu),
        "database_cpu_ms_per_message": per_message(database_cpu),
        "all_cpu_ms_per_message": per_message(watch.cpu() + database_cpu),
        "machine_busy_share": _busy_share(before, after),
        **watch.figures(received),
        "duplicates": stats["duplicates"],
    }


async def _single(setup: Setup, count: int) -> dict[str, Any]:
    """As real senders do: one message per request (``POST /api/v1/messages``), while the
    workers deliver."""
    http, receiver, api = setup.http, setup.receiver, setup.api
    concurrency = setup.cfg.source_concurrency
    requests = api_requests(setup.token, count, max(1, count // 10))
    await receiver.reset(http)
    profiler = setup.profiler("single")
    before = machine_jiffies()
    roots = [api.pid, *(w.pid for w in setup.workers)]
    url = f"{api.base}/api/v1/messages"
    try:
        async with Watch(roots, others=setup.backends) as watch:
            posted = await post_each(http, url, requests, concurrency, 202)
            stats = await receiver.wait_for(http, "messages", len(posted.answered), setup.deadline)
        after = machine_jiffies()
    finally:
        stop_profiler(profiler)
    received = stats["messages"]
    api_cpu, database_cpu = watch.cpu(api.pid), watch.others_cpu()
    return {
        "single_messages": received,
        "single_msg_per_s": posted.rate,
        "single_delivered_msg_per_s": received / (stats["last"] - posted.started),
        "single_api_cpu_ms_per_message": api_cpu * 1000 / received,
        "single_workers_cpu_ms_per_message": (watch.cpu() - api_cpu) * 1000 / received,
        "single_database_cpu_ms_per_message": database_cpu * 1000 / received,
        "single_machine_busy_share": _busy_share(before, after),
    }


async def phase_scale(
    cleanup: Cleanup, receiver: Receiver, cfg: Config, workers: int
) -> dict[str, Any]:
    """First the workers alone drain a backlog, then (same database, new messages) they
    deliver while the API ingests batches, then while it takes one message per request."""
    name, url = _database(cleanup, f"scale{workers}")
    api = await start_service(cleanup, ["chathooks", "api"], url, f"scale{workers}-api", ENV)
    procs = await _workers(cleanup, url, f"scale{workers}", workers)
    chats = max(1, cfg.scale_messages // 10)
    backends = Backends(name)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            token = await set_up_workspace(http, api, receiver.hook, "none")
            deadline = time.monotonic() + cfg.phase_timeout
            setup = Setup(http, receiver, api, procs, backends, token, deadline, cleanup, cfg)
            backlog = batches(f"d{workers}", chats, 10, cfg.batch_size, chat_major=False)
            drained = await _drain(setup, backlog)
            events = batches(f"s{workers}", chats, 10, cfg.batch_size, chat_major=False)
            live = await _live(setup, events)
            single = await _single(setup, cfg.scale_messages // 4)
        database_mib = backends.size_mib()
    finally:
        backends.close()
    for process in [*procs, api]:
        stop(process.proc)
    stored = drained["drain_messages"] + live["messages"] + single["single_messages"]
    return {
        "workers": workers,
        "chats": chats,
        **drained,
        **live,
        **single,
        "database_mib": database_mib,
        "database_kib_per_message": database_mib * 1024 / stored,
        "loadavg_at_end": os.getloadavg()[0],
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
            held = (await receiver.stats(http))["in_flight"]
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
        "requests_in_flight_at_the_kill": held,
        "takeover_s": max(firsts),
        "first_chat_s": min(firsts),
        "all_delivered_s": stats["last"] - killed,
        "not_received": sum(c["not_received"] for c in checks),
        "out_of_order": sum(c["out_of_order"] for c in checks),
        "duplicates": stats["duplicates"],
    }


async def scale_phases(
    cleanup: Cleanup, receiver: Receiver, cfg: Config, results: dict[str, Any], limit: float
) -> None:
    """Target 8 for each worker count, then target 7."""
    for workers in cfg.scale_workers:
        results[f"scale_{workers}"] = await guarded(
            f"scale out / PostgreSQL: api + {workers} worker(s)",
            phase_scale(cleanup, receiver, cfg, workers),
            limit,
        )
    results["recovery"] = await guarded(
        "recovery / PostgreSQL: kill -9 of the worker holding every chat",
        phase_recovery(cleanup, receiver, cfg),
        limit,
    )
