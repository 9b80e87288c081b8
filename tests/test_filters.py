"""A webhook's name and filters: directions, group chats, accounts. A message the filters
leave out is never queued for that webhook (SPEC §5), also not by a replay."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Service, Workspace, event, wait_for
from tests.receiver import Receiver

ACCOUNT_A = "+972500000000"
ACCOUNT_B = "+972500000001"
ONLY_A_RECEIVED_DIRECT = {
    "directions": ["received"],
    "include_groups": False,
    "account_phones": [ACCOUNT_A],
}


def _sent_ids(team: Workspace, hook_id: int) -> list[str]:
    log = team.get(f"/outbound-webhooks/{hook_id}/requests").json()
    return [_message_id(entry) for entry in reversed(log)]


def _message_id(entry: dict[str, Any]) -> str:
    return str(json.loads(entry["request_body"])["message"]["message_id"])


def _team(service: Service) -> Workspace:
    team = service.workspace()
    team.account(ACCOUNT_A)
    team.account(ACCOUNT_B, "Bea Sales", "bea@acme.test")
    return team


def test_filters_leave_out_directions_groups_and_accounts(
    service: Service, receiver: Receiver
) -> None:
    team = _team(service)
    hook = team.webhook(receiver.url, name="CRM notes", filters=ONLY_A_RECEIVED_DIRECT)
    assert hook["name"] == "CRM notes"
    assert hook["filters"] == ONLY_A_RECEIVED_DIRECT
    everything = team.webhook(receiver.url.replace("/hook", "/all"))
    assert everything["filters"] == {
        "directions": ["received", "sent"],
        "include_groups": True,
        "account_phones": [],
    }
    events = [
        event("kept"),
        event("sent", direction="sent"),
        event("group", chat="120363@g.us", is_group=True, phone=""),
        event("other-account", account=ACCOUNT_B),
        event("photo", attachments=[{"type": "image"}]),
        event("kept-too", chat="972541111111@c.us", phone="+972541111111"),
    ]
    assert team.post("/messages/batch", {"messages": events}).status_code == 202
    wait_for(
        lambda: len(_sent_ids(team, hook["id"]) + _sent_ids(team, everything["id"])) == 7,
        what="5 + 2 deliveries recorded",
    )
    assert sorted(_sent_ids(team, hook["id"])) == ["kept", "kept-too"]
    assert len(receiver.requests) == 7
    state = team.get(f"/outbound-webhooks/{hook['id']}").json()
    assert state["backlog"] == 0
    skipped = [a["action"] for a in team.get(f"/outbound-webhooks/{hook['id']}/activity").json()]
    assert skipped.count("skipped") == 1, "the photo was one the filters wanted"


def test_bad_filters_or_name_are_422_naming_the_field_and_change_nothing(
    service: Service, receiver: Receiver
) -> None:
    team = _team(service)
    hook = team.webhook(receiver.url, name="CRM", filters=ONLY_A_RECEIVED_DIRECT)
    path = f"/outbound-webhooks/{hook['id']}"
    for body, loc in (
        ({"filters": {"account_phones": ["+1555"]}}, ["body", "filters"]),
        ({"filters": {"directions": []}}, ["body", "filters", "directions"]),
        ({"filters": {"directions": ["sideways"]}}, ["body", "filters", "directions", 0]),
        ({"filters": {"include_groups": False, "colour": "red"}}, ["body", "filters", "colour"]),
        ({"name": "x" * 101}, ["body", "name"]),
    ):
        answer = team.patch(path, body)
        assert answer.status_code == 422, body
        assert answer.json()["detail"][0]["loc"] == loc
    assert "+1555" in team.patch(path, {"filters": {"account_phones": ["+1555"]}}).text
    assert team.get(path).json() == hook
    created = team.post(
        "/outbound-webhooks", {"url": receiver.url, "filters": {"account_phones": ["+1"]}}
    )
    assert created.status_code == 422
    assert team.get("/outbound-webhooks").json() == [hook]

    changed = team.patch(path, {"name": "", "filters": {"include_groups": False}}).json()
    assert changed["name"] == ""
    assert changed["filters"] == {
        "directions": ["received", "sent"],
        "include_groups": False,
        "account_phones": [],
    }, "filters are replaced as a whole; what is left out takes its default"


def test_replay_sends_again_only_what_the_filters_want(
    service: Service, receiver: Receiver
) -> None:
    team = _team(service)
    hook = team.webhook(receiver.url, filters={"directions": ["sent"]})
    since = service.clock.now()
    team.post("/messages", event("in", direction="received"))
    team.post("/messages", event("out", direction="sent"))
    wait_for(lambda: receiver.requests, what="the sent message")
    service.clock.advance(60)
    answer = team.post(
        f"/outbound-webhooks/{hook['id']}/replay",
        {"since": since.isoformat(), "until": service.clock.now().isoformat()},
    )
    assert answer.json() == {"messages": 1, "deliveries": 1}
    wait_for(lambda: len(_sent_ids(team, hook["id"])) == 2, what="the replay")
    assert _sent_ids(team, hook["id"]) == ["out", "out"]
    assert len(receiver.requests) == 2
