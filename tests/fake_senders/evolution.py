"""Evolution API v2 as its code answers (EvolutionAPI/evolution-api, src/main.ts's error
handler, src/api/guards, the Baileys service's ``sendMessageWithTyping`` and
``prepareMessage``, ``instanceController.connectionState``).

``send_message`` is the ``send.message`` webhook Evolution emits for a message it sent
through its API (``sendMessageWithTyping`` → ``prepareMessage``; its Baileys connection
does not echo its own sends as ``messages.upsert``).

Guards run in Evolution's order: the instance must exist (404), then ``apikey`` must be
the global key or the instance's token (401). Errors are ``{status, error, response:
{message}}``; a number that is not on WhatsApp is a 400 whose message lists
``{jid, exists: false, number}``; a failure of the WhatsApp connection is a 400 too.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from tests.fake_senders.server import Called, FakeServer

GLOBAL_KEY = "429683C4C977415CAAFCCE10F7D57E11"


class FakeEvolution(FakeServer):
    def __init__(self, instance: str, token: str, state: str = "open") -> None:
        super().__init__()
        self.instances = {instance: token}
        self.state = state
        """``open``, ``connecting`` or ``close``: the instance's WhatsApp connection."""
        self.not_on_whatsapp: set[str] = set()
        self.connection_closed = False
        """Sends fail as Baileys does when the connection drops mid-send."""
        self._ids = (f"3EB0{n:018X}" for n in itertools.count(0xC4A2F6D1B8E47A21))
        self.answered: list[dict[str, Any]] = []
        """Every sent message as ``sendText`` answered it, in order."""
        self.webhook: tuple[str, str] | None = None
        """(URL, the instance's own JID): post each sent message's ``send.message`` there
        before answering. Evolution starts that post (``sendDataWebhook``, not awaited)
        before it answers, so the echo can arrive first."""

    def answer(self, called: Called) -> tuple[int, Any]:
        parts = called.path.strip("/").split("/")
        route = "/".join(parts[:2])
        known = {("POST", "message/sendText"), ("GET", "instance/connectionState")}
        if len(parts) != 3 or (called.method, route) not in known:
            message = [f"Cannot {called.method} {called.path}"]
            return error(404, "Not Found", message)
        instance = parts[2]
        if instance not in self.instances:
            return error(404, "Not Found", [f'The "{instance}" instance does not exist'])
        if called.headers.get("apikey") not in (GLOBAL_KEY, self.instances[instance]):
            return error(401, "Unauthorized", "Unauthorized")
        if route == "instance/connectionState":
            return 200, {"instance": {"instanceName": instance, "state": self.state}}
        return self._send(called, instance)

    def _send(self, called: Called, instance: str) -> tuple[int, Any]:
        body = called.json
        if not isinstance(body.get("text"), str):
            return error(400, "Bad Request", ['instance requires property "text"'])
        number = str(body.get("number", ""))
        jid = number if "@" in number else f"{number}@s.whatsapp.net"
        if number in self.not_on_whatsapp:
            return error(400, "Bad Request", [{"jid": jid, "exists": False, "number": number}])
        if self.connection_closed:
            return error(400, "Bad Request", ["Error: Connection Closed"])
        message = {
            "key": {"remoteJid": jid, "fromMe": True, "id": next(self._ids)},
            "pushName": "Você",
            "status": "PENDING",
            "message": {"conversation": body["text"]},
            "contextInfo": None,
            "messageType": "conversation",
            "messageTimestamp": 1764780000,
            "instanceId": "b5d1a6d2-3c4e-4f6a-9b8c-7d6e5f4a3b2c",
            "source": "unknown",
        }
        self.answered.append(message)
        if self.webhook is not None:
            url, owner = self.webhook
            echo = send_message(message, instance, self.instances[instance], owner)
            httpx.post(url, json=echo, timeout=10)
        return 201, message


def error(status: int, name: str, message: Any) -> tuple[int, Any]:
    """The body of Evolution's error handler (src/main.ts)."""
    return status, {"status": status, "error": name, "response": {"message": message}}


def send_message(message: dict[str, Any], instance: str, apikey: str, owner: str) -> Any:
    """The ``send.message`` webhook for a message ``sendText`` answered with: the same
    ``data`` (Evolution emits what ``prepareMessage`` built), in v2's envelope; ``owner``
    is the instance's own JID (``sender``)."""
    return {
        "event": "send.message",
        "instance": instance,
        "data": message,
        "destination": "https://crm.example.com/in/…/send-message",
        "date_time": "2026-12-03T16:00:00.512Z",
        "sender": owner,
        "server_url": "http://localhost:8080",
        "apikey": apikey,
    }
