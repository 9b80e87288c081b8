"""Settings > Workspace: what the workspace is, and rotating its API token."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from chathooks import workspaces
from chathooks.store import tenants
from chathooks.web.csrf import require_csrf
from chathooks.web.render import render, runtime
from chathooks.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
PATH = "/settings/workspace"
NEW_TOKEN = "new_api_token"


@router.get(PATH)
def workspace_page(request: Request, viewer: ViewerDep) -> HTMLResponse:
    """A token just made is shown once: it leaves the session as it is shown."""
    new_token = request.session.pop(NEW_TOKEN, "")
    with runtime(request).transaction() as session:
        return render(
            request,
            "workspace.html",
            viewer,
            workspace=tenants.get_workspace(session, viewer.workspace_id),
            api_base=runtime(request).settings.base_url + "/api/v1",
            new_token=new_token,
        )


@router.post(PATH + "/api-token", dependencies=[Depends(require_csrf)])
def rotate_api_token(request: Request, viewer: ViewerDep) -> Response:
    """Then back to the page (so reloading it cannot rotate again), which shows the token."""
    with runtime(request).transaction() as session:
        request.session[NEW_TOKEN] = workspaces.rotate_api_token(session, viewer.workspace_id)
    return RedirectResponse(PATH, status_code=status.HTTP_303_SEE_OTHER)
