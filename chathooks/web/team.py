"""Teammates (Settings) and WhatsApp accounts (WhatsApp): who is in the workspace and which numbers
it forwards. The same services as the API (``chathooks.workspaces``), one transaction per
request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from chathooks import workspaces
from chathooks.errors import Conflict, NotFound
from chathooks.logins import password_link
from chathooks.schemas import AccountChange, AccountIn, TeammateIn
from chathooks.store import messages, tenants
from chathooks.store.models import Teammate, WhatsappAccount
from chathooks.web.csrf import require_csrf
from chathooks.web.errors import PageNotFound
from chathooks.web.forms import Errors, checked, sentence
from chathooks.web.render import flash, render, runtime, see_other
from chathooks.web.showing import plural
from chathooks.web.viewer import Viewer, ViewerDep

router = APIRouter(include_in_schema=False)
CsrfChecked = [Depends(require_csrf)]
TEAMMATES = "/settings/teammates"
ACCOUNTS = "/whatsapp/accounts"


@router.get("/settings")
def settings_home() -> Response:
    return see_other(TEAMMATES)


def _teammates(
    request: Request,
    session: Session,
    viewer: Viewer,
    *,
    link_for: int | None = None,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> HTMLResponse:
    """The list; ``link_for`` shows the set-password link of a teammate who has no
    password yet (a link for someone with one would let its holder take over their login)."""
    teammates = workspaces.list_teammates(session, viewer.workspace_id)
    owner = workspaces.owner_of(session, viewer.workspace_id)
    invited = next((t for t in teammates if t.id == link_for and not t.password_hash), None)
    return render(
        request,
        "teammates.html",
        viewer,
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if errors else status.HTTP_200_OK,
        teammates=teammates,
        owner_id=owner.id if owner else None,
        owner_name=owner.full_name if owner else "",
        accounts=tenants.account_counts(session, viewer.workspace_id),
        chats=messages.responsible_counts(session, viewer.workspace_id),
        invited=invited,
        link=password_link(runtime(request), invited) if invited else "",
        values=values or {},
        errors=errors or {},
    )


@router.get(TEAMMATES)
def teammates_page(request: Request, viewer: ViewerDep, link: int | None = None) -> HTMLResponse:
    with runtime(request).transaction() as session:
        return _teammates(request, session, viewer, link_for=link)


Made = TypeVar("Made")


def _create(
    request: Request,
    viewer: Viewer,
    *,
    schema: type[BaseModel],
    values: dict[str, str],
    conflict_field: str,
    create: Callable[[Session, Any, datetime], Made],
    again: Callable[..., HTMLResponse],
) -> Made | HTMLResponse:
    """Check a form with the API's schema and create through the service, in one
    transaction; or show the page ``again`` with the errors (a conflict names
    ``conflict_field``), having changed nothing."""
    rt = runtime(request)
    body, errors = checked(schema, values)
    with rt.transaction() as session:
        if body is not None:
            try:
                return create(session, body, rt.clock.now())
            except Conflict as error:
                errors[conflict_field] = sentence(str(error))
        session.rollback()
        return again(request, session, viewer, values=values, errors=errors)


@router.post(TEAMMATES, dependencies=CsrfChecked)
def invite(
    request: Request,
    viewer: ViewerDep,
    full_name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
) -> Response:
    """Add a teammate, then show the link that lets them set their password."""

    def add(session: Session, body: TeammateIn, now: datetime) -> Teammate:
        return workspaces.add_teammate(
            session, viewer.workspace_id, full_name=body.full_name, email=body.email, now=now
        )

    values = {"full_name": full_name, "email": email}
    teammate = _create(
        request,
        viewer,
        schema=TeammateIn,
        values=values,
        conflict_field="email",
        create=add,
        again=_teammates,
    )
    if isinstance(teammate, Response):
        return teammate
    flash(request, f"{teammate.full_name} is invited. Send them the link below.")
    return see_other(f"{TEAMMATES}?link={teammate.id}#invite-link")


@router.post(TEAMMATES + "/{teammate_id}/remove", dependencies=CsrfChecked)
def remove(request: Request, teammate_id: int, viewer: ViewerDep) -> Response:
    try:
        with runtime(request).transaction() as session:
            removed = workspaces.remove_teammate(session, viewer.workspace_id, teammate_id)
    except NotFound:
        raise PageNotFound() from None
    except Conflict as error:
        flash(request, f"Not removed: {error}.", "error")
        return see_other(TEAMMATES)
    accounts, chats = removed.accounts_moved, removed.chats_unassigned
    moved = (
        f" Their {plural(accounts, 'WhatsApp account')} now "
        f"{'belongs' if accounts == 1 else 'belong'} to {removed.new_account_owner}."
        if accounts
        else ""
    )
    unassigned = (
        f" {plural(chats, 'chat')} {'has' if chats == 1 else 'have'} no responsible now."
        if chats
        else ""
    )
    flash(request, f"{removed.full_name} is removed and can no longer log in.{moved}{unassigned}")
    return see_other(TEAMMATES)


def _accounts(
    request: Request,
    session: Session,
    viewer: Viewer,
    values: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> HTMLResponse:
    return render(
        request,
        "accounts.html",
        viewer,
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if errors else status.HTTP_200_OK,
        accounts=workspaces.account_rows(session, viewer.workspace_id),
        chats=messages.chat_counts(session, viewer.workspace_id),
        values=values or {},
        errors=errors or {},
    )


@router.get(ACCOUNTS)
def accounts_page(request: Request, viewer: ViewerDep) -> HTMLResponse:
    with runtime(request).transaction() as session:
        return _accounts(request, session, viewer)


@router.post(ACCOUNTS, dependencies=CsrfChecked)
def connect(
    request: Request,
    viewer: ViewerDep,
    phone: Annotated[str, Form()] = "",
    full_name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
) -> Response:
    """Connect a number; its owner becomes a teammate if their e-mail is new."""

    def add(session: Session, body: AccountIn, now: datetime) -> WhatsappAccount:
        account, _ = workspaces.add_account(
            session,
            viewer.workspace_id,
            phone=body.phone,
            full_name=body.full_name,
            email=body.email,
            now=now,
        )
        return account

    values = {"phone": phone, "full_name": full_name, "email": email}
    account = _create(
        request,
        viewer,
        schema=AccountIn,
        values=values,
        conflict_field="phone",
        create=add,
        again=_accounts,
    )
    if isinstance(account, Response):
        return account
    flash(request, f"{account.phone} is connected. Its messages can now come in.")
    return see_other(ACCOUNTS)


@router.post(ACCOUNTS + "/{account_id}/rename", dependencies=CsrfChecked)
def rename_account(
    request: Request, account_id: int, viewer: ViewerDep, name: Annotated[str, Form()] = ""
) -> Response:
    body, errors = checked(AccountChange, {"name": name.strip()})
    if body is None:
        flash(request, f"Not renamed: {sentence(next(iter(errors.values())))}", "error")
        return see_other(ACCOUNTS)
    try:
        with runtime(request).transaction() as session:
            account = workspaces.get_account(session, viewer.workspace_id, account_id)
            workspaces.rename_account(session, account, body.name)
    except NotFound:
        raise PageNotFound() from None
    flash(
        request,
        f"{account.phone} is now named {body.name}."
        if body.name
        else f"{account.phone} has no name now.",
    )
    return see_other(ACCOUNTS)


@router.post(ACCOUNTS + "/{account_id}/remove", dependencies=CsrfChecked)
def remove_account(request: Request, account_id: int, viewer: ViewerDep) -> Response:
    rt = runtime(request)
    try:
        with rt.transaction() as session:
            account = workspaces.get_account(session, viewer.workspace_id, account_id)
            workspaces.remove_account(session, account, rt.clock.now())
    except NotFound:
        raise PageNotFound() from None
    flash(request, f"{account.phone} is removed. Its chats and delivered messages stay.")
    return see_other(ACCOUNTS)
