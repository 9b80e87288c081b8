"""A 405 names every method its path takes. Starlette's names only the first route whose
path matched, and FastAPI makes one route per method: ``DELETE /api/v1/chats/1`` was
told ``Allow: GET`` though ``PATCH`` works too."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods some route takes at the request's path, asked of the routes themselves
    (included routers match their own routes)."""
    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in app.router.routes
        )
    ]


def install_allow_header(app: FastAPI) -> None:
    @app.exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED)
    async def method_not_allowed(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": error.detail},
            status.HTTP_405_METHOD_NOT_ALLOWED,
            headers={"Allow": ", ".join(allowed_methods(app, request))},
        )
