"""The two doors every message comes through, answered before FastAPI's stack.

A sender's ``POST /in/{key}`` and a valid ``POST /api/v1/messages`` are most of what a
chathooks process answers, one message per request. FastAPI's middleware, its routing over
every route of the API and the pages, and its dependencies cost about as much CPU as
storing the message (issue 16), so these requests skip them: the same functions the
routes call are called here, and the routes stay what the OpenAPI describes.

Nothing about an answer changes. A message request that is anything but well formed (no
bearer token, another content type, a body that is not JSON or not a valid event, a token
no workspace has, an account it has not added) is handed to FastAPI with its body, so
every error keeps its shape.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import State
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chathooks.api import inbound, messages
from chathooks.group_commit import UnknownToken
from chathooks.ingest import UnknownAccount
from chathooks.schemas import MessageEvent
from chathooks.security import hash_token

MESSAGES = "/api/v1/messages"
SOURCES = "/in/"


async def answer(state: State, routed: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request of the two doors here; any other request goes to ``routed``."""
    if scope["type"] == "http" and scope["method"] == "POST":
        path: str = scope["path"]
        if path == MESSAGES:
            await _message(state, routed, scope, receive, send)
            return
        key = _source_key(path)
        if key is not None:
            request = Request(scope, receive)
            await (await inbound.received(state.inbound, key, request))(scope, receive, send)
            return
    await routed(scope, receive, send)


def _source_key(path: str) -> str | None:
    """The key of ``/in/{key}`` or ``/in/{key}/{event}`` (the routes' paths), else None."""
    if not path.startswith(SOURCES):
        return None
    parts = path[len(SOURCES) :].split("/")
    return parts[0] if len(parts) <= 2 and all(parts) else None


async def _message(
    state: State, routed: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    request = Request(scope, receive)
    try:
        body = await request.body()
    except ClientDisconnect:  # gone before its body arrived: nothing to store or answer
        return
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    event = _event(request.headers.get("content-type"), body)
    if event is not None and token and scheme.lower() == "bearer":
        try:
            response = await messages.stored(state.group_commit, hash_token(token), event)
        except (UnknownToken, UnknownAccount):  # nothing was stored: FastAPI says why
            pass
        else:
            await response(scope, receive, send)
            return
    await routed(scope, _replaying(body, receive), send)


def _event(content_type: str | None, body: bytes) -> MessageEvent | None:
    """The body as a valid event, when it is labelled ``application/json`` (FastAPI reads
    a body without a content type as no JSON at all) and holds one."""
    if content_type is None or content_type.split(";")[0].strip().lower() != "application/json":
        return None
    try:
        parsed: Any = json.loads(body)
        return MessageEvent.model_validate(parsed)
    except Exception:  # FastAPI says what is wrong, in its own words
        return None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` for a request whose body was read already: the body, then what follows."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
