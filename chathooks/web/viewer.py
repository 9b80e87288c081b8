"""Who is looking at a page: the teammate (and so the workspace) of the session cookie."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from chathooks.runtime import Runtime
from chathooks.store import tenants
from chathooks.store.models import Teammate


@dataclass(frozen=True, slots=True)
class Viewer:
    teammate_id: int
    workspace_id: int
    full_name: str
    email: str
    workspace_name: str


class LoginRequired(Exception):
    """No valid session: the visitor is sent to ``/login?next=...``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _password_stamp(teammate: Teammate) -> str:
    """Changes with the password, so a new password ends every older session."""
    return hashlib.sha256((teammate.password_hash or "").encode()).hexdigest()[:16]


def log_in(request: Request, teammate: Teammate) -> None:
    """A fresh session (no fixation): the old one, CSRF token included, is dropped."""
    request.session.clear()
    request.session.update(
        teammate_id=teammate.id,
        workspace_id=teammate.workspace_id,
        stamp=_password_stamp(teammate),
    )


def log_out(request: Request) -> None:
    request.session.clear()


def _requested_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def viewer(request: Request) -> Viewer:
    """The logged-in teammate, checked against the database on every page."""
    rt: Runtime = request.app.state.runtime
    teammate_id = request.session.get("teammate_id")
    workspace_id = request.session.get("workspace_id")
    if isinstance(teammate_id, int) and isinstance(workspace_id, int):
        with rt.transaction() as session:
            teammate = tenants.get_teammate(session, workspace_id, teammate_id)
            workspace = tenants.get_workspace(session, workspace_id)
            if (
                teammate is not None
                and workspace is not None
                and request.session.get("stamp") == _password_stamp(teammate)
            ):
                return Viewer(
                    teammate.id, workspace.id, teammate.full_name, teammate.email, workspace.name
                )
        log_out(request)
    raise LoginRequired(_requested_path(request))


ViewerDep = Annotated[Viewer, Depends(viewer)]


def safe_next(next_path: str | None) -> str:
    """Only a path on this site: never ``//host`` or ``https://host`` (open redirect)."""
    if not next_path or not next_path.startswith("/") or next_path.startswith(("//", "/\\")):
        return "/webhooks/outbound"
    return next_path
