"""SPEC §5's input rules at the edges of what a database can store: a NUL character, a
timestamp outside years 1-9999 in UTC, an id beyond the database's integer range. Each is
a 422 naming the field (or a 404 for an id), never a 500, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Service, event, wait_for
from tests.pages import PASSWORD, browser, csrf_of, log_in, set_password
from tests.receiver import Receiver


def _loc(answer: Any) -> list[Any]:
    assert answer.status_code == 422, answer.text
    return list(answer.json()["detail"][0]["loc"])


def _with(change: dict[str, Any]) -> dict[str, Any]:
    body = event("m1")
    for path, value in change.items():
        *parents, last = path.split(".")
        target = body
        for part in parents:
            target = target[part]
        target[last] = value
    return body


@pytest.mark.parametrize(
    "field",
    [
        "text",
        "message_id",
        "chat.external_id",
        "chat.full_name",
        "sender.full_name",
        "sender.phone",
    ],
)
def test_a_nul_character_is_a_422_naming_the_field(
    service: Service, receiver: Receiver, field: str
) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    bad = _with({field: "a\u0000b"})
    assert _loc(team.post("/messages", bad)) == ["body", *field.split(".")]

    batch = [event(f"ok{i}", chat=f"c{i}@c.us") for i in range(999)]
    batch.insert(500, bad)
    assert _loc(team.post("/messages/batch", {"messages": batch})) == [
        "body",
        "messages",
        500,
        *field.split("."),
    ]
    assert team.post("/messages", event("m1")).json()["status"] == "accepted", "nothing stored"
    wait_for(lambda: len(receiver.requests) == 1, what="the good message")


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/teammates", {"full_name": "A\u0000", "email": "a@acme.test"}, ["body", "full_name"]),
        ("/outbound-webhooks", {"url": "http://127.0.0.1/\u0000"}, ["body", "url"]),
        (
            "/whatsapp-accounts",
            {"phone": "+1\u0000", "full_name": "A", "email": "a@acme.test"},
            ["body", "phone"],
        ),
    ],
)
def test_a_nul_character_anywhere_in_the_api_is_a_422(
    service: Service, path: str, body: dict[str, Any], loc: list[str]
) -> None:
    team = service.workspace()
    assert _loc(team.post(path, body)) == loc


@pytest.mark.parametrize(
    "timestamp", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"], ids=["late", "early"]
)
def test_a_timestamp_outside_years_1_to_9999_in_utc_is_a_422(
    service: Service, timestamp: str
) -> None:
    team = service.workspace()
    team.account()
    assert _loc(team.post("/messages", event("m1", timestamp=timestamp))) == ["body", "timestamp"]
    batch = {"messages": [event("m0"), event("m1", timestamp=timestamp)]}
    assert _loc(team.post("/messages/batch", batch)) == ["body", "messages", 1, "timestamp"]
    hook = team.webhook("http://127.0.0.1:9/hook")
    replay = team.post(
        f"/outbound-webhooks/{hook['id']}/replay", {"since": timestamp, "until": timestamp}
    )
    assert _loc(replay) == ["body", "since"]


@pytest.mark.parametrize(
    ("timestamp", "sent"),
    [
        ("9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59+0000"),
        ("0001-01-01T00:00:00-00:30", "0001-01-01T00:30:00+0000"),
    ],
    ids=["last", "first"],
)
def test_the_extreme_timestamps_that_fit_are_stored_and_sent_as_four_digit_years(
    service: Service, receiver: Receiver, timestamp: str, sent: str
) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    assert team.post("/messages", event("m1", timestamp=timestamp)).status_code == 202
    body = wait_for(receiver.bodies, what="the delivery")[0]
    assert body["message"]["timestamp"] == sent


def test_raw_nul_escapes_in_json_are_refused_too(service: Service) -> None:
    team = service.workspace()
    team.account()
    raw = json.dumps(event("m\u0000"))
    answer = team.request(
        "POST", "/messages", content=raw, headers={"Content-Type": "application/json"}
    )
    assert _loc(answer) == ["body", "message_id"]


def test_a_nul_character_sent_to_the_pages_is_refused_not_a_500(service: Service) -> None:
    team = service.workspace()
    client = browser(service)
    set_password(service, team, client)
    csrf = csrf_of(client, "/webhooks/outbound")
    assert client.get("/permalink/a%00b/").status_code == 404
    created = client.post(
        "/webhooks/outbound", data={"url": "http://127.0.0.1/\u0000", "csrf_token": csrf}
    )
    assert created.status_code == 422
    assert "NUL" in created.text
    assert team.get("/outbound-webhooks").json() == []
    with browser(service) as stranger:
        assert log_in(stranger, "owner@acme.test\u0000", PASSWORD).status_code == 401
