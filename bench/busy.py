"""One busy chat (issue 9, target 3): every message of the phase in ONE chat.

``chathooks serve`` on SQLite with one ``aggregation: none`` webhook; N messages (default
5,000) of one chat ingested in batches of 1,000, one batch in flight (so the order they
were posted in is the order chathooks stored them in). Per-chat order means each message
waits for the one before it: this is the drain rate of a chat after an outage.
Figures: delivered msg/s (first POST start → last receipt), and the order check on the
receiver's arrival sequence: lost, duplicates, out of order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from bench.common import stop
from bench.config import Config
from bench.harness import (
    Cleanup,
    Receiver,
    ingest,
    set_up_workspace,
    start_profiler,
    start_service,
    stop_profiler,
)
from bench.payload import batches
from bench.procs import Watch


def order_check(posted: Sequence[str], arrived: Sequence[str]) -> dict[str, int]:
    """``arrived``: message ids in order of first arrival. Out of order: a message that
    arrived after one posted later than it (each counted once)."""
    position = {message_id: i for i, message_id in enumerate(arrived)}
    out_of_order, latest = 0, -1
    for message_id in posted:
        at = position.get(message_id)
        if at is None:
            continue
        if at < latest:
            out_of_order += 1
        latest = max(latest, at)
    return {
        "not_received": sum(m not in position for m in posted),
        "out_of_order": out_of_order,
        "unexpected": len(position.keys() - set(posted)),
    }


async def phase_busy(cleanup: Cleanup, receiver: Receiver, cfg: Config) -> dict[str, Any]:
    url = f"sqlite:///{cleanup.tmp / 'busy.db'}"
    service = await start_service(cleanup, ["chathooks", "serve"], url, "serve-busy-sqlite", {})
    profiler = start_profiler(cleanup, service, "busy-chat") if cfg.profile else None
    deadline = time.monotonic() + cfg.phase_timeout
    events = batches("busy", 1, cfg.busy_messages, cfg.batch_size, chat_major=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        await receiver.reset(http)
        token = await set_up_workspace(http, service, receiver.hook, "none")
        async with Watch([service.pid]) as watch:
            ingested = await ingest(http, service, token, events, 1)
            try:
                stats = await receiver.wait_for(http, "messages", ingested.accepted, deadline)
            except TimeoutError:
                stats = await receiver.stats(http)  # a partial drain: its rate still tells
        arrived: list[str] = (await receiver.arrivals(http))["order"]
    stop_profiler(profiler)
    stop(service.proc)
    span = stats["last"] - ingested.started if stats["last"] else None
    return {
        "messages": ingested.accepted,
        "complete": stats["messages"] >= ingested.accepted,
        "received": stats["messages"],
        "ingest_msg_per_s": ingested.rate,
        "delivered_msg_per_s": stats["messages"] / span if span else None,
        "delivered_seconds": span,
        "duplicates": stats["duplicates"],
        **order_check([e["message_id"] for batch in events for e in batch], arrived),
        **watch.figures(stats["messages"]),
    }
