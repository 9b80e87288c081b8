"""What an operator watches: /healthz, /readyz, /metrics, and JSON logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from chathooks import health
from chathooks.store.database import head_revision
from tests.conftest import ADMIN_TOKEN, Service, event, run_coroutine, wait_for
from tests.receiver import Receiver, Reply
from tests.test_restart import _answers, _free_port


def scrape(service: Service) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed by prometheus_client's own parser."""
    answer = service.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_health_and_readiness_of_serve(service: Service) -> None:
    assert service.http.get("/healthz").json() == {"status": "ok"}
    ready = service.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "worker": "ok"}


def test_readiness_names_a_schema_that_is_not_current(start_service: Any) -> None:
    service = start_service(run_worker=False)
    assert service.http.get("/readyz").json()["checks"] == {"database": "ok"}
    with service.rt.transaction() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        ready = service.http.get("/readyz")
        assert ready.status_code == 503
        assert "schema is at 0001" in ready.json()["checks"]["database"]
        assert service.http.get("/healthz").status_code == 200
    finally:
        with service.rt.transaction() as session:
            session.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
            )


def test_readiness_wants_a_recent_turn_of_the_delivery_loop(service: Service) -> None:
    stalled = health.Heartbeat()
    result = run_coroutine(health.readiness(service.rt, stalled))
    assert not result.ready
    assert result.checks["worker"] == "delivery loop idle for over 30 s"
    stalled.beat()
    assert run_coroutine(health.readiness(service.rt, stalled)).ready


def test_metrics_parse_and_move_with_traffic(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    before = scrape(service)
    assert value(before, "chathooks_webhooks", status="enabled") == 1
    assert value(before, "chathooks_webhooks", status="auto_disabled") == 0

    team.post("/messages/batch", {"messages": [event(f"m{i}", chat=f"c{i}") for i in range(3)]})
    team.post("/messages", event("m0"))  # a duplicate is not counted
    wait_for(lambda: len(receiver.requests) == 3, what="three deliveries")
    receiver.replies.append(Reply(500))
    team.post("/messages", event("m3", chat="c3"))
    wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}").json()["consecutive_failures"] == 1,
        what="the failure to be recorded",
    )
    service.clock.advance(60)
    after = wait_for(
        lambda: (
            (s := scrape(service))
            and value(s, "chathooks_webhook_requests_total", outcome="success")
            - value(before, "chathooks_webhook_requests_total", outcome="success")
            == 4
            and value(s, "chathooks_deliveries_waiting") == 0
            and s
        ),
        what="four successes recorded",
    )

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("chathooks_messages_ingested_total", source="api") == 4
    assert moved("chathooks_webhook_requests_total", outcome="success") == 4
    assert moved("chathooks_webhook_requests_total", outcome="server_error") == 1
    assert moved("chathooks_webhook_request_duration_seconds_count") == 5
    assert moved("chathooks_message_delivery_latency_seconds_count") == 4
    # m3 waited the 60 s the clock moved: its latency is past the 30 s bucket.
    assert moved("chathooks_message_delivery_latency_seconds_bucket", le="30.0") == 3
    assert value(after, "chathooks_oldest_waiting_delivery_age_seconds") == 0
    names = {name for name, _ in after}
    assert all(n.startswith(("chathooks_", "process_", "python_")) for n in names)
    assert not any("workspace" in str(labels) for _, labels in after)


def test_waiting_gauges_read_the_backlog(service: Service, receiver: Receiver) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    receiver.default = Reply(503)
    team.post("/messages/batch", {"messages": [event(f"w{i}", chat=f"c{i}") for i in range(4)]})
    wait_for(lambda: receiver.requests, what="the failed attempt")
    service.clock.advance(5)
    samples = scrape(service)
    assert value(samples, "chathooks_deliveries_waiting") == 4
    assert value(samples, "chathooks_oldest_waiting_delivery_age_seconds") == 5


def test_json_logs_carry_ids_and_no_secrets(
    database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    """One JSON object per line: each change of a webhook's state names the webhook, its
    workspace and the last error; no line holds a set-password token or a message's text."""
    port = _free_port()
    env = {
        **os.environ,
        "CHATHOOKS_DATABASE_URL": database_url,
        "CHATHOOKS_PORT": str(port),
        "CHATHOOKS_ADMIN_TOKEN": ADMIN_TOKEN,
        "CHATHOOKS_ALLOW_PRIVATE_TARGETS": "true",
        "CHATHOOKS_LOG_FORMAT": "json",
        "CHATHOOKS_POLL_INTERVAL_SECONDS": "0.1",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "chathooks", "serve", "--log-level", "info"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _answers(port), timeout=60, what="serve to listen")
        base = f"http://127.0.0.1:{port}"
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        created = httpx.post(
            f"{base}/api/v1/workspaces",
            headers=admin,
            json={"name": "Acme", "owner_name": "O", "owner_email": "o@acme.test"},
        ).json()
        auth = {"Authorization": f"Bearer {created['api_token']}"}
        httpx.post(
            f"{base}/api/v1/whatsapp-accounts",
            headers=auth,
            json={"phone": "+972500000000", "full_name": "A", "email": "a@acme.test"},
        )
        hook = httpx.post(
            f"{base}/api/v1/outbound-webhooks",
            headers=auth,
            json={"url": receiver.url, "name": "CRM"},
        ).json()
        httpx.get(f"{base}/set-password/secret-token-in-the-path")
        receiver.default = Reply(410)
        httpx.post(f"{base}/api/v1/messages", headers=auth, json=event("j1", text="private words"))
        wait_for(lambda: "auto-disabled" in log.read_text(), what="the auto-disable line")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    changes = [line for line in lines if "change" in line]
    assert [line["change"] for line in changes] == ["failing", "auto_disabled"]
    for line in changes:
        assert (line["webhook_id"], line["webhook_name"]) == (hook["id"], "CRM")
        assert (line["workspace_id"], line["last_error"]) == (created["id"], "HTTP 410")
        assert line["level"] == "WARNING"
    assert "was auto-disabled: the receiver answered 410 Gone" in changes[1]["message"]
    access = [line for line in lines if line.get("path", "").startswith("/set-password/")]
    assert access and access[0]["path"] == "/set-password/***"
    text_of_log = log.read_text()
    assert "secret-token-in-the-path" not in text_of_log
    assert "private words" not in text_of_log
    assert created["api_token"] not in text_of_log
