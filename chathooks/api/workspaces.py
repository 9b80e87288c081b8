"""Workspaces (admin), teammates and WhatsApp accounts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from chathooks import workspaces
from chathooks.api.deps import RuntimeDep, WorkspaceDep, require_admin
from chathooks.api.errors import ERRORS
from chathooks.logins import password_link
from chathooks.schemas import (
    AccountChange,
    AccountIn,
    AccountOut,
    AccountSource,
    ApiTokenOut,
    TeammateCreated,
    TeammateIn,
    TeammateOut,
    WorkspaceCreated,
    WorkspaceIn,
)

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.post(
    "/workspaces",
    summary="Create a workspace",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_admin)],
    response_model=WorkspaceCreated,
)
def create_workspace(body: WorkspaceIn, rt: RuntimeDep) -> WorkspaceCreated:
    """Create a team's workspace (admin token). The API token is shown only here."""
    with rt.transaction() as session:
        new = workspaces.create_workspace(
            session,
            name=body.name,
            owner_name=body.owner_name,
            owner_email=str(body.owner_email),
            now=rt.clock.now(),
        )
    link = password_link(rt, new.owner)
    return WorkspaceCreated(
        id=new.workspace.id,
        name=new.workspace.name,
        api_token=new.api_token,
        owner_password_link=link,
    )


@router.post(
    "/workspace/api-token", summary="Replace the workspace's API token", response_model=ApiTokenOut
)
def rotate_api_token(workspace: WorkspaceDep, rt: RuntimeDep) -> ApiTokenOut:
    """A new API token for your workspace. The token this request used stops working at
    once, in every chathooks process: update your integrations with the new one."""
    with rt.transaction() as session:
        token = workspaces.rotate_api_token(session, workspace)
    return ApiTokenOut(api_token=token)


@router.post(
    "/teammates",
    summary="Invite a teammate",
    status_code=status.HTTP_201_CREATED,
    response_model=TeammateCreated,
)
def add_teammate(body: TeammateIn, workspace: WorkspaceDep, rt: RuntimeDep) -> TeammateCreated:
    """Invite a teammate: give them ``password_link`` to set their password for the pages."""
    with rt.transaction() as session:
        teammate = workspaces.add_teammate(
            session, workspace, full_name=body.full_name, email=str(body.email), now=rt.clock.now()
        )
    return TeammateCreated(
        id=teammate.id,
        full_name=teammate.full_name,
        email=teammate.email,
        password_link=password_link(rt, teammate),
    )


@router.delete(
    "/teammates/{teammate_id}",
    summary="Remove a teammate",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {**ERRORS[409], "description": "The workspace owner can't be removed."}},
)
def remove_teammate(teammate_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> Response:
    """Their WhatsApp accounts pass to the workspace owner, the chats they were responsible
    for have no responsible any more, and their login to the pages ends at once."""
    with rt.transaction() as session:
        workspaces.remove_teammate(session, workspace, teammate_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/teammates", summary="List the teammates", response_model=list[TeammateOut])
def list_teammates(workspace: WorkspaceDep, rt: RuntimeDep) -> list[TeammateOut]:
    """The workspace's teammates."""
    with rt.transaction() as session:
        return [
            TeammateOut.model_validate(t) for t in workspaces.list_teammates(session, workspace)
        ]


@router.get(
    "/whatsapp-accounts", summary="List the WhatsApp accounts", response_model=list[AccountOut]
)
def list_accounts(workspace: WorkspaceDep, rt: RuntimeDep) -> list[AccountOut]:
    """The workspace's WhatsApp accounts, each with its owner and the source feeding it."""
    with rt.transaction() as session:
        return [_account_out(row) for row in workspaces.account_rows(session, workspace)]


@router.post(
    "/whatsapp-accounts",
    summary="Add a WhatsApp account",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountOut,
)
def add_account(body: AccountIn, workspace: WorkspaceDep, rt: RuntimeDep) -> AccountOut:
    """Connect a WhatsApp number; its owner (by e-mail) becomes a teammate if new."""
    with rt.transaction() as session:
        account, owner = workspaces.add_account(
            session,
            workspace,
            phone=body.phone,
            full_name=body.full_name,
            email=str(body.email),
            now=rt.clock.now(),
        )
        return _account_out(workspaces.AccountRow(account, owner, None))


@router.patch(
    "/whatsapp-accounts/{account_id}",
    response_model=AccountOut,
    summary="Rename a WhatsApp account",
)
def rename_account(
    account_id: int, body: AccountChange, workspace: WorkspaceDep, rt: RuntimeDep
) -> AccountOut:
    """Rename a WhatsApp account."""
    with rt.transaction() as session:
        account = workspaces.get_account(session, workspace, account_id)
        workspaces.rename_account(session, account, body.name)
        row = next(r for r in workspaces.account_rows(session, workspace) if r.account is account)
        return _account_out(row)


@router.delete(
    "/whatsapp-accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a WhatsApp account",
)
def remove_account(account_id: int, workspace: WorkspaceDep, rt: RuntimeDep) -> Response:
    """Remove a WhatsApp account: its chats, messages and everything delivered stay, and
    messages naming it are refused (422) until it is connected again. A source's next
    event of this number connects it again by itself."""
    with rt.transaction() as session:
        account = workspaces.get_account(session, workspace, account_id)
        workspaces.remove_account(session, account, rt.clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _account_out(row: workspaces.AccountRow) -> AccountOut:
    source = row.source
    return AccountOut(
        id=row.account.id,
        phone=row.account.phone,
        name=row.account.name,
        full_name=row.owner.full_name,
        email=row.owner.email,
        source=AccountSource(id=source.id, kind=source.kind, name=source.name) if source else None,
    )
