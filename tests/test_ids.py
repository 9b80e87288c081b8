"""An id in a path that no row can have (beyond PostgreSQL's 32-bit integer, or SQLite's
64-bit one) is a 404 on every path that takes an integer id: JSON for the API, the HTML
page for the pages. The paths are read from the app itself, so new ones are covered."""

from __future__ import annotations

import re
from typing import Any

from fastapi import routing

from tests.conftest import Service
from tests.pages import browser, csrf_of, set_password

HUGE = [2**31, 2**63, 10**30, -(2**63) - 1]
BODIES: dict[str, dict[str, Any]] = {
    "/replay": {"since": "2021-01-01T00:00:00Z", "until": "2021-01-02T00:00:00Z"},
    "/chats/{chat_id}": {"responsible_email": None},
    "/chats/{chat_id}/messages": {"text": "Thanks, your quote is attached"},
    "/whatsapp-accounts/{account_id}": {"name": "Sales line"},
}
"""Routes whose body has required fields get a valid one, so only the id is wrong."""


def _id_routes(service: Service) -> list[tuple[str, str, list[str]]]:
    """(method, path, integer path parameters) of every route that takes an integer id."""
    found = []
    for route in routing.iter_route_contexts(service.server.config.app.routes):
        if not isinstance(route.original_route, routing.APIRoute):
            continue
        names = [p.name for p in route.dependant.path_params if p.field_info.annotation is int]
        if names:
            found += [(method, route.path_format, names) for method in sorted(route.methods)]
    return found


def _filled(path: str, names: list[str], value: int) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(value) if m.group(1) in names else "1", path)


def _body(path: str) -> dict[str, Any]:
    return next((b for suffix, b in BODIES.items() if path.endswith(suffix)), {})


def test_every_path_with_an_integer_id_answers_404_for_an_impossible_id(service: Service) -> None:
    team = service.workspace()
    client = browser(service)
    set_password(service, team, client)
    csrf = csrf_of(client, "/webhooks/outbound")
    routes = _id_routes(service)
    assert any(path.startswith("/api/") for _, path, _ in routes)
    assert any(not path.startswith("/api/") for _, path, _ in routes)
    wrong = []
    for method, path, names in routes:
        for value in HUGE:
            url = _filled(path, names, value)
            if path.startswith("/api/"):
                answer = team.request(method, url.removeprefix("/api/v1"), json=_body(path))
                kind = "application/json"
            else:
                answer = client.request(method, url, headers={"X-CSRF-Token": csrf})
                kind = "text/html"
            if answer.status_code != 404 or kind not in answer.headers.get("content-type", ""):
                wrong.append(f"{method} {url}: {answer.status_code} {answer.text[:80]}")
    assert wrong == []


def test_the_route_list_is_read_from_the_app(service: Service) -> None:
    """Guards the test above: it must find the routes it claims to cover."""
    paths = {path for _, path, _ in _id_routes(service)}
    assert "/api/v1/outbound-webhooks/{webhook_id}" in paths
    assert "/chat/{chat_id}/messages/" in paths
