"""Failing receivers: back-off per webhook, Retry-After, auto-disable with one e-mail,
a kept backlog that goes out in order on re-enable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.conftest import Service, Workspace, event, wait_for
from tests.receiver import Receiver, Reply


def _webhook(team: Workspace, hook_id: int) -> dict[str, Any]:
    return dict(team.get(f"/outbound-webhooks/{hook_id}").json())


def _attempts(team: Workspace, hook_id: int) -> list[dict[str, Any]]:
    return list(team.get(f"/outbound-webhooks/{hook_id}/requests").json())


def _wait_attempts(team: Workspace, hook_id: int, count: int) -> list[dict[str, Any]]:
    return wait_for(
        lambda: (a := _attempts(team, hook_id)) and len(a) >= count and a, what=f"{count} attempts"
    )  # type: ignore[no-any-return]


def _retry_delay(service: Service, hook: dict[str, Any]) -> float:
    retry_at = datetime.fromisoformat(hook["retry_at"])
    return (retry_at - service.clock.now()).total_seconds()


def test_failure_backs_off_doubling_and_keeps_the_webhook_id(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.extend([Reply(500), Reply(502), Reply(301, {"Location": "/elsewhere"})])
    team.post("/messages", event("m1"))

    _wait_attempts(team, hook["id"], 1)
    first = _webhook(team, hook["id"])
    assert first["consecutive_failures"] == 1
    assert first["last_error"] == "HTTP 500"
    assert 10 <= _retry_delay(service, first) <= 12
    service.clock.advance(13)

    _wait_attempts(team, hook["id"], 2)
    second = _webhook(team, hook["id"])
    assert second["consecutive_failures"] == 2
    assert 20 <= _retry_delay(service, second) <= 24
    service.clock.advance(25)

    _wait_attempts(team, hook["id"], 3)
    third = _webhook(team, hook["id"])
    assert third["consecutive_failures"] == 3, "a redirect is a failure, not followed"
    assert 40 <= _retry_delay(service, third) <= 48
    service.clock.advance(49)

    attempts = _wait_attempts(team, hook["id"], 4)
    assert [a["response_status"] for a in reversed(attempts)] == [500, 502, 301, 200]
    assert len({a["request_headers"]["webhook-id"] for a in attempts}) == 1
    assert [r.path for r in receiver.requests] == ["/hook"] * 4
    assert _webhook(team, hook["id"])["consecutive_failures"] == 0
    assert _webhook(team, hook["id"])["retry_at"] is None


def test_nothing_is_sent_while_backing_off(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(503))
    team.post("/messages", event("m1"))
    _wait_attempts(team, hook["id"], 1)
    team.post("/messages", event("m2", chat="other@c.us"))
    team.webhook(receiver.url.replace("/hook", "/barrier"))
    team.post("/messages", event("m3"))
    wait_for(lambda: any(r.path == "/barrier" for r in receiver.requests), what="the barrier")
    assert [r.path for r in receiver.requests] == ["/hook", "/barrier"]
    service.clock.advance(15)
    wait_for(
        lambda: len([r for r in receiver.requests if r.path == "/hook"]) == 4,
        what="the backlog after the back-off",
    )
    hook_ids = [r.json["message"]["message_id"] for r in receiver.requests if r.path == "/hook"]
    assert hook_ids[0] == "m1"
    retried = hook_ids[1:]
    assert sorted(retried) == ["m1", "m2", "m3"]
    assert retried.index("m1") < retried.index("m3"), "same chat keeps its order"


def test_retry_after_is_honoured_beyond_the_maximum(start_service: Any, receiver: Receiver) -> None:
    service = start_service(retry_max_seconds=60)
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(429, {"Retry-After": "7200"}))
    team.post("/messages", event("m1"))
    _wait_attempts(team, hook["id"], 1)
    assert _retry_delay(service, _webhook(team, hook["id"])) == 7200
    service.clock.advance(7199)
    team.post("/messages", event("m2"))
    team.webhook(receiver.url.replace("/hook", "/barrier"))
    team.post("/messages", event("m3"))
    wait_for(lambda: any(r.path == "/barrier" for r in receiver.requests), what="the barrier")
    assert len([r for r in receiver.requests if r.path == "/hook"]) == 1
    service.clock.advance(2)
    wait_for(
        lambda: len([r for r in receiver.requests if r.path == "/hook"]) == 4,
        what="the retry after Retry-After",
    )


def test_more_than_ten_failures_auto_disable_and_mail_the_owner_once(
    start_service: Any, receiver: Receiver, smtp: Any
) -> None:
    inbox, port = smtp
    service = start_service(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        mail_from="alerts@chathooks.test",
    )
    team = service.workspace(owner_email="olive@acme.test")
    team.account()
    hook = team.webhook(receiver.url)
    receiver.default = Reply(500, body="receiver is down")
    team.post("/messages", event("m1", chat="a@c.us"))
    for count in range(1, 12):
        _wait_attempts(team, hook["id"], count)
        state = _webhook(team, hook["id"])
        assert state["consecutive_failures"] == count
        if count <= 10:
            assert (state["status"], state["enabled"]) == ("failing", True)
            service.clock.advance(3601 * 1.2)
    state = _webhook(team, hook["id"])
    assert state["status"] == "auto_disabled"
    assert state["enabled"] is False

    wait_for(lambda: inbox.messages, what="the alert e-mail")
    mail = inbox.messages[0]
    assert mail["To"] == "olive@acme.test"
    assert mail["From"] == "alerts@chathooks.test"
    text = mail.get_payload()
    assert receiver.url in text and "HTTP 500" in text and 'enabled": true' in text

    team.post("/messages", event("m2", chat="a@c.us"))
    team.post("/messages", event("m3", chat="b@c.us"))
    service.clock.advance(7200)
    team.webhook(receiver.url.replace("/hook", "/barrier"))
    receiver.default = Reply(200)
    team.post("/messages", event("m4", chat="a@c.us"))
    wait_for(lambda: any(r.path == "/barrier" for r in receiver.requests), what="the barrier")
    assert len([r for r in receiver.requests if r.path == "/hook"]) == 11
    assert len(inbox.messages) == 1
    actions = [a["action"] for a in team.get(f"/outbound-webhooks/{hook['id']}/activity").json()]
    assert actions[0] == "auto_disabled"

    enabled = team.patch(f"/outbound-webhooks/{hook['id']}", {"enabled": True}).json()
    assert (enabled["status"], enabled["consecutive_failures"]) == ("enabled", 0)
    wait_for(
        lambda: len([r for r in receiver.requests if r.path == "/hook"]) == 15,
        what="the backlog after re-enabling",
    )
    delivered = [
        r.json["message"]["message_id"] for r in receiver.requests[11:] if r.path == "/hook"
    ]
    chat_a = [m for m in delivered if m in ("m1", "m2", "m4")]
    assert chat_a == ["m1", "m2", "m4"]
    assert sorted(delivered) == ["m1", "m2", "m3", "m4"]
    actions = [a["action"] for a in team.get(f"/outbound-webhooks/{hook['id']}/activity").json()]
    assert "re_enabled" in actions


def test_410_gone_disables_at_once(start_service: Any, receiver: Receiver, smtp: Any) -> None:
    inbox, port = smtp
    service = start_service(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(410))
    team.post("/messages", event("m1"))
    wait_for(
        lambda: _webhook(team, hook["id"])["status"] == "auto_disabled", what="auto-disable on 410"
    )
    wait_for(lambda: inbox.messages, what="the alert")
    assert "410" in inbox.messages[0].get_payload()


def test_without_smtp_the_alert_lands_in_the_outbox(
    start_service: Any, receiver: Receiver, tmp_path: Any
) -> None:
    outbox = tmp_path / "outbox"
    service = start_service(outbox_dir=outbox)
    team = service.workspace(owner_email="olive@acme.test")
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(410))
    team.post("/messages", event("m1"))
    files = wait_for(lambda: list(outbox.glob("*.eml")), what="an .eml in the outbox")
    content = files[0].read_text()
    assert "olive@acme.test" in content and f"webhook {hook['id']}" in content


def test_disabled_by_hand_queues_nothing_new(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    assert (
        team.patch(f"/outbound-webhooks/{hook['id']}", {"enabled": False}).json()["status"]
        == "disabled"
    )
    team.post("/messages", event("while-off"))
    team.patch(f"/outbound-webhooks/{hook['id']}", {"enabled": True})
    team.post("/messages", event("after"))
    wait_for(lambda: receiver.requests, what="the message after re-enabling")
    team.webhook(receiver.url.replace("/hook", "/barrier"))
    team.post("/messages", event("barrier"))
    wait_for(lambda: len(receiver.requests) == 3, what="the barrier on both webhooks")
    sent = [r.json["message"]["message_id"] for r in receiver.requests if r.path == "/hook"]
    assert sent == ["after", "barrier"], "the message sent while disabled was not queued"


def test_an_html_error_page_without_charset_is_logged_and_retried(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(502, body="<html>Bad Gateway</html>", content_type="text/html"))
    team.post("/messages", event("m1"))
    attempts = _wait_attempts(team, hook["id"], 1)
    assert attempts[0]["response_status"] == 502
    assert attempts[0]["response_body"] == "<html>Bad Gateway</html>"
    service.clock.advance(13)
    attempts = _wait_attempts(team, hook["id"], 2)
    assert attempts[0]["success"] is True


def test_one_outage_seen_by_many_chats_counts_as_one_failed_attempt(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.default = Reply(500, delay=0.3)
    team.post(
        "/messages/batch", {"messages": [event(f"m{i}", chat=f"c{i}@c.us") for i in range(20)]}
    )
    wait_for(lambda: len(receiver.requests) == 20, what="20 concurrent failing requests")
    state = wait_for(
        lambda: (w := _webhook(team, hook["id"]))["consecutive_failures"] and w,
        what="the failures recorded",
    )
    assert state["consecutive_failures"] <= 2, "each chat's failure was counted on its own"
    assert state["status"] == "failing"


def test_retry_after_zero_still_backs_off(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(429, {"Retry-After": "0"}))
    team.post("/messages", event("m1"))
    _wait_attempts(team, hook["id"], 1)
    assert _retry_delay(service, _webhook(team, hook["id"])) >= 10
