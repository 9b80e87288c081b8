"""``chathooks listen``: a receiver on this machine that prints what a webhook sends, in the
spirit of ``stripe listen``, so a first run ends with a request you can see arrive.

Every request is answered (2xx unless told otherwise) whatever its signature says: the
point is to show what arrived, and a wrong secret on this side must not disable the
webhook on the other.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from standardwebhooks import Webhook

Print = Callable[[str], None]
MAX_BODY_BYTES = 8 * 1024 * 1024
"""Above chathooks' largest bundle (1 MiB) with room to spare."""


def signing_key(secret: str) -> Webhook:
    """The verifier for a ``whsec_…`` secret; ``ValueError`` names what is wrong with it."""
    if not secret.startswith("whsec_"):
        raise ValueError("must be the webhook's signing secret, starting with whsec_")
    try:
        return Webhook(secret)
    except Exception as error:
        raise ValueError(f"is not a valid signing secret ({error})") from None


def signature_verdict(key: Webhook | None, headers: dict[str, str], body: bytes) -> str:
    """What the signature says, in words. A stranger's malformed headers are "invalid",
    never an exception."""
    if key is None:
        return "signature not checked (start with --secret whsec_… to check it)"
    try:
        key.verify(body, headers, json_parse=False)
    except Exception as error:
        return f"signature INVALID: {error or type(error).__name__}"
    return "signature valid"


def readable_body(body: bytes) -> str:
    """JSON indented, with emoji as they are; anything else as text."""
    text = body.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def describe(
    method: str, path: str, *, headers: dict[str, str], body: bytes, verdict: str, at: datetime
) -> str:
    lower = {name.lower(): value for name, value in headers.items()}
    lines = [
        f"{at:%H:%M:%S}  {method} {path}",
        f"  webhook-id: {lower.get('webhook-id', '(none)')}",
        f"  {verdict}",
    ]
    if lower.get("chathooks-test") == "true":
        lines.append("  a test request (Send test)")
    return "\n".join([*lines, readable_body(body), ""])


def listener(key: Webhook | None, answer_status: int, out: Print) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        verdict = signature_verdict(key, headers, body)
        out(
            describe(
                request.method,
                request.path_qs,
                headers=headers,
                body=body,
                verdict=verdict,
                at=datetime.now().astimezone(),
            )
        )
        return web.json_response({"received": True}, status=answer_status)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_route("*", "/{tail:.*}", receive)
    return app


async def listen(host: str, port: int, key: Webhook | None, answer_status: int, out: Print) -> None:
    """Serve until cancelled (Ctrl-C)."""
    runner = web.AppRunner(listener(key, answer_status, out), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        checked = "checking signatures" if key else "not checking signatures (no --secret)"
        out(
            f"Listening on http://{shown}:{bound}/ (any path), answering {answer_status}, "
            f"{checked}. Ctrl-C stops.\n"
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
