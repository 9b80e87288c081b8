"""Bad input is a 422 naming the field and changes nothing; workspaces never see each other."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from chathooks import outbound
from chathooks.schemas import WebhookIn
from chathooks.security import is_public_address
from tests.conftest import Service, Workspace, event, wait_for
from tests.receiver import Receiver


def _loc(answer: Any) -> list[Any]:
    assert answer.status_code == 422, answer.text
    return list(answer.json()["detail"][0]["loc"])


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"timestamp": "2021-02-24T16:25:29"}, ["body", "timestamp"]),
        ({"whatsapp_account_phone": "+1555"}, ["body", "whatsapp_account_phone"]),
        ({"direction": "sideways"}, ["body", "direction"]),
        ({"message_id": ""}, ["body", "message_id"]),
        ({"chat": {"full_name": "no external id"}}, ["body", "chat", "external_id"]),
        ({"text": "half an emoji \ud83d"}, ["body", "text"]),
    ],
)
def test_bad_message_event_is_422_and_stores_nothing(
    service: Service, receiver: Receiver, change: dict[str, Any], loc: list[Any]
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    raw = json.dumps({**event("bad"), **change})  # ASCII escapes: a lone surrogate survives
    answer = team.request(
        "POST",
        "/messages",
        content=raw,
        headers={**team.headers, "Content-Type": "application/json"},
    )
    assert _loc(answer) == loc
    assert team.post("/messages", event("bad")).json()["status"] == "accepted"
    logged = wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}/requests").json(),
        what="the good message's attempt",
    )
    assert [a["success"] for a in logged] == [True]
    assert [b["message"]["message_id"] for b in receiver.bodies()] == ["bad"]


def test_one_bad_item_rejects_the_whole_batch(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    batch = [event("a"), event("b", account="+1999"), event("c")]
    assert _loc(team.post("/messages/batch", {"messages": batch})) == [
        "body",
        "messages",
        1,
        "whatsapp_account_phone",
    ]
    naive = [event("a"), event("b", timestamp="2021-02-24 16:25:29")]
    assert _loc(team.post("/messages/batch", {"messages": naive})) == [
        "body",
        "messages",
        1,
        "timestamp",
    ]
    answer = team.post("/messages/batch", {"messages": [event("a"), event("b"), event("c")]})
    assert [r["status"] for r in answer.json()["results"]] == ["accepted"] * 3
    wait_for(lambda: len(receiver.requests) == 3, what="three deliveries")


def test_batch_over_1000_is_refused(service: Service) -> None:
    team = service.workspace()
    team.account()
    answer = team.post("/messages/batch", {"messages": [event(f"m{i}") for i in range(1001)]})
    assert _loc(answer) == ["body", "messages"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": "ftp://example.com/hook"}, ["body", "url"]),
        ({"url": "not a url"}, ["body", "url"]),
        ({"url": "http://127.0.0.1:9/hook", "aggregation": "2h"}, ["body", "aggregation"]),
        ({"url": "http://127.0.0.1:9/hook", "enabled": "maybe"}, ["body", "enabled"]),
    ],
)
def test_bad_webhook_is_422_and_not_created(
    service: Service, body: dict[str, Any], loc: list[Any]
) -> None:
    team = service.workspace()
    assert _loc(team.post("/outbound-webhooks", body)) == loc
    assert team.get("/outbound-webhooks").json() == []


def test_bad_patch_changes_nothing(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    hook = team.webhook(receiver.url)
    path = f"/outbound-webhooks/{hook['id']}"
    assert _loc(team.patch(path, {"url": "gopher://x", "aggregation": "1h"})) == ["body", "url"]
    assert _loc(team.patch(path, {"aggregation": "hourly"})) == ["body", "aggregation"]
    after = team.get(path).json()
    assert (after["url"], after["aggregation"]) == (receiver.url, "none")


def test_private_targets_refused_unless_allowed(start_service: Any) -> None:
    service = start_service(allow_private_targets=False)
    team = service.workspace()
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ):
        answer = team.post("/outbound-webhooks", {"url": url})
        assert _loc(answer) == ["body", "url"], url
        assert "private" in answer.json()["detail"][0]["msg"]
    assert team.get("/outbound-webhooks").json() == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_connect_time_check_refuses_private_address(
    start_service: Any, receiver: Receiver, host: str
) -> None:
    """A name that resolved publicly on save but privately later is still refused."""
    service = start_service(allow_private_targets=False)
    team = service.workspace()
    team.account()
    url = receiver.url.replace("127.0.0.1", host)
    hook_id = _webhook_row_bypassing_save_check(service, team, url)
    team.post("/messages", event("m"))
    attempts = wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook_id}/requests").json(),
        what="the refused attempt",
    )
    assert attempts[0]["response_status"] is None
    assert "non-public" in attempts[0]["error"]
    assert receiver.requests == []


def _webhook_row_bypassing_save_check(service: Service, team: Workspace, url: str) -> int:

    rt = service.rt
    workspace_id = team.created["id"]
    with rt.transaction() as session:
        allowing = rt.settings.model_copy(update={"allow_private_targets": True})
        hook = outbound.create(session, workspace_id, WebhookIn(url=url), allowing, rt.clock.now())
        return hook.id


def test_tokens_and_tenant_isolation(service: Service, receiver: Receiver) -> None:
    acme = service.workspace("Acme")
    other = service.workspace("Other", owner_email="boss@other.test")
    acme.account()
    hook = acme.webhook(receiver.url)
    chat_id = acme.post("/messages", event("m1")).json()["chat_id"]

    for path in (
        f"/outbound-webhooks/{hook['id']}",
        f"/outbound-webhooks/{hook['id']}/activity",
        f"/outbound-webhooks/{hook['id']}/requests",
        f"/chats/{chat_id}",
    ):
        assert other.get(path).status_code == 404, path
    assert other.patch(f"/outbound-webhooks/{hook['id']}", {"enabled": False}).status_code == 404
    assert other.request("DELETE", f"/outbound-webhooks/{hook['id']}").status_code == 404
    assert other.get("/outbound-webhooks").json() == []
    assert _loc(other.post("/messages", event("m2"))) == ["body", "whatsapp_account_phone"]

    http = service.http
    assert http.get("/api/v1/outbound-webhooks").status_code == 401
    assert (
        http.get("/api/v1/outbound-webhooks", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    refused = http.post(
        "/api/v1/workspaces",
        headers=acme.headers,
        json={"name": "x", "owner_name": "y", "owner_email": "z@z.test"},
    )
    assert refused.status_code == 403
    assert acme.get(f"/outbound-webhooks/{hook['id']}").json()["status"] == "enabled"


def test_tokens_are_stored_hashed(service: Service) -> None:

    team = service.workspace()
    with service.rt.engine.connect() as conn:
        stored = conn.execute(text("SELECT api_token_hash FROM workspaces")).scalar_one()
    assert team.token not in stored
    assert len(stored) == 64


def test_duplicate_account_and_teammate_are_409(service: Service) -> None:
    team = service.workspace()
    team.account()
    again = team.post(
        "/whatsapp-accounts", {"phone": "+972500000000", "full_name": "X", "email": "x@acme.test"}
    )
    assert again.status_code == 409
    team.post("/teammates", {"full_name": "T", "email": "t@acme.test"})
    assert team.post("/teammates", {"full_name": "T", "email": "T@acme.test"}).status_code == 409


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("1.1.1.1", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),
        ("2002:a9fe:a9fe::1", False),
        ("::7f00:1", False),
        ("64:ff9b::101:101", True),
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:

    assert is_public_address(address) is public


def test_same_message_id_twice_in_one_batch_under_different_chats(service: Service) -> None:
    team = service.workspace()
    team.account()
    answer = team.post(
        "/messages/batch",
        {"messages": [event("same", chat="a@c.us"), event("same", chat="b@c.us")]},
    )
    assert answer.status_code == 202
    first, second = answer.json()["results"]
    assert (first["status"], second["status"]) == ("accepted", "duplicate")
    assert second["chat_id"] == first["chat_id"]
