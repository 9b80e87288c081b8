"""The first start: with no workspace yet, ``/setup`` takes the admin token and creates the
first workspace with its owner's password, and logs the owner in. Once a workspace exists
the page is gone (it leads to the login), so it never becomes a second way in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, Response

from chathooks import page_sessions, workspaces
from chathooks.admin import admin_token_matches
from chathooks.logins import MIN_PASSWORD_LENGTH, set_password
from chathooks.schemas import WorkspaceIn
from chathooks.store import tenants
from chathooks.web.csrf import require_csrf
from chathooks.web.forms import checked
from chathooks.web.render import flash, render, runtime, see_other
from chathooks.web.viewer import start_cookie
from chathooks.web.workspace import NEW_TOKEN
from chathooks.web.workspace import PATH as WORKSPACE_PAGE

router = APIRouter(include_in_schema=False)
PATH = "/setup"
WRONG_TOKEN = (
    "This is not the admin token. 'chathooks serve' printed it when it first started "
    "(or it is CHATHOOKS_ADMIN_TOKEN); 'chathooks rotate-admin-token' prints a new one."
)


def _form(
    request: Request, values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "setup.html",
        status_code=status_code,
        values=values,
        errors=errors,
        minimum=MIN_PASSWORD_LENGTH,
    )


@router.get(PATH)
def setup_page(request: Request) -> Response:
    with runtime(request).transaction() as session:
        if tenants.has_workspace(session):
            return see_other("/login")
    return _form(request, {}, {})


@router.post(PATH, dependencies=[Depends(require_csrf)])
def set_up(
    request: Request,
    *,
    admin_token: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    owner_name: Annotated[str, Form()] = "",
    owner_email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """All or nothing: the workspace, its owner and the owner's password; then the owner is
    logged in and sees the workspace's API token, once."""
    rt = runtime(request)
    values = {"name": name, "owner_name": owner_name, "owner_email": owner_email}
    body, errors = checked(WorkspaceIn, values)
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"Use at least {MIN_PASSWORD_LENGTH} characters."
    elif password != confirm:
        errors["confirm"] = "The two passwords differ."
    with rt.transaction() as session:
        if tenants.has_workspace(session):
            return see_other("/login")
        if not admin_token_matches(session, rt.settings, admin_token.strip()):
            errors["admin_token"] = WRONG_TOKEN
        if body is None or errors:
            return _form(request, values, errors, status.HTTP_422_UNPROCESSABLE_CONTENT)
        new = workspaces.create_workspace(
            session,
            name=body.name,
            owner_name=body.owner_name,
            owner_email=str(body.owner_email),
            now=rt.clock.now(),
        )
        set_password(session, new.owner, password)
        start_cookie(request, page_sessions.start(session, new.owner.id, rt.clock.now()))
    request.session[NEW_TOKEN] = new.api_token
    flash(request, f"Welcome to chathooks: {body.name} is ready, and you are logged in.")
    return see_other(WORKSPACE_PAGE)
