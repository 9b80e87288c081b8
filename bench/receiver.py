"""The webhook receiver: answers 200 at once and records when each message arrived.

Run as ``python -m bench.receiver PORT``. Any POST path is a webhook; ``GET /_stats``,
``GET /_arrivals``, ``POST /_reset`` and ``POST /_mode`` are for the benchmark. Times are
``time.monotonic()`` (CLOCK_MONOTONIC, shared by every process on the machine).
``POST /_mode {"status": 503}`` makes every webhook fail (counted, not recorded) until
``{"status": 200}`` (or a reset): an outage. ``{"status": 200, "delay": 5}`` answers
each webhook 5 s late (a slow receiver, so a worker holds its chats while it waits); a
request whose client is gone by then (a killed worker) is counted as abandoned, not
recorded. ``in_flight`` in the stats counts the requests being held.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Record:
    requests: int = 0
    body_bytes: int = 0
    first: float | None = None
    last: float | None = None
    arrivals: dict[str, float] = field(default_factory=dict)
    """message_id → first arrival; duplicates (at-least-once) are counted, not recorded."""
    order: list[str] = field(default_factory=list)
    """message_ids in the order of their first arrival."""
    bundle_times: list[float] = field(default_factory=list)
    duplicates: int = 0
    refused: int = 0
    """Webhooks answered with an error status (``/_mode``)."""
    in_flight: int = 0
    """Webhooks held by a ``delay`` right now."""
    abandoned: int = 0
    """Held webhooks whose client had gone when the delay ended (not recorded)."""

    def note(self, at: float, body: bytes) -> None:
        self.requests += 1
        self.body_bytes += len(body)
        self.first = at if self.first is None else self.first
        self.last = at
        payload: dict[str, Any] = json.loads(body)
        if "messages" in payload:
            self.bundle_times.append(at)
            ids = [m["message_id"] for m in payload["messages"]]
        else:
            ids = [payload["message"]["message_id"]]
        for message_id in ids:
            if message_id in self.arrivals:
                self.duplicates += 1
            else:
                self.arrivals[message_id] = at
                self.order.append(message_id)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "messages": len(self.arrivals),
            "bundles": len(self.bundle_times),
            "duplicates": self.duplicates,
            "refused": self.refused,
            "in_flight": self.in_flight,
            "abandoned": self.abandoned,
            "mean_body_bytes": self.body_bytes / self.requests if self.requests else 0,
            "first": self.first,
            "last": self.last,
        }


def make_app() -> web.Application:
    state = {"record": Record()}
    answer: dict[str, float] = {"status": 200, "delay": 0.0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        record = state["record"]
        if answer["status"] != 200:
            record.refused += 1
            return web.Response(status=int(answer["status"]))
        if answer["delay"]:
            record.in_flight += 1
            try:
                await asyncio.sleep(answer["delay"])
            finally:
                record.in_flight -= 1
            if request.transport is None or request.transport.is_closing():
                record.abandoned += 1
                return web.Response(status=200)
        record.note(time.monotonic(), body)
        return web.Response(status=200)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(state["record"].stats())

    async def arrivals(_: web.Request) -> web.Response:
        record = state["record"]
        return web.json_response(
            {"arrivals": record.arrivals, "order": record.order, "bundles": record.bundle_times}
        )

    async def reset(_: web.Request) -> web.Response:
        state["record"] = Record()
        answer.update(status=200, delay=0.0)
        return web.json_response({"ok": True})

    async def mode(request: web.Request) -> web.Response:
        wanted = await request.json()
        answer.update(status=int(wanted["status"]), delay=float(wanted.get("delay", 0.0)))
        return web.json_response(answer)

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_get("/_stats", stats)
    app.router.add_get("/_arrivals", arrivals)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/_mode", mode)
    app.router.add_post("/{tail:.*}", hook)
    return app


def main() -> None:
    port = int(sys.argv[1])
    web.run_app(make_app(), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
