"""``chathooks worker`` as the tests run it: the worker app (delivery, retention, wake-ups,
probes and metrics) served by uvicorn on 127.0.0.1 in a thread, on its own runtime."""

from __future__ import annotations

from typing import Any

from chathooks.app import create_worker_app
from chathooks.deliver.transport import Outcome
from chathooks.runtime import Runtime
from tests.conftest import Service


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


class WorkerService(Service):
    """The worker app on its own runtime, its requests counted."""

    def __init__(self, rt: Runtime) -> None:
        self.transport = CountingTransport(rt.transport)
        rt.transport = self.transport
        super().__init__(rt, app=create_worker_app(rt))
