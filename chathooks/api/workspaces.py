"""Workspaces (admin), teammates and WhatsApp accounts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from chathooks import workspaces
from chathooks.api.deps import RuntimeDep, WorkspaceDep, require_admin
from chathooks.logins import password_link
from chathooks.schemas import (
    AccountIn,
    AccountOut,
    TeammateIn,
    TeammateOut,
    WorkspaceCreated,
    WorkspaceIn,
)

router = APIRouter(prefix="/api/v1")


@router.post(
    "/workspaces",
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


@router.post("/teammates", status_code=status.HTTP_201_CREATED, response_model=TeammateOut)
def add_teammate(body: TeammateIn, workspace: WorkspaceDep, rt: RuntimeDep) -> TeammateOut:
    """Add a teammate; a chat's responsible is one of them."""
    with rt.transaction() as session:
        teammate = workspaces.add_teammate(
            session, workspace, full_name=body.full_name, email=str(body.email), now=rt.clock.now()
        )
        return TeammateOut.model_validate(teammate)


@router.get("/teammates", response_model=list[TeammateOut])
def list_teammates(workspace: WorkspaceDep, rt: RuntimeDep) -> list[TeammateOut]:
    """The workspace's teammates."""
    with rt.transaction() as session:
        return [
            TeammateOut.model_validate(t) for t in workspaces.list_teammates(session, workspace)
        ]


@router.post("/whatsapp-accounts", status_code=status.HTTP_201_CREATED, response_model=AccountOut)
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
        return AccountOut(
            id=account.id, phone=account.phone, full_name=owner.full_name, email=owner.email
        )
