"""A failing webhook is never silent: one log line at each change of its state, failing
webhooks and failed attempts counted in ``/metrics`` and ``chathooks status``, ``failing``
in the API and on the pages, and an alert e-mail that names the webhook."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chathooks.deliver.transport import Outcome
from chathooks.record import Sent, record_results
from chathooks.states import TIMED_OUT, FailureClass
from tests.conftest import Service, event, free_port, wait_for
from tests.pages import browser, set_password
from tests.receiver import Receiver, Reply
from tests.test_cli import _chathooks
from tests.test_failing_in_sight import runtime_with_a_webhook
from tests.test_operations import scrape, value

FAILED_ATTEMPTS = "chathooks_webhook_failed_attempts_total"


def _lines(caplog: pytest.LogCaptureFixture, webhook_id: int) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "chathooks.record" and getattr(r, "webhook_id", None) == webhook_id
    ]


def _changes(caplog: pytest.LogCaptureFixture, webhook_id: int) -> list[str]:
    return [r.change for r in _lines(caplog, webhook_id)]


def _status(database_url: str) -> dict[str, str]:
    done = _chathooks(database_url, "status")
    assert done.returncode == 0, done.stderr
    return {k: v.strip() for k, v in (line.split(":", 1) for line in done.stdout.splitlines())}


def test_a_failing_webhook_is_logged_counted_and_shown_within_one_attempt(
    database_url: str, service: Service, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chathooks")
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url, name="CRM")
    workspace_id = team.created["id"]
    before = scrape(service)
    receiver.default = Reply(500, body="down")
    team.post("/messages", event("m1", text="private words"))

    wait_for(lambda: _changes(caplog, hook["id"]) == ["failing"], what="the failing line")
    line = _lines(caplog, hook["id"])[0]
    assert line.levelname == "WARNING"
    assert (line.webhook_name, line.workspace_id, line.last_error) == (
        "CRM",
        workspace_id,
        "HTTP 500",
    )
    said = line.getMessage()
    assert said.startswith(f'webhook {hook["id"]} "CRM" of workspace {workspace_id} is failing')
    assert "HTTP 500" in said
    for secret in (receiver.url, hook["secret"], "private words"):
        assert secret not in said

    state = team.get(f"/outbound-webhooks/{hook['id']}").json()
    assert (state["status"], state["enabled"]) == ("failing", True)
    assert state["retry_at"] is not None
    samples = scrape(service)
    assert value(samples, "chathooks_webhooks", status="failing") == 1
    assert value(samples, "chathooks_webhooks", status="enabled") == 0
    moved = value(samples, FAILED_ATTEMPTS, **{"class": "5xx"}) - value(
        before, FAILED_ATTEMPTS, **{"class": "5xx"}
    )
    assert moved == 1
    status = _status(database_url)
    assert status["webhooks"] == "1 failing"
    assert status["failing webhooks by last error"] == "5xx: 1 webhook (1 failed attempt)"
    page = browser(service)
    set_password(service, team, page)
    assert "Failing" in page.get(f"/webhooks/outbound/{hook['id']}").text

    # Another failed attempt changes nothing: no second line.
    service.clock.advance(3600)
    wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}").json()["consecutive_failures"] == 2,
        what="the second failed attempt",
    )
    assert _changes(caplog, hook["id"]) == ["failing"]

    receiver.default = Reply(200)
    assert team.post(f"/outbound-webhooks/{hook['id']}/retry", None).status_code == 202
    wait_for(
        lambda: _changes(caplog, hook["id"]) == ["failing", "recovered"],
        what="the recovery line",
    )
    recovered = _lines(caplog, hook["id"])[1]
    assert (recovered.levelname, recovered.last_error) == ("INFO", "HTTP 500")
    healthy = team.get(f"/outbound-webhooks/{hook['id']}").json()
    assert (healthy["status"], healthy["retry_at"]) == ("enabled", None)
    samples = scrape(service)
    assert value(samples, "chathooks_webhooks", status="failing") == 0
    assert value(samples, "chathooks_webhooks", status="enabled") == 1
    assert _status(database_url)["failing webhooks by last error"] == "none"


def test_auto_disable_and_re_enable_are_logged_and_the_alert_names_the_webhook(
    start_service: Any, receiver: Receiver, smtp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chathooks")
    inbox, port = smtp
    service = start_service(
        smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, mail_from="a@chathooks.test"
    )
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url, name="Sales CRM")
    receiver.default = Reply(410)
    team.post("/messages", event("m1"))

    wait_for(
        lambda: _changes(caplog, hook["id"]) == ["failing", "auto_disabled"],
        what="the auto-disabled line",
    )
    disabled = _lines(caplog, hook["id"])[1]
    assert disabled.levelname == "WARNING" and disabled.last_error == "HTTP 410"
    assert "was auto-disabled: the receiver answered 410 Gone" in disabled.getMessage()
    state = team.get(f"/outbound-webhooks/{hook['id']}").json()
    assert (state["status"], state["enabled"], state["retry_at"]) == ("auto_disabled", False, None)
    assert team.get("/outbound-webhooks").json() == [state]

    mail = wait_for(lambda: inbox.messages, what="the alert e-mail")[0]
    assert f'webhook "Sales CRM" ({hook["id"]})' in mail["Subject"]
    body = mail.get_payload()
    assert f'"Sales CRM" ({hook["id"]})' in body and receiver.url in body

    receiver.default = Reply(200)
    enabled = team.patch(f"/outbound-webhooks/{hook['id']}", {"enabled": True}).json()
    assert (enabled["status"], enabled["retry_at"]) == ("enabled", None)
    wait_for(
        lambda: _changes(caplog, hook["id"]) == ["failing", "auto_disabled", "re_enabled"],
        what="the re-enabled line",
    )
    again = _lines(caplog, hook["id"])[2]
    assert (again.levelname, again.webhook_name, again.last_error) == (
        "INFO",
        "Sales CRM",
        "HTTP 410",
    )
    wait_for(lambda: len(receiver.requests) == 2, what="the backlog after re-enabling")


def test_a_receiver_that_refuses_connections_counts_as_connection(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chathooks")
    team = service.workspace()
    team.account()
    hook = team.webhook(f"http://127.0.0.1:{free_port()}/nobody-listens")
    before = scrape(service)
    team.post("/messages", event("m1"))
    wait_for(lambda: _changes(caplog, hook["id"]) == ["failing"], what="the failing line")
    samples = scrape(service)
    labels = {"class": "connection"}
    assert value(samples, FAILED_ATTEMPTS, **labels) - value(before, FAILED_ATTEMPTS, **labels) == 1
    assert _lines(caplog, hook["id"])[0].last_error.startswith("Client")


def test_a_change_rolled_back_is_never_logged(
    database_url: str, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Results are recorded in one transaction per batch: a batch that fails after the
    webhook changed state leaves no line saying it did."""
    caplog.set_level(logging.INFO, logger="chathooks")
    rt, hook_id = runtime_with_a_webhook(database_url, clock)
    now = clock.now()
    failed = Sent(hook_id, None, None, 1, "http://x.test", {}, "{}", Outcome(503, 1.0), now)

    with pytest.raises(RuntimeError), rt.transaction() as session:
        record_results(session, [failed], released=[], now=now, settings=rt.settings, rng=rt.rng)
        raise RuntimeError("the batch fails after its results")
    assert _changes(caplog, hook_id) == []
    with rt.transaction() as session:
        record_results(session, [failed], released=[], now=now, settings=rt.settings, rng=rt.rng)
    assert _changes(caplog, hook_id) == ["failing"]
    rt.engine.dispose()


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (None, TIMED_OUT, "timeout"),
        (None, "ClientConnectorError: Cannot connect to host", "connection"),
        (302, "", "3xx"),
        (404, "", "4xx"),
        (503, "", "5xx"),
        (102, "", "other"),
    ],
)
def test_failure_classes_are_few(status: int | None, error: str, expected: str) -> None:
    assert FailureClass.of(status, error) == expected
