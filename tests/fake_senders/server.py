"""An HTTP server on 127.0.0.1 that records every call (the receiver's thread and server,
its own answers): the base of each fake sender."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.receiver import Receiver


@dataclass(frozen=True)
class Called:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeServer(Receiver):
    """Subclasses answer in ``answer``; ``calls`` lists what arrived, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Called] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, called: Called) -> tuple[int, Any]:
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.Response:
        called = Called(
            request.method,
            request.path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            await request.text(),
        )
        self.calls.append(called)
        status, body = self.answer(called)
        return web.json_response(body, status=status)
