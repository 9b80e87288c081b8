"""Templates, one-time notices, and the headers every page carries."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from chathooks.runtime import Runtime
from chathooks.web.csrf import csrf_token
from chathooks.web.showing import filters_in_words, plural, relative
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


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def see_other(path: str) -> RedirectResponse:
    """After a POST: the browser loads ``path`` with a GET (a reload never re-posts)."""
    return RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)


def utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


templates.env.filters["utc"] = utc
templates.env.filters["iso"] = iso
templates.env.globals["relative"] = relative
templates.env.globals["plural"] = plural
templates.env.filters["in_words"] = filters_in_words


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A notice shown once on the next page (after a redirect)."""
    request.session.setdefault("flash", []).append([kind, text])
    request.session["flash"] = request.session["flash"]


def _context(
    request: Request, name: str, viewer: Viewer | None, context: dict[str, Any]
) -> dict[str, Any]:
    return {
        "viewer": viewer,
        "csrf_token": csrf_token(request),
        "flashes": request.session.pop("flash", []) if not name.startswith("_") else [],
        **context,
    }


def render(
    request: Request,
    name: str,
    viewer: Viewer | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, name, _context(request, name, viewer, context), status_code=status_code
    )
    response.headers.update(PAGE_HEADERS)
    return response


def fragment_digest(request: Request, name: str, viewer: Viewer, **context: Any) -> str:
    """A short fingerprint of a fragment as it would render now: a poll that finds it
    unchanged answers 204, and the page keeps its focus and scroll (screen readers too)."""
    text = templates.get_template(name).render(
        {"request": request, **_context(request, name, viewer, context)}
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]
