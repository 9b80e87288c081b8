"""Templates, one-time notices, and the headers every page carries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from chathooks.web.csrf import csrf_token
from chathooks.web.viewer import Viewer

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# Scripts and styles only from this site: a message text can never run as code.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


templates.env.filters["utc"] = utc
templates.env.filters["iso"] = iso


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A notice shown once on the next page (after a redirect)."""
    request.session.setdefault("flash", []).append([kind, text])
    request.session["flash"] = request.session["flash"]


def render(
    request: Request,
    name: str,
    viewer: Viewer | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    context = {
        "viewer": viewer,
        "csrf_token": csrf_token(request),
        "flashes": request.session.pop("flash", []) if not name.startswith("_") else [],
        **context,
    }
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response
