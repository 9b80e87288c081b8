"""Adds the pages to the app: session cookies, static files, routes and HTML errors."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from chathooks.logins import session_secret
from chathooks.page_sessions import SESSION_DAYS
from chathooks.runtime import Runtime
from chathooks.web import chats, login, pages, sources, team, workspace
from chathooks.web.csrf import CsrfRefused
from chathooks.web.pages import PageNotFound
from chathooks.web.render import render
from chathooks.web.viewer import LoginRequired


def install_pages(app: FastAPI, rt: Runtime) -> None:
    # Signed (itsdangerous), HttpOnly, SameSite=Lax; Secure when served over https.
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(rt),
        session_cookie="chathooks_session",
        max_age=SESSION_DAYS * 24 * 3600,
        same_site="lax",
        https_only=rt.settings.base_url.startswith("https://"),
    )
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for router in (
        login.router,
        pages.router,
        chats.router,
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
