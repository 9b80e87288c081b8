"""``chathooks worker`` as the tests run it: the worker app (delivery, retention, wake-ups,
probes and metrics) served by uvicorn on 127.0.0.1 in a thread, on its own runtime."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import uvicorn

from chathooks.app import create_worker_app
from chathooks.deliver.transport import Outcome
from chathooks.runtime import Runtime
from tests.conftest import wait_for


class CountingTransport:
    """The runtime's real transport, counting the requests this worker made."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent = 0

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        self.sent += 1
        outcome: Outcome = await self.inner.post(url, headers, body)
        return outcome

    async def close(self) -> None:
        await self.inner.close()


class WorkerService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.transport = CountingTransport(rt.transport)
        rt.transport = self.transport
        config = uvicorn.Config(
            create_worker_app(rt), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> WorkerService:
        self.thread.start()
        wait_for(lambda: self.server.started, what="the worker to start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        return self

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(60)
        self.rt.engine.dispose()
