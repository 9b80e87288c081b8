"""A failing webhook in plain sight: attempts and requests counted, last success and
failure, the backlog, Retry now, and each logged request readable in full."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

from chathooks import outbound
from chathooks.deliver.transport import Outcome
from chathooks.record import Sent, record_results
from chathooks.runtime import Runtime, build_runtime
from chathooks.schemas import WebhookIn
from chathooks.store import webhooks
from chathooks.web.showing import state_of
from chathooks.workspaces import create_workspace
from tests.conftest import Service, event, make_settings, wait_for
from tests.receiver import Receiver, Reply


def _state(team: Any, hook_id: int) -> dict[str, Any]:
    return dict(team.get(f"/outbound-webhooks/{hook_id}").json())


def test_a_failing_webhook_shows_its_failures_and_retry_now_sends_at_once(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    assert (hook["last_success_at"], hook["last_failure_at"], hook["backlog"]) == (None, None, 0)
    receiver.default = Reply(500, body="down")
    team.post("/messages", event("m1"))
    failing = wait_for(
        lambda: (s := _state(team, hook["id"]))["consecutive_failures"] and s,
        what="the failure recorded",
    )
    assert failing["failed_requests"] == 1
    assert failing["last_success_at"] is None and failing["last_failure_at"] is not None
    assert failing["backlog"] == 1
    assert failing["retry_at"] is not None
    assert team.get("/outbound-webhooks").json() == [failing]

    # The receiver is fixed; nobody wants to wait for the back-off (the clock stands still).
    receiver.default = Reply(200)
    answer = team.post(f"/outbound-webhooks/{hook['id']}/retry", None)
    assert answer.status_code == 202
    assert answer.json()["retry_at"] is None
    assert answer.json()["consecutive_failures"] == 1, "the count stays until a success"
    wait_for(lambda: len(receiver.requests) == 2, what="the retry")
    healthy = wait_for(
        lambda: (s := _state(team, hook["id"]))["last_success_at"] and s, what="the success"
    )
    assert (healthy["consecutive_failures"], healthy["failed_requests"]) == (0, 0)
    assert healthy["backlog"] == 0
    assert healthy["last_failure_at"] == failing["last_failure_at"]
    actions = [a["action"] for a in team.get(f"/outbound-webhooks/{hook['id']}/activity").json()]
    assert actions[:3] == ["delivered", "retried", "failed"]


def test_retry_of_an_auto_disabled_webhook_is_409_and_changes_nothing(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(410))
    team.post("/messages", event("m1"))
    disabled = wait_for(
        lambda: (s := _state(team, hook["id"]))["status"] == "auto_disabled" and s,
        what="auto-disable",
    )
    answer = team.post(f"/outbound-webhooks/{hook['id']}/retry", None)
    assert answer.status_code == 409
    assert "re-enable" in answer.json()["detail"]
    assert _state(team, hook["id"]) == disabled
    other = service.workspace("Other", owner_email="boss@other.test")
    assert other.post(f"/outbound-webhooks/{hook['id']}/retry", None).status_code == 404


def test_each_activity_row_names_its_request_which_reads_in_full(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(503, {"X-Why": "maintenance"}, body='{"error": "later"}'))
    team.post("/messages", event("m1", text="hello"))
    activity = wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}/activity").json(),
        what="the failed action",
    )
    request_id = activity[0]["request_id"]
    assert activity[0]["action"] == "failed" and request_id is not None
    one = team.get(f"/outbound-webhooks/{hook['id']}/requests/{request_id}").json()
    assert one == team.get(f"/outbound-webhooks/{hook['id']}/requests").json()[0]
    assert one["id"] == request_id
    assert json.loads(one["request_body"])["message"]["text"] == "hello"
    assert one["request_headers"]["webhook-id"].startswith("msg_")
    assert (one["response_status"], one["response_body"]) == (503, '{"error": "later"}')
    assert one["response_headers"]["X-Why"] == "maintenance"
    assert one["success"] is False and one["latency_ms"] > 0

    tested = team.post(f"/outbound-webhooks/{hook['id']}/test", None).json()
    newest = team.get(f"/outbound-webhooks/{hook['id']}/activity").json()[0]
    assert (newest["action"], newest["request_id"]) == ("test", tested["id"])

    other_hook = team.webhook(receiver.url.replace("/hook", "/other"))
    other = service.workspace("Other", owner_email="boss@other.test")
    for asker, path in (
        (team, f"/outbound-webhooks/{other_hook['id']}/requests/{request_id}"),
        (team, f"/outbound-webhooks/{hook['id']}/requests/999999"),
        (other, f"/outbound-webhooks/{hook['id']}/requests/{request_id}"),
    ):
        assert asker.get(path).status_code == 404, path


def _sent(webhook_id: int, success: bool, at: Any) -> Sent:
    outcome = Outcome(status=200 if success else 500, latency_ms=1.0)
    return Sent(webhook_id, None, None, 1, "http://x.test", {}, "{}", outcome, at)


def runtime_with_a_webhook(database_url: str, clock: Any) -> tuple[Runtime, int]:
    """A runtime on the test database, and the id of one webhook of a fresh workspace."""
    rt = build_runtime(make_settings(database_url), clock=clock)
    with rt.transaction() as session:
        workspace = create_workspace(
            session, name="Acme", owner_name="O", owner_email="o@acme.test", now=clock.now()
        ).workspace
        hook = outbound.create(
            session, workspace.id, WebhookIn(url="http://x.test"), rt.settings, clock.now()
        )
        return rt, hook.id


def test_requests_that_fail_together_are_one_attempt_and_the_page_says_both(
    database_url: str, clock: Any
) -> None:
    """Recorded batch by batch as a worker records them: attempts count back-off rounds,
    requests count requests, and the words on the page say both."""
    rt, hook_id = runtime_with_a_webhook(database_url, clock)
    now = clock.now()

    def record(*outcomes: bool, at: Any) -> Any:
        with rt.transaction() as session:
            results = [_sent(hook_id, ok, at) for ok in outcomes]
            record_results(
                session,
                results,
                released=[],
                now=at,
                settings=rt.settings,
                rng=random.Random(1),
            )
            return webhooks.lock(session, [hook_id])[hook_id]

    first = record(False, False, at=now)
    assert (first.consecutive_failures, first.failed_requests) == (1, 2)
    later = now + timedelta(minutes=1)
    second = record(False, False, False, False, at=later)
    assert (second.consecutive_failures, second.failed_requests) == (2, 6)
    assert state_of(second).failures == "2 failed attempts (6 requests)"
    assert (state_of(second).key, state_of(second).label) == ("failing", "Failing")
    assert second.last_failure_at == later and second.last_success_at is None
    mended = record(False, True, at=later + timedelta(minutes=1))
    assert (mended.consecutive_failures, mended.failed_requests) == (0, 0)
    assert mended.last_success_at == later + timedelta(minutes=1)
    assert state_of(mended).key == "enabled" and state_of(mended).failures == ""
    rt.engine.dispose()
