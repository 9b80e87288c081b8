"""Who is looking at a page: the teammate (and so the workspace) of the session cookie."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from chathooks import page_sessions
from chathooks.runtime import Runtime

_TOKEN = "session"


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


def start_cookie(request: Request, session_token: str) -> None:
    """A fresh cookie (no fixation): the old one, CSRF token included, is dropped. It holds
    the token of a server-side session (``chathooks.page_sessions``)."""
    request.session.clear()
    request.session[_TOKEN] = session_token


def session_token(request: Request) -> str | None:
    token = request.session.get(_TOKEN)
    return token if isinstance(token, str) else None


def log_out(request: Request) -> None:
    """Forget the cookie; the caller ends the server-side session."""
    request.session.clear()


def _requested_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def viewer(request: Request) -> Viewer:
    """The logged-in teammate: the cookie's session, checked in the database on every page."""
    rt: Runtime = request.app.state.runtime
    token = session_token(request)
    if token is not None:
        with rt.transaction() as session:
            found = page_sessions.find(session, token, rt.clock.now())
            if found is not None:
                teammate, workspace = found
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
