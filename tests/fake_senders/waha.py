"""WAHA's API as its code answers (devlikeapro/waha, NestJS): ``POST /api/sendText`` and
``GET /api/sessions/{session}``, and its ``message.any`` webhook for the messages it sent.

- A sent text is answered with the engine's message; WEBJS (whatsapp-web.js) serializes
  it with ``id._serialized`` = ``true_<chatId>_<id>``, the id its ``message.any`` webhook
  carries as ``payload.id``.
- Errors are NestJS' bodies: a wrong ``X-Api-Key`` 401 ``{"message": "Unauthorized",
  "statusCode": 401}``; a body that fails validation 400 with ``message`` a list; an unknown
  session 404 (``getSession``); a session that is not WORKING 422 (``waitUntilStatus``:
  ``{"error", "session", "status", "expected"}``); anything else 500 with ``exception``
  (``AllExceptionsFilter``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

API_KEY = "waha-test-key"
SESSION = "default"
"""WAHA Core runs only this session; a source whose ``session`` is empty sends through it."""
ME = "79222222222@c.us"
"""The business's number: the ``me.id`` of the WAHA fixtures (``text_received``)."""


@dataclass
class Scripted:
    """An answer to use instead of a real send: a status and body, after ``delay`` seconds
    (longer than chathooks' timeout: a send that never answers in time)."""

    status: int = 200
    body: dict[str, Any] | None = None
    delay: float = 0.0


def unavailable() -> Scripted:
    """What WAHA's exception filter answers for an unexpected error (a 5xx)."""
    return Scripted(
        503,
        {
            "statusCode": 503,
            "timestamp": "2025-03-06T08:28:22.485Z",
            "exception": {"message": "Service Unavailable", "name": "Error"},
        },
    )


@dataclass
class FakeWaha:
    status: str = "WORKING"
    script: deque[Scripted] = field(default_factory=deque)
    sent: list[dict[str, Any]] = field(default_factory=list)
    """Every accepted ``sendText`` body, in the order WAHA sent them."""
    arrivals: list[float] = field(default_factory=list)
    """When each of ``sent`` arrived (``time.monotonic()``): the pace senders see."""
    calls: int = 0
    webhook: tuple[str, str] | None = None
    """(URL, HMAC key): post a ``message.any`` for each sent message, as WAHA does."""
    echo_first: bool = False
    """Post the webhook before answering the send (WAHA's webhook may win the race)."""
    answer_delay: float = 0.0
    """Seconds between sending a message and answering: a send in flight."""
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeWaha:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def texts(self) -> list[str]:
        return [body["text"] for body in self.sent]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/api/sendText", self._send_text)
        app.router.add_get("/api/sessions/{session}", self._session)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        self._loop.run_forever()
        self._loop.close()

    def _refusal(self, request: web.Request, session: str) -> web.Response | None:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.json_response({"message": "Unauthorized", "statusCode": 401}, status=401)
        if session != SESSION:
            message = (
                f"We didn't find a session with name '{session}'.\n"
                f"Please start it first by using POST /api/sessions/{session}/start request"
            )
            return web.json_response(
                {"statusCode": 404, "message": message, "error": "Not Found"}, status=404
            )
        return None

    async def _session(self, request: web.Request) -> web.Response:
        session = request.match_info["session"]
        refused = self._refusal(request, session)
        if refused is not None:
            return refused
        me = {"id": ME, "pushName": "Acme Store"} if self.status == "WORKING" else None
        return web.json_response(
            {
                "name": session,
                "status": self.status,
                "config": {},
                "me": me,
                "engine": {"engine": "WEBJS"},
            }
        )

    async def _send_text(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.json()
        refused = self._refusal(request, str(body.get("session")))
        if refused is not None:
            return refused
        problems = [
            f"{name} must be a string"
            for name in ("chatId", "text")
            if not isinstance(body.get(name), str)
        ]
        if problems:
            return web.json_response(
                {"statusCode": 400, "message": problems, "error": "Bad Request"}, status=400
            )
        if self.status != "WORKING":
            return web.json_response(
                {
                    "error": "Session status is not as expected. Try again later or restart "
                    "the session",
                    "session": SESSION,
                    "status": self.status,
                    "expected": ["WORKING"],
                },
                status=422,
            )
        if self.script:
            scripted = self.script.popleft()
            await asyncio.sleep(scripted.delay)
            if scripted.status != 200:
                return web.json_response(scripted.body, status=scripted.status)
        message = self._message(body)
        self.sent.append(body)
        self.arrivals.append(time.monotonic())
        await asyncio.sleep(self.answer_delay)
        if self.webhook is not None and self.echo_first:
            await asyncio.to_thread(self._echo, message)
        elif self.webhook is not None:
            self._loop.call_later(
                0.05, lambda: self._loop.run_in_executor(None, self._echo, message)
            )
        return web.json_response(message, status=201)

    def _message(self, body: dict[str, Any]) -> dict[str, Any]:
        """whatsapp-web.js' Message as WAHA's WEBJS engine returns it from ``sendText``."""
        chat = body["chatId"]
        own = "3EB0" + secrets.token_hex(8).upper()
        return {
            "_data": {"id": {"fromMe": True, "remote": chat, "id": own}, "type": "chat"},
            "id": {"fromMe": True, "remote": chat, "id": own, "_serialized": f"true_{chat}_{own}"},
            "ack": 0,
            "hasMedia": False,
            "body": body["text"],
            "type": "chat",
            "timestamp": int(time.time()),
            "from": ME,
            "to": chat,
            "deviceType": "web",
            "fromMe": True,
        }

    def _echo(self, message: dict[str, Any]) -> None:
        """WAHA's ``message.any`` webhook for the message it just sent (fromMe)."""
        assert self.webhook is not None
        url, key = self.webhook
        event = {
            "id": "evt_" + secrets.token_hex(8),
            "timestamp": int(time.time() * 1000),
            "event": "message.any",
            "session": SESSION,
            "me": {"id": ME, "pushName": "Acme Store"},
            "payload": {
                "id": message["id"]["_serialized"],
                "timestamp": message["timestamp"],
                "from": ME,
                "fromMe": True,
                "to": message["to"],
                "body": message["body"],
                "hasMedia": False,
                "ack": 1,
                "_data": {"type": "chat"},
            },
            "engine": "WEBJS",
        }
        raw = json.dumps(event).encode()
        signature = hmac.new(key.encode(), raw, hashlib.sha512).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Hmac": signature,
            "X-Webhook-Hmac-Algorithm": "sha512",
        }
        httpx.post(url, content=raw, headers=headers, timeout=10)
