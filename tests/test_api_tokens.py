"""A workspace's API token can be rotated; the old one stops working at once, in every
process (no process keeps a cache that could still let it in)."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Service, Workspace


def test_a_rotated_token_stops_working_at_once_in_every_process(
    start_service: Callable[..., Service],
) -> None:
    first = start_service(run_worker=False)
    second = start_service(run_worker=False)
    team = first.workspace()
    other = first.workspace("Other", "other@acme.test")
    on_second = Workspace(second, team.token, team.created)
    assert on_second.get("/outbound-webhooks").status_code == 200, "the old token was in use"

    answer = team.post("/workspace/api-token", {})
    assert answer.status_code == 200
    new_token = answer.json()["api_token"]
    assert new_token.startswith("chk_") and new_token != team.token

    for service in (first, second):
        old = service.http.get("/api/v1/outbound-webhooks", headers=team.headers)
        assert old.status_code == 401
        new = service.http.get(
            "/api/v1/outbound-webhooks", headers={"Authorization": f"Bearer {new_token}"}
        )
        assert new.status_code == 200
    assert other.get("/outbound-webhooks").status_code == 200, "other workspaces keep theirs"


def test_rotating_needs_the_workspace_token(service: Service) -> None:
    assert service.http.post("/api/v1/workspace/api-token").status_code == 401
