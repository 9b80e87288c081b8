"""``/in/{key}``: where WhatsApp senders deliver their webhooks (SPEC §8)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from chathooks.api.deps import RuntimeDep
from chathooks.sources import receive
from chathooks.sources.protocol import RawRequest

router = APIRouter(prefix="/in", tags=["inbound"])
RESPONSES: dict[int | str, dict[str, str]] = {
    200: {
        "description": "Stored (with counts; for Twilio an empty TwiML `<Response/>`); or, "
        "for a GET, the challenge as text/plain."
    },
    400: {"description": "The body is not JSON (for Twilio: not a form)."},
    401: {"description": "Missing or wrong signature or key: nothing stored."},
    404: {"description": "No source has this URL."},
    413: {"description": "The body is larger than 8 MiB."},
}


def _answer(answer: receive.Answer) -> Response:
    if answer.text is not None:
        return Response(
            answer.text,
            answer.status,
            media_type=answer.media_type,
            headers={"X-Content-Type-Options": "nosniff"},
        )
    return JSONResponse(answer.json, answer.status)


def _called(request: Request, base_url: str) -> str:
    """The URL as the sender called it: the public base URL, not the host or scheme a proxy
    hands on, with the request's path and query."""
    return base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


@router.get("/{key}", summary="Answer Meta's subscription check", responses=RESPONSES)
async def verify(key: str, request: Request, rt: RuntimeDep) -> Response:
    """Meta's subscription check: ``?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…``
    is answered with the challenge when the token matches, else 403."""
    raw = RawRequest(
        _headers(request), b"", dict(request.query_params), _called(request, rt.settings.base_url)
    )
    return _answer(await asyncio.to_thread(receive.handshake, rt, key, raw))


@router.post("/{key}", summary="Receive a sender's webhook", responses=RESPONSES)
@router.post("/{key}/{event}", responses=RESPONSES, include_in_schema=False)
async def deliver(key: str, request: Request) -> Response:
    """A sender's webhook: answered 200 once its messages are stored. (Evolution's
    "Webhook by events" appends the event's name to the URL; that is accepted too.)
    ``api.lean`` answers these before FastAPI routes them; this route describes them."""
    return await received(request.app.state.inbound, key, request)


async def received(inbound: receive.Inbound, key: str, request: Request) -> Response:
    """A sender's POST to ``/in/{key}``, as the route and ``api.lean`` take it."""
    url = _called(request, inbound.rt.settings.base_url)
    return _answer(await inbound.receive(key, _headers(request), request.stream(), url=url))
