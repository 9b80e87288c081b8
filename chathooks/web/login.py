"""Log in, log out, and the one-time link that sets a teammate's password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from chathooks.logins import (
    MIN_PASSWORD_LENGTH,
    password_matches,
    password_token_claims,
    set_password,
    teammate_for_claims,
)
from chathooks.runtime import Runtime
from chathooks.store import tenants
from chathooks.web.csrf import require_csrf
from chathooks.web.render import flash, render
from chathooks.web.viewer import log_in, log_out, safe_next

router = APIRouter(include_in_schema=False)
CsrfChecked = [Depends(require_csrf)]


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)


@router.get("/login")
def login_page(
    request: Request, next_path: Annotated[str, Query(alias="next")] = ""
) -> HTMLResponse:
    return render(request, "login.html", next=safe_next(next_path), email="", error="")


@router.post("/login", dependencies=CsrfChecked)
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "",
) -> Response:
    """E-mail and password; one e-mail may be a teammate in several workspaces, so the
    teammate whose password matches is the one logged in."""
    with _rt(request).transaction() as session:
        found = next(
            (
                teammate
                for teammate in tenants.teammates_by_email_anywhere(session, email.strip().lower())
                if password_matches(teammate, password)
            ),
            None,
        )
        if found is not None:
            log_in(request, found)
    if found is None:
        return render(
            request,
            "login.html",
            status_code=status.HTTP_401_UNAUTHORIZED,
            next=safe_next(next_path),
            email=email,
            error="Wrong e-mail or password.",
        )
    return _see_other(safe_next(next_path))


@router.post("/logout", dependencies=CsrfChecked)
def logout(request: Request) -> Response:
    log_out(request)
    flash(request, "You are logged out.")
    return _see_other("/login")


@router.get("/set-password/{token}")
def set_password_page(request: Request, token: str) -> HTMLResponse:
    claims = password_token_claims(_rt(request), token)
    with _rt(request).transaction() as session:
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
    claims = password_token_claims(_rt(request), token)
    with _rt(request).transaction() as session:
        teammate = teammate_for_claims(session, claims)
        if teammate is None:
            return render(request, "link_expired.html", status_code=status.HTTP_404_NOT_FOUND)
        who = (teammate.full_name, teammate.email)
        if len(password) < MIN_PASSWORD_LENGTH:
            errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
        elif password != confirm:
            errors["confirm"] = "The two passwords differ."
        else:
            set_password(teammate, password)
            log_in(request, teammate)
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
