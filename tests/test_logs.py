"""The activity log (latest 10), the request log (latest 100, downloadable), Save and test."""

from __future__ import annotations

import json

from standardwebhooks import Webhook

from chathooks.store import deliveries
from tests.conftest import Service, event, wait_for
from tests.receiver import Receiver, Reply


def test_request_log_keeps_the_latest_100_with_full_request_and_response(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.default = Reply(202, {"X-Receiver": "yes"}, body="x" * (70 * 1024))
    team.post("/messages/batch", {"messages": [event(f"m{i:03}") for i in range(120)]})
    path = f"/outbound-webhooks/{hook['id']}"
    wait_for(lambda: len(receiver.requests) == 120, what="120 deliveries")
    wait_for(
        lambda: (
            (activity := team.get(path + "/activity").json())  # empty until a record commits
            and activity[0]["message_count"] == 1
            and len(team.get(path + "/requests").json()) == 100
            and team.get(path + "/requests").json()[0]["request_body"].find("m119") > 0
        ),
        what="the newest request logged",
    )
    log = team.get(path + "/requests").json()
    assert len(log) == 100
    newest = log[0]
    assert json.loads(newest["request_body"])["message"]["message_id"] == "m119"
    assert json.loads(log[-1]["request_body"])["message"]["message_id"] == "m020"
    assert newest["url"] == receiver.url
    assert newest["request_headers"]["Content-Type"] == "application/json"
    assert newest["request_headers"]["webhook-signature"].startswith("v1,")
    assert newest["response_status"] == 202 and newest["success"] is True
    assert newest["response_headers"]["X-Receiver"] == "yes"
    assert len(newest["response_body"]) == 64 * 1024
    assert newest["latency_ms"] > 0 and newest["at"]

    activity = team.get(path + "/activity").json()
    assert len(activity) == 10
    assert all(a["action"] == "delivered" and a["status_code"] == 202 for a in activity)
    assert [a["at"] for a in activity] == sorted((a["at"] for a in activity), reverse=True)

    download = team.get(path + "/requests", params={"download": 1})
    assert download.headers["content-disposition"].startswith("attachment;")
    assert ".json" in download.headers["content-disposition"]
    assert download.json() == log


def test_error_without_response_is_logged(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook("http://127.0.0.1:9/nothing-listens-here")
    team.post("/messages", event("m1"))
    log = wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}/requests").json(),
        what="the failed attempt",
    )
    assert log[0]["response_status"] is None
    assert log[0]["success"] is False
    assert "onnect" in log[0]["error"]
    activity = team.get(f"/outbound-webhooks/{hook['id']}/activity").json()
    assert activity[0]["action"] == "failed" and activity[0]["error"] == log[0]["error"]


def test_send_test_uses_the_latest_message_or_a_sample(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url, enabled=False)
    sample = team.post(f"/outbound-webhooks/{hook['id']}/test", None)
    assert sample.status_code == 200
    assert sample.json()["response_status"] == 200 and sample.json()["success"] is True
    body = receiver.requests[0].json
    assert set(body) == {"whatsapp_account", "chat", "message"}
    Webhook(hook["secret"]).verify(receiver.requests[0].body, receiver.requests[0].headers)

    team.post("/messages", event("real-one", text="the latest"))
    team.post("/messages", event("with-photo", attachments=["x"]))
    receiver.replies.append(Reply(500, body="nope"))
    failed = team.post(f"/outbound-webhooks/{hook['id']}/test", None).json()
    assert (failed["response_status"], failed["response_body"], failed["success"]) == (
        500,
        "nope",
        False,
    )
    assert receiver.requests[1].json["message"]["text"] == "the latest"
    assert receiver.requests[1].json["message"]["message_id"] == "test_real-one"
    assert all(r.headers["chathooks-test"] == "true" for r in receiver.requests)
    assert body["message"]["message_id"].startswith("test_sample-")
    state = team.get(f"/outbound-webhooks/{hook['id']}").json()
    assert state["consecutive_failures"] == 0, "a test never counts toward auto-disable"
    actions = [a["action"] for a in team.get(f"/outbound-webhooks/{hook['id']}/activity").json()]
    assert actions[:2] == ["test", "test"]
    assert len(team.get(f"/outbound-webhooks/{hook['id']}/requests").json()) == 2


def test_rotating_the_secret_changes_signatures(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    rotated = team.patch(f"/outbound-webhooks/{hook['id']}", {"rotate_secret": True}).json()
    assert rotated["secret"] != hook["secret"] and rotated["secret"].startswith("whsec_")
    team.post("/messages", event("m1"))
    wait_for(lambda: receiver.requests, what="the delivery")
    Webhook(rotated["secret"]).verify(receiver.requests[0].body, receiver.requests[0].headers)


def test_deleting_a_webhook_stops_its_deliveries(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    team.post("/messages", event("m0"))
    wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}/requests").json(),
        what="a logged request",
    )
    assert team.request("DELETE", f"/outbound-webhooks/{hook['id']}").status_code == 204
    assert team.get(f"/outbound-webhooks/{hook['id']}").status_code == 404
    team.post("/messages", event("m1"))
    replacement = team.webhook(receiver.url.replace("/hook", "/barrier"))
    assert replacement["id"] != hook["id"], "a deleted webhook's id is never reused"
    assert team.get(f"/outbound-webhooks/{replacement['id']}/requests").json() == []
    team.post("/messages", event("m2"))
    wait_for(lambda: len(receiver.requests) == 2, what="the barrier")
    assert [r.path for r in receiver.requests] == ["/hook", "/barrier"]


def test_send_test_of_a_bundled_webhook_sends_a_bundle_whose_permalink_exists(
    service: Service, receiver: Receiver
) -> None:

    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url, aggregation="6h")
    chat_id = team.post("/messages", event("gathered", text="in the open bundle")).json()["chat_id"]
    attempt = team.post(f"/outbound-webhooks/{hook['id']}/test", None).json()
    assert attempt["success"] is True
    bundle = receiver.requests[0].json
    assert [m["message_id"] for m in bundle["messages"]] == ["test_gathered"]
    assert receiver.requests[0].headers["chathooks-test"] == "true"
    uuid = bundle["aggregation"].split("/permalink/")[1].split("/")[0]
    with service.rt.transaction() as session:
        found = deliveries.by_uuid(session, uuid)
        assert found is not None and found.chat_id == int(chat_id)
        first = deliveries.first_bundle_message(session, found.id)
        assert first is not None and first.external_id == "gathered"
    flushed = team.post(f"/outbound-webhooks/{hook['id']}/flush", None).json()
    assert flushed == {"bundles": 1}, "the test did not take the message out of its bundle"
