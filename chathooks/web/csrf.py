"""CSRF protection: a random token per browser session, required on every page POST.

Forms carry it in a hidden ``csrf_token`` field; htmx sends it as the ``X-CSRF-Token``
header (set once on ``<body hx-headers>``). The session cookie is SameSite=Lax as well, but
that alone does not cover same-site attackers or old browsers.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request

FIELD = "csrf_token"
HEADER = "x-csrf-token"
_KEY = "csrf"


class CsrfRefused(Exception):
    """A POST without the session's token: refused before any change is made."""


def csrf_token(request: Request) -> str:
    """The session's token, created on first use (also for visitors, so login is covered)."""
    token = request.session.get(_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[_KEY] = token
    return str(token)


async def require_csrf(request: Request) -> None:
    """Dependency for every page POST: the token must match the session's, in constant time."""
    expected = request.session.get(_KEY)
    sent = request.headers.get(HEADER)
    if not sent:
        form = await request.form()
        value = form.get(FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected).encode(), sent.encode()):
        raise CsrfRefused()
