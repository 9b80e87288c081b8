"""Log in, log out, and the one-time link that sets a teammate's password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from chathooks import page_sessions
from chathooks.logins import (
    MIN_PASSWORD_LENGTH,
    log_in,
    password_token_claims,
    set_password,
    teammate_for_claims,
)
from chathooks.store import tenants
from chathooks.web.csrf import require_csrf
from chathooks.web.render import flash, render, runtime
from chathooks.web.viewer import log_out, safe_next, session_token, start_cookie

router = APIRouter(include_in_schema=False)
CsrfChecked = [Depends(require_csrf)]


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_page(
    request: Request, next_path: Annotated[str, Query(alias="next")] = ""
) -> HTMLResponse:
    """On the first start (no workspace yet) it leads to the setup page instead."""
    with runtime(request).transaction() as session:
        first_start = not tenants.has_workspace(session)
    return render(
        request,
        "login.html",
        next=safe_next(next_path),
        email="",
        error="",
        first_start=first_start,
    )


@router.post("/login", dependencies=CsrfChecked)
async def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "",
) -> Response:
    """E-mail and password; one e-mail may be a teammate in several workspaces, so the
    teammate whose password matches is the one logged in. Too many attempts for the e-mail
    or from the address are answered 429 with ``Retry-After``, before any password work."""
    address = request.client.host if request.client else ""
    result = await log_in(runtime(request), email, password, address)
    if result.session_token is not None:
        start_cookie(request, result.session_token)
        return _see_other(safe_next(next_path))
    if result.retry_after is not None:
        minutes = -(-result.retry_after // 60)
        error = (
            f"Too many login attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        )
        status_code = status.HTTP_429_TOO_MANY_REQUESTS
    else:
        error, status_code = "Wrong e-mail or password.", status.HTTP_401_UNAUTHORIZED
    response = render(
        request,
        "login.html",
        status_code=status_code,
        next=safe_next(next_path),
        email=email,
        error=error,
    )
    if result.retry_after is not None:
        response.headers["Retry-After"] = str(result.retry_after)
    return response


@router.post("/logout", dependencies=CsrfChecked)
def logout(request: Request) -> Response:
    """Ends this session on the server: a copy of the cookie no longer opens anything."""
    token = session_token(request)
    if token is not None:
        with runtime(request).transaction() as session:
            page_sessions.end(session, token)
    log_out(request)
    flash(request, "You are logged out.")
    return _see_other("/login")


@router.get("/set-password/{token}")
def set_password_page(request: Request, token: str) -> HTMLResponse:
    claims = password_token_claims(runtime(request), token)
    with runtime(request).transaction() as session:
        teammate = teammate_for_claims(session, claims)
        who = (teammate.full_name, teammate.email) if teammate else None
    if who is None:
        return render(request, "link_expired.html", status_code=status.HTTP_404_NOT_FOUND)
    return render(request, "set_password.html", who=who, errors={}, minimum=MIN_PASSWORD_LENGTH)


@router.post("/set-password/{token}", dependencies=CsrfChecked)
def set_password_submit(
    request: Request,
    token: str,
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """Sets the password (the link dies with it) and logs the teammate in."""
    errors: dict[str, str] = {}
    claims = password_token_claims(runtime(request), token)
    with runtime(request).transaction() as session:
        teammate = teammate_for_claims(session, claims)
        if teammate is None:
            return render(request, "link_expired.html", status_code=status.HTTP_404_NOT_FOUND)
        who = (teammate.full_name, teammate.email)
        if len(password) < MIN_PASSWORD_LENGTH:
            errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
        elif password != confirm:
            errors["confirm"] = "The two passwords differ."
        else:
            set_password(session, teammate, password)
            start_cookie(
                request, page_sessions.start(session, teammate.id, runtime(request).clock.now())
            )
    if errors:
        return render(
            request,
            "set_password.html",
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            who=who,
            errors=errors,
            minimum=MIN_PASSWORD_LENGTH,
        )
    flash(request, "Your password is set. Welcome to chathooks.")
    return _see_other("/webhooks/outbound")
