"""``/in/{key}``: where WhatsApp senders deliver their webhooks (SPEC §8)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from chathooks.api.deps import RuntimeDep
from chathooks.sources import RawRequest, receive

router = APIRouter(prefix="/in", tags=["inbound"])
RESPONSES: dict[int | str, dict[str, str]] = {
    200: {"description": "Stored (with counts); or, for a GET, the challenge as text/plain."},
    400: {"description": "The body is not JSON."},
    401: {"description": "Missing or wrong signature or key: nothing stored."},
    404: {"description": "No source has this URL."},
    413: {"description": "The body is larger than 8 MiB."},
}


def _answer(answer: receive.Answer) -> Response:
    if answer.text is not None:
        return PlainTextResponse(
            answer.text, answer.status, headers={"X-Content-Type-Options": "nosniff"}
        )
    return JSONResponse(answer.json, answer.status)


async def _raw(request: Request) -> RawRequest:
    """The body's bytes, read no further than just past the limit."""
    chunks, size = [], 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > receive.MAX_BODY_BYTES:
            break
    return RawRequest(
        {name.lower(): value for name, value in request.headers.items()},
        b"".join(chunks),
        dict(request.query_params),
    )


@router.get("/{key}", responses=RESPONSES)
async def verify(key: str, request: Request, rt: RuntimeDep) -> Response:
    """Meta's subscription check: ``?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``
    is answered with the challenge when the token matches, else 403."""
    raw = await _raw(request)
    return _answer(await asyncio.to_thread(receive.handshake, rt, key, raw))


@router.post("/{key}", responses=RESPONSES)
@router.post("/{key}/{event}", responses=RESPONSES, include_in_schema=False)
async def deliver(key: str, request: Request) -> Response:
    """A sender's webhook: answered 200 once its messages are stored. (Evolution's
    "Webhook by events" appends the event's name to the URL; that is accepted too.)"""
    inbound: receive.Inbound = request.app.state.inbound
    headers = {name.lower(): value for name, value in request.headers.items()}
    return _answer(await inbound.receive(key, headers, request.stream()))
