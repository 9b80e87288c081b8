"""A fake of every sender chathooks sends through, for the sends phase: answers each kind's
send with its success shape and a unique message id, at once, and records what arrived.

Run as ``python -m bench.fake_sender PORT``. Each kind lives under its own prefix, the
``api_url`` a bench source is given (``http://127.0.0.1:PORT/<kind>``):

- ``/waha/api/sendText`` → 201, whatsapp-web.js' message (``id._serialized``);
- ``/evolution/message/sendText/{instance}`` → 201, Evolution v2's (``key.id``);
- ``/whatsapp_cloud/{version}/{number}/messages`` → 200, the Graph API's (``messages[].id``);
- ``/twilio/2010-04-01/Accounts/{sid}/Messages.json`` → 201, a Message resource (``sid``).

It checks nothing (the tests' fakes in ``tests/fake_senders`` do): the hot path reads the
body, keeps it with its arrival time (``time.monotonic()``) and answers. ``GET /_stats``
counts, ``GET /_sent`` lists ``[arrival, kind, body]``, ``POST /_reset`` forgets. The
bench's raw client (``bench.rawclient``) posts to the same routes for the raw limit.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

Answer = Callable[[int], tuple[int, dict[str, Any]]]
"""A unique number → (status, body)."""


def waha(number: int) -> tuple[int, dict[str, Any]]:
    own = f"3EB0{number:016X}"
    chat = "0@c.us"
    return 201, {
        "id": {"fromMe": True, "remote": chat, "id": own, "_serialized": f"true_{chat}_{own}"},
        "ack": 0,
        "type": "chat",
        "fromMe": True,
    }


def evolution(number: int) -> tuple[int, dict[str, Any]]:
    return 201, {
        "key": {"remoteJid": "0@s.whatsapp.net", "fromMe": True, "id": f"3EB0{number:018X}"},
        "status": "PENDING",
        "messageType": "conversation",
    }


def whatsapp_cloud(number: int) -> tuple[int, dict[str, Any]]:
    return 200, {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "0", "wa_id": "0"}],
        "messages": [{"id": f"wamid.BENCH{number:012X}"}],
    }


def twilio(number: int) -> tuple[int, dict[str, Any]]:
    sid = f"SM{number:032x}"
    return 201, {"sid": sid, "status": "queued", "direction": "outbound-api", "error_code": None}


ANSWERS: dict[str, Answer] = {
    "waha": waha,
    "evolution": evolution,
    "whatsapp_cloud": whatsapp_cloud,
    "twilio": twilio,
}


def make_app() -> web.Application:
    numbers = itertools.count(1)
    sent: list[tuple[float, str, str]] = []

    async def send(request: web.Request) -> web.Response:
        body = await request.text()
        kind = request.match_info["kind"]
        answer = ANSWERS.get(kind)
        if answer is None:
            return web.json_response({"error": f"no kind {kind!r}"}, status=404)
        sent.append((time.monotonic(), kind, body))
        status, found = answer(next(numbers))
        return web.json_response(found, status=status)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"sends": len(sent)})

    async def listed(_: web.Request) -> web.Response:
        return web.json_response(sent)

    async def reset(_: web.Request) -> web.Response:
        sent.clear()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/_stats", stats)
    app.router.add_get("/_sent", listed)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/{kind}/{tail:.*}", send)
    return app


def main() -> None:
    web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
