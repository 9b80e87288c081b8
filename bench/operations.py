"""The operations phases of the benchmark (issue 8): steady state at a fixed rate and a
retention soak (workers scaling out on PostgreSQL are ``bench.scale``). Run by
``bench.run``; each records the CPU and peak RSS of its chathooks processes.

(d) steady state: single-message POSTs on a fixed schedule (open loop), for ``serve`` on
    SQLite and for ``api`` + 1 ``worker`` on PostgreSQL; latency from each POST's start to
    the receiver's arrival (both CLOCK_MONOTONIC), with lost and duplicated messages.
(f) retention soak: ``bench.service`` (serve on SQLite, movable clock) with
    ``CHATHOOKS_RETENTION_DAYS=1``; each cycle streams messages in, then moves the clock
    26 h so the next sweep removes them; the database size after each cycle must stay flat.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.common import percentile, stop
from bench.config import Config
from bench.harness import (
    Cleanup,
    Receiver,
    create_database,
    guarded,
    ingest,
    set_up_workspace,
    start_service,
)
from bench.payload import batches, event
from bench.procs import Watch

# ---------------------------------------------------------------- (d) steady state


async def post_steadily(
    http: aiohttp.ClientSession,
    bases: list[str],
    token: str,
    *,
    run: str,
    rate: float,
    seconds: float,
) -> tuple[dict[str, float], dict[str, float], int]:
    """One POST /api/v1/messages every 1/rate s (whether or not earlier ones returned),
    taking the ``bases`` in turn as a load balancer would; returns when each message's POST
    started and when it was answered, and how many were accepted."""
    count = int(rate * seconds)
    now = datetime.now(UTC)
    bodies = [json.dumps(event(run, i, i % 200, now)).encode() for i in range(count)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started: dict[str, float] = {}
    answered: dict[str, float] = {}
    accepted = 0

    async def post(index: int) -> None:
        nonlocal accepted
        message_id = f"{run}-{index}"
        started[message_id] = time.monotonic()
        base = bases[index % len(bases)]
        async with http.post(f"{base}/api/v1/messages", data=bodies[index], headers=headers) as r:
            await r.read()
            accepted += r.status == 202
        answered[message_id] = time.monotonic()

    tasks = []
    origin = time.monotonic() + 0.2
    for index in range(count):
        await asyncio.sleep(max(0.0, origin + index / rate - time.monotonic()))
        tasks.append(asyncio.create_task(post(index)))
    await asyncio.gather(*tasks)
    return started, answered, accepted


async def phase_steady(
    cleanup: Cleanup,
    receiver: Receiver,
    cfg: Config,
    *,
    setup: str,
    rate: float,
    database_url: str,
) -> dict[str, Any]:
    """``setup``: "serve" (one process), "api+worker", or "2 api+worker" (two API
    processes taking the POSTs in turn, as behind a load balancer)."""
    label = f"steady-{setup.replace('+', '-').replace(' ', '')}-{rate:.0f}"
    env = {"CHATHOOKS_LOG_LEVEL": "WARNING"}
    if setup == "serve":
        service = await start_service(cleanup, ["chathooks", "serve"], database_url, label, env)
        apis, workers = [service], []
    else:
        apis = [
            await start_service(cleanup, ["chathooks", "api"], database_url, f"{label}-{i}", env)
            for i in range(2 if setup.startswith("2 ") else 1)
        ]
        service = apis[0]
        workers = [
            await start_service(
                cleanup, ["chathooks", "worker"], database_url, f"{label}-worker", env
            )
        ]
    deadline = time.monotonic() + cfg.phase_timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        token = await set_up_workspace(http, service, receiver.hook, "none")
        await receiver.reset(http)
        async with Watch([p.pid for p in [*apis, *workers]]) as watch:
            started, answered, accepted = await post_steadily(
                http,
                [a.base for a in apis],
                token,
                run=label,
                rate=rate,
                seconds=cfg.steady_seconds,
            )
            try:
                stats = await receiver.wait_for(
                    http, "messages", accepted, min(deadline, time.monotonic() + 60)
                )
            except TimeoutError:
                stats = await receiver.stats(http)
        arrivals: dict[str, float] = (await receiver.arrivals(http))["arrivals"]
    for process in [*workers, *apis]:
        stop(process.proc)
    latency = [(arrivals[m] - t) * 1000 for m, t in started.items() if m in arrivals]
    answer = [(answered[m] - t) * 1000 for m, t in started.items()]
    after_answer = [(arrivals[m] - t) * 1000 for m, t in answered.items() if m in arrivals]
    return {
        "setup": setup,
        "rate_msg_per_s": rate,
        "seconds": cfg.steady_seconds,
        "posted": len(started),
        "accepted": accepted,
        "received": stats["messages"],
        "lost": accepted - stats["messages"],
        "duplicates": stats["duplicates"],
        "post_answer_ms": {"p50": percentile(answer, 50), "p99": percentile(answer, 99)},
        "latency_ms_from_answer": {
            "p50": percentile(after_answer, 50),
            "p99": percentile(after_answer, 99),
        },
        "latency_ms_from_post_start": {
            "p50": percentile(latency, 50),
            "p99": percentile(latency, 99),
            "max": max(latency, default=None),
        },
        **watch.figures(stats["messages"]),
    }


# ---------------------------------------------------------------- (f) retention soak


def sqlite_size(path: Path) -> dict[str, int]:
    """The database file (and its WAL) on disk, and the bytes of pages in use."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    wal = Path(f"{path}-wal")
    return {
        "file_bytes": path.stat().st_size + (wal.stat().st_size if wal.exists() else 0),
        "used_bytes": (pages - free) * size,
    }


async def removed_messages(http: aiohttp.ClientSession, base: str) -> float:
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "chathooks_retention_removed_rows_total" and sample.labels == {
                "table": "messages"
            }:
                return sample.value
    return 0.0


async def phase_soak(cleanup: Cleanup, receiver: Receiver, cfg: Config) -> dict[str, Any]:
    path = cleanup.tmp / "soak.db"
    env = {
        "CHATHOOKS_RETENTION_DAYS": "1",
        "CHATHOOKS_RETENTION_INTERVAL_SECONDS": "1",
        "CHATHOOKS_LOG_LEVEL": "WARNING",
    }
    service = await start_service(cleanup, ["bench.service"], f"sqlite:///{path}", "soak", env)
    deadline = time.monotonic() + cfg.phase_timeout
    steps = []
    per_cycle = cfg.soak_messages
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        token = await set_up_workspace(http, service, receiver.hook, "none")
        await receiver.reset(http)
        async with Watch([service.pid]) as watch:
            for cycle in range(cfg.soak_cycles):
                events = batches(f"soak{cycle}", per_cycle // 10, 10, 500, chat_major=False)
                await ingest(http, service, token, events, 1)
                await receiver.wait_for(http, "messages", per_cycle * (cycle + 1), deadline)
                steps.append({"cycle": cycle + 1, "rss_mib": watch.sample(), **sqlite_size(path)})
                os.kill(service.pid, signal.SIGUSR2)
                while await removed_messages(http, service.base) < per_cycle * (cycle + 1):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"retention did not remove cycle {cycle + 1}'s messages")
                    await asyncio.sleep(0.2)
    stop(service.proc)
    later = [s["file_bytes"] for s in steps[1:]] or [steps[0]["file_bytes"]]
    return {
        "messages_per_cycle": per_cycle,
        "steps": steps,
        "growth_after_first_cycle": max(later) / min(later),
        **watch.figures(per_cycle * cfg.soak_cycles),
    }


# ---------------------------------------------------------------- all of them


async def operations_phases(
    cleanup: Cleanup, receiver: Receiver, cfg: Config, results: dict[str, Any], limit: float
) -> None:
    """(d) steady state at 100 msg/s and at half the delivered rate of (b); (f) the
    retention soak."""
    sustained = results.get("none_sqlite", {}).get("delivered_msg_per_s")
    rates = [100.0] + ([round(sustained / 2)] if sustained and sustained / 2 > 100 else [])
    setups = ["serve"] + (["api+worker", "2 api+worker"] if cfg.postgres else [])
    for rate in rates:
        for setup in setups:
            if setup == "serve":
                url = f"sqlite:///{cleanup.tmp / f'steady-{rate:.0f}.db'}"
            else:
                name = f"chathooks_bench_{os.getpid()}_steady_{len(setup)}_{rate:.0f}"
                cleanup.databases.append(name)
                url = create_database(name)
            results[f"steady_{setup}_{rate:.0f}"] = await guarded(
                f"steady {setup} @ {rate:.0f} msg/s",
                phase_steady(cleanup, receiver, cfg, setup=setup, rate=rate, database_url=url),
                limit,
            )
    results["retention_soak"] = await guarded(
        "retention soak / SQLite", phase_soak(cleanup, receiver, cfg), limit
    )
