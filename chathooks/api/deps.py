"""What every route needs: the runtime, a unit of work, and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import Connection

from chathooks.admin import admin_token_matches
from chathooks.runtime import Runtime
from chathooks.security import hash_token
from chathooks.store import tenants

bearer = HTTPBearer(auto_error=False, description="A workspace's API token, or the admin token.")


async def runtime(request: Request) -> Runtime:
    """Async so FastAPI calls it in the event loop: a sync dependency costs a thread hop."""
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def unauthorized() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or unknown bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def hashed_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The bearer token's hash (401 without one), for a lookup in the route's own transaction."""
    if credentials is None:
        raise unauthorized()
    return hash_token(credentials.credentials)


TokenHashDep = Annotated[str, Depends(hashed_token)]


def workspace_of(connection: Connection, token_hash: str) -> int:
    """The token's workspace (401 if none has it); every query a route makes is scoped to it.

    Looked up on every request (one read on a unique index) rather than cached: a rotated
    token then stops working at once in every process."""
    found = tenants.workspace_id_by_token_hash(connection, token_hash)
    if found is None:
        raise unauthorized()
    return found


def workspace_id(rt: RuntimeDep, token_hash: TokenHashDep) -> int:
    """The caller's workspace, read without a writer's turn on SQLite. (Ingest instead looks
    it up in its own write transaction: one transaction per request.)"""
    with rt.reading() as connection:
        return workspace_of(connection, token_hash)


def require_admin(
    rt: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    if credentials is None:
        raise unauthorized()
    with rt.transaction() as session:
        if not admin_token_matches(session, rt.settings, credentials.credentials):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "the admin token is required")


WorkspaceDep = Annotated[int, Depends(workspace_id)]


def _calls(dependant: Dependant) -> set[object]:
    return {dependant.call, *(call for d in dependant.dependencies for call in _calls(d))}


def refused_caller(rt: Runtime, request: Request) -> HTTPException | None:
    """Authentication first: for a request whose parameters or body FastAPI found invalid
    before the route's own token check ran, the 401 (or 403) that check would give, if
    any. (Run only then, so valid requests pay nothing for it.)"""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return None
    needs = _calls(route.dependant)
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if not (needs & {hashed_token, require_admin}):
        return None
    if scheme.lower() != "bearer" or not token:
        return unauthorized()
    if require_admin in needs:
        with rt.transaction() as session:
            if not admin_token_matches(session, rt.settings, token):
                return HTTPException(status.HTTP_403_FORBIDDEN, "the admin token is required")
        return None
    with rt.reading() as connection:
        known = tenants.workspace_id_by_token_hash(connection, hash_token(token)) is not None
    return None if known else unauthorized()
