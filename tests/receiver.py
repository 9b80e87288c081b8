"""A real HTTP receiver on 127.0.0.1 that records every request it gets."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float = 0.0

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    delay: float = 0.0
    content_type: str = ""
    """Sent as given (e.g. ``text/html`` with no charset), instead of aiohttp's default."""


class Receiver:
    """Answers 200 unless told otherwise: ``replies`` are used first, then ``default``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.arrived = 0
        """Requests that arrived, counted before any reply delay (``requests`` after it)."""
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Self:
        self._thread.start()
        self._started.wait(10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrived += 1
        body = await request.text()
        reply = self.replies.popleft() if self.replies else self.default
        if reply.delay:
            await asyncio.sleep(reply.delay)
        self.requests.append(Received(request.path, dict(request.headers), body, time.monotonic()))
        if reply.content_type:
            headers = {**reply.headers, "Content-Type": reply.content_type}
            return web.Response(status=reply.status, headers=headers, body=reply.body.encode())
        return web.Response(status=reply.status, headers=reply.headers, text=reply.body)

    def stop(self) -> None:
        async def _shutdown() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def bodies(self) -> list[Any]:
        return [r.json for r in list(self.requests)]
