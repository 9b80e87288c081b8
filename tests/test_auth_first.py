"""Authentication first: a missing or wrong token is a 401 whatever the body, on the
single-message path (which checks the token in its group's transaction) as on every other
route; a known token with a bad body is still the 422 that names the field."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, Service, event

BAD_BODIES = [b"{not json", json.dumps({"message_id": "m1"}).encode(), b"[1, 2]"]


def _post(service: Service, path: str, token: str | None, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return service.http.post("/api/v1" + path, headers=headers, content=body)


@pytest.mark.parametrize("path", ["/messages", "/messages/batch", "/outbound-webhooks"])
def test_a_wrong_or_missing_token_is_a_401_whatever_the_body(service: Service, path: str) -> None:
    team = service.workspace()
    for body in BAD_BODIES:
        for token in (None, "not-a-token"):
            answer = _post(service, path, token, body)
            assert answer.status_code == 401, (token, body, answer.text)
            assert answer.json() == {"detail": "missing or unknown bearer token"}
            assert answer.headers["www-authenticate"] == "Bearer"
        known = _post(service, path, team.token, body)
        assert known.status_code == 422, (body, known.text)


def test_a_valid_body_with_a_wrong_token_is_a_401_too(service: Service) -> None:
    team = service.workspace()
    team.account()
    answer = _post(service, "/messages", "not-a-token", json.dumps(event("m1")).encode())
    assert answer.status_code == 401
    assert team.post("/messages", event("m1")).status_code == 202


def test_admin_routes_check_the_admin_token_first(service: Service) -> None:
    team = service.workspace()
    bad = json.dumps({"name": ""}).encode()
    assert _post(service, "/workspaces", None, bad).status_code == 401
    assert _post(service, "/workspaces", team.token, bad).status_code == 403
    assert _post(service, "/workspaces", ADMIN_TOKEN, bad).status_code == 422
