"""Adds the pages to the app: session cookies, static files, routes and HTML errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from chathooks.logins import session_secret
from chathooks.page_sessions import SESSION_DAYS
from chathooks.runtime import Runtime
from chathooks.web import chats, login, replies, setup, sources, team, webhooks, workspace
from chathooks.web.csrf import CsrfRefused
from chathooks.web.errors import PageNotFound
from chathooks.web.render import render
from chathooks.web.viewer import LoginRequired

SESSIONLESS = ("/api/", "/in/")
"""Paths whose requests never use a page session (bearer tokens, senders' signatures)."""


class PagesSessions:
    """Session cookies for the pages only: an API or sender request skips reading and
    re-signing a cookie it never uses (a twentieth of a single-message request)."""

    def __init__(self, app: ASGIApp, /, **options: Any) -> None:
        self.sessionless = app
        self.with_session = SessionMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(SESSIONLESS):
            await self.sessionless(scope, receive, send)
        else:
            await self.with_session(scope, receive, send)


def install_pages(app: FastAPI, rt: Runtime) -> None:
    # Signed (itsdangerous), HttpOnly, SameSite=Lax; Secure when served over https.
    app.add_middleware(
        PagesSessions,
        secret_key=session_secret(rt),
        session_cookie="chathooks_session",
        max_age=SESSION_DAYS * 24 * 3600,
        same_site="lax",
        https_only=rt.settings.base_url.startswith("https://"),
    )
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for router in (
        login.router,
        setup.router,
        webhooks.router,
        chats.router,
        replies.router,
        sources.router,
        team.router,
        workspace.router,
    ):
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, error: LoginRequired) -> Response:
        target = "/login?next=" + quote(error.next_path, safe="/")
        if request.headers.get("hx-request"):
            # An htmx poll after the session ended: send the whole page to the login.
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)

    @app.exception_handler(PageNotFound)
    async def page_not_found(request: Request, _: PageNotFound) -> HTMLResponse:
        return render(request, "not_found.html", status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _: CsrfRefused) -> HTMLResponse:
        return render(request, "csrf.html", status_code=status.HTTP_403_FORBIDDEN)
