"""WhatsApp accounts: which source feeds each, renaming and removing them, and Send
sample's account and messages, which are marked as tests all the way to the receiver."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.conftest import Service, event, free_port, wait_for
from tests.receiver import Receiver
from tests.test_sources import Sender, fixture, team_on_its_own_url

BUSINESS = "+79222222222"


def _waha_text(sender: Sender, message_id: str) -> None:
    body = json.loads(fixture("waha", "text_received"))
    body["payload"]["id"] = message_id
    answer = sender.post(json.dumps(body).encode())
    assert answer.status_code == 200, answer.text


def _accounts(sender: Sender) -> dict[str, dict[str, Any]]:
    return {a["phone"]: a for a in sender.team.get("/whatsapp-accounts").json()}


def _test_header(headers: dict[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == "chathooks-test"), None)


def test_an_account_shows_its_source_and_can_be_renamed(service: Service) -> None:
    team = service.workspace()
    sender = Sender(team, "waha")
    _waha_text(sender, "false_79111111111@c.us_A1")
    created = _accounts(sender)[BUSINESS]
    source = {"id": sender.source["id"], "kind": "waha", "name": "waha line"}
    assert (created["name"], created["source"]) == ("", source)
    by_hand = team.account()
    assert (by_hand["name"], by_hand["source"]) == ("", None)

    renamed = team.patch(f"/whatsapp-accounts/{created['id']}", {"name": "Shop line"})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["source"]) == ("Shop line", source)
    assert _accounts(sender)[BUSINESS]["name"] == "Shop line"

    too_long = team.patch(f"/whatsapp-accounts/{created['id']}", {"name": "x" * 201})
    assert too_long.status_code == 422 and "name" in str(too_long.json()["detail"])
    unknown = team.patch(f"/whatsapp-accounts/{created['id']}", {"phone": "+1"})
    assert unknown.status_code == 422
    other = service.workspace("Other", "o@other.test")
    assert other.patch(f"/whatsapp-accounts/{created['id']}", {"name": "x"}).status_code == 404
    assert _accounts(sender)[BUSINESS]["name"] == "Shop line"

    team.request("DELETE", f"/sources/{sender.source['id']}")
    assert _accounts(sender)[BUSINESS]["source"] is None, "its source is gone: by hand now"


def test_removing_an_account_keeps_what_was_delivered_and_its_next_event_brings_it_back(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.webhook(receiver.url)
    sender = Sender(team, "waha")
    _waha_text(sender, "false_79111111111@c.us_B1")
    wait_for(lambda: len(receiver.requests) == 1, what="the first message")
    account = _accounts(sender)[BUSINESS]
    team.patch(f"/whatsapp-accounts/{account['id']}", {"name": "Shop line"})
    chat_id = receiver.bodies()[0]["chat"]["chat_id"]

    removed = team.request("DELETE", f"/whatsapp-accounts/{account['id']}")
    assert removed.status_code == 204
    assert BUSINESS not in _accounts(sender)
    assert team.request("DELETE", f"/whatsapp-accounts/{account['id']}").status_code == 404
    assert team.get(f"/chats/{chat_id}").status_code == 200, "its chats stay"
    refused = team.post("/messages", event("api-1", account=BUSINESS))
    assert refused.status_code == 422, "the API refuses a removed account's messages"
    assert "whatsapp_account_phone" in refused.text

    _waha_text(sender, "false_79111111111@c.us_B2")
    back = _accounts(sender)[BUSINESS]
    assert (back["id"], back["name"], back["source"]["id"]) == (
        account["id"],
        "",
        sender.source["id"],
    ), "the same account, as new"
    wait_for(lambda: len(receiver.requests) == 2, what="the message after it came back")
    assert receiver.bodies()[1]["chat"]["chat_id"] == chat_id, "in the same chat as before"

    team.request("DELETE", f"/whatsapp-accounts/{account['id']}")
    again = team.post(
        "/whatsapp-accounts", {"phone": BUSINESS, "full_name": "Amy", "email": "amy@acme.test"}
    )
    assert again.status_code == 201, again.text
    assert (again.json()["id"], again.json()["email"]) == (account["id"], "amy@acme.test")
    twice = team.post(
        "/whatsapp-accounts", {"phone": BUSINESS, "full_name": "Amy", "email": "amy@acme.test"}
    )
    assert twice.status_code == 409


def test_send_sample_is_a_test_on_an_account_named_a_sample(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    team = team_on_its_own_url(start_service, receiver)
    sender = Sender(team, "waha")
    result = team.post(f"/sources/{sender.source['id']}/sample", {}).json()
    assert result["success"], result
    _waha_text(sender, "false_79111111111@c.us_C1")
    wait_for(lambda: len(receiver.requests) == 2, what="the sample and a real message")

    by_id = {r.json["message"]["message_id"]: r for r in receiver.requests}
    sample = next(r for i, r in by_id.items() if i.startswith("test_"))
    real = by_id["false_79111111111@c.us_C1"]
    assert _test_header(sample.headers) == "true"
    assert _test_header(real.headers) is None
    accounts = _accounts(sender)
    assert accounts["+16505551111"]["name"] == "Sample (from Send sample)"
    assert accounts["+16505551111"]["source"]["id"] == sender.source["id"]
    assert accounts[BUSINESS]["name"] == "", "a real number is not named a sample"


def test_a_bundle_of_samples_is_a_test_and_removing_the_sample_account_tidies_up(
    start_service: Callable[..., Service], receiver: Receiver
) -> None:
    port = free_port()
    service = start_service(port=port, public_base_url=f"http://127.0.0.1:{port}")
    team = service.workspace()
    hook = team.webhook(receiver.url, "1h")
    sender = Sender(team, "evolution")
    for _ in range(2):
        assert team.post(f"/sources/{sender.source['id']}/sample", {}).json()["success"]
    team.post(f"/outbound-webhooks/{hook['id']}/flush", {})
    wait_for(lambda: receiver.requests, what="the bundle of samples")
    bundle = receiver.requests[0]
    assert _test_header(bundle.headers) == "true"
    assert len(bundle.json["messages"]) == 2

    sample = _accounts(sender)["+16505551111"]
    assert team.request("DELETE", f"/whatsapp-accounts/{sample['id']}").status_code == 204
    assert _accounts(sender) == {}
    assert team.post(f"/sources/{sender.source['id']}/sample", {}).json()["success"]
    assert _accounts(sender)["+16505551111"]["name"] == "Sample (from Send sample)"
