"""The pages driven over plain HTTP, for tests where a browser adds nothing: sessions,
login limits, status codes of many paths."""

from __future__ import annotations

import re

import httpx

from tests.conftest import PUBLIC_BASE, Service, Workspace

PASSWORD = "correct horse battery"


def csrf_of(client: httpx.Client, path: str = "/login") -> str:
    """The session's CSRF token, as the page at ``path`` carries it in its forms."""
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def browser(service: Service) -> httpx.Client:
    """A client with its own cookie jar: one browser, closed when the service stops."""
    client = httpx.Client(base_url=service.url, timeout=30, follow_redirects=False)
    service.browsers.append(client)
    return client


def set_password(service: Service, team: Workspace, client: httpx.Client) -> None:
    """The owner's one-time link; the client is logged in afterwards."""
    path = team.created["owner_password_link"].removeprefix(PUBLIC_BASE)
    answer = client.post(
        path,
        data={"password": PASSWORD, "confirm": PASSWORD, "csrf_token": csrf_of(client, path)},
    )
    assert answer.status_code == 303, answer.text


def log_in(
    client: httpx.Client, email: str, password: str = PASSWORD, address: str = ""
) -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(client)},
        headers=headers,
    )


def is_logged_in(client: httpx.Client) -> bool:
    answer = client.get("/webhooks/outbound")
    assert answer.status_code in (200, 303), answer.status_code
    return answer.status_code == 200
