"""Adds the JSON API to the app: its routes and its error shapes."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from chathooks.api import (
    chats,
    inbound,
    messages,
    ops,
    outgoing,
    reference,
    sources,
    webhooks,
    workspaces,
)
from chathooks.api.deps import refused_caller
from chathooks.api.docs import install_docs
from chathooks.errors import BadField, Conflict, NotFound
from chathooks.ingest import UnknownAccount


def _field_error(loc: list[str | int], message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": [{"loc": loc, "msg": message, "type": kind}]},
    )


class _AsciiJSONResponse(JSONResponse):
    """Escapes non-ASCII, so an error that echoes a lone surrogate back still renders."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        refused = await run_in_threadpool(refused_caller, request.app.state.runtime, request)
        if refused is not None:  # a missing or wrong token is a 401 whatever the body
            return JSONResponse(
                {"detail": refused.detail}, refused.status_code, headers=refused.headers
            )
        return _AsciiJSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": jsonable_encoder(error.errors())},
        )

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": f"{error} not found"})

    @app.exception_handler(Conflict)
    async def conflict(_: Request, error: Conflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(error)})

    @app.exception_handler(BadField)
    async def bad_field(_: Request, error: BadField) -> JSONResponse:
        loc: list[str | int] = ["body", error.field, *([error.key] if error.key else [])]
        return _field_error(loc, str(error), "value_error")

    @app.exception_handler(UnknownAccount)
    async def unknown_account(request: Request, error: UnknownAccount) -> JSONResponse:
        loc: list[str | int] = ["body", "whatsapp_account_phone"]
        if request.url.path.endswith("/batch"):
            loc = ["body", "messages", error.index, "whatsapp_account_phone"]
        return _field_error(loc, str(error), "unknown_account")


def install_api(app: FastAPI) -> None:
    _install_error_handlers(app)
    for module in (workspaces, messages, chats, outgoing, webhooks, sources, ops):
        app.include_router(module.router)
    app.include_router(inbound.router)
    reference.describe(app)
    install_docs(app)
