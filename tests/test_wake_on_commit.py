"""Every route that queues work wakes a worker when its transaction commits. The worker
here would look for due work only once a minute, so each delivery below arrives because
the route's commit woke it (a deadline well under the poll, not a timing assertion)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import literal, select

from chathooks.clock import ManualClock
from chathooks.runtime import build_runtime
from chathooks.store.database import after_commit
from tests.conftest import Service, Workspace, event, make_settings, wait_for
from tests.pages import browser, csrf_of, set_password
from tests.receiver import Receiver, Reply

SLEEPY = {"poll_interval_seconds": 60, "fallback_poll_seconds": 60}
WOKEN = 10.0
"""Seconds to wait for a delivery: far less than the worker's 60 s poll."""

Route = Callable[[Workspace, dict[str, Any]], None]


def _page(team: Workspace) -> httpx.Client:
    client = browser(team.service)
    set_password(team.service, team, client)
    return client


def _press(team: Workspace, hook: dict[str, Any], action: str, **form: Any) -> None:
    """A button of the webhook's page, as a browser posts it."""
    client = _page(team)
    path = f"/webhooks/outbound/{hook['id']}"
    data = {"csrf_token": csrf_of(client, path), **form}
    answer = client.post(f"{path}/{action}" if action else path, data=data)
    assert answer.status_code == 303, answer.text


def _failed_once(team: Workspace, hook: dict[str, Any], receiver: Receiver, reply: int) -> None:
    receiver.replies.append(Reply(reply))
    team.post("/messages", event("m1"))
    wait_for(lambda: len(receiver.requests) == 1, what="the failed attempt")
    wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}").json()["last_failure_at"],
        what="the failure recorded",
    )


def _requests(receiver: Receiver, count: int) -> None:
    wait_for(
        lambda: len(receiver.requests) == count,
        timeout=WOKEN,
        what="a request woken by the commit",
    )


RETRY: dict[str, Route] = {
    "api": lambda team, hook: team.post(f"/outbound-webhooks/{hook['id']}/retry", None),
    "page": lambda team, hook: _press(team, hook, "retry"),
}
ENABLE: dict[str, Route] = {
    "api": lambda team, hook: team.patch(f"/outbound-webhooks/{hook['id']}", {"enabled": True}),
    "page": lambda team, hook: _press(team, hook, "enable"),
}
FLUSH: dict[str, Route] = {
    "api": lambda team, hook: team.post(f"/outbound-webhooks/{hook['id']}/flush", None),
    "page": lambda team, hook: _press(team, hook, "flush"),
}
SETTINGS: dict[str, Route] = {
    "api": lambda team, hook: team.patch(
        f"/outbound-webhooks/{hook['id']}", {"aggregation": "none"}
    ),
    "page": lambda team, hook: _press(
        team,
        hook,
        "",
        url=hook["url"],
        aggregation="none",
        enabled="1",
        directions=["received", "sent"],
        include_groups="1",
    ),
}


@pytest.fixture
def sleepy(start_service: Callable[..., Service]) -> Service:
    return start_service(**SLEEPY)


@pytest.mark.parametrize("via", ["api", "page"])
def test_retry_now_wakes_a_worker(via: str, sleepy: Service, receiver: Receiver) -> None:
    team = sleepy.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    _failed_once(team, hook, receiver, 500)
    RETRY[via](team, hook)
    _requests(receiver, 2)


@pytest.mark.parametrize("via", ["api", "page"])
def test_re_enabling_wakes_a_worker(via: str, sleepy: Service, receiver: Receiver) -> None:
    team = sleepy.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    _failed_once(team, hook, receiver, 410)
    assert team.get(f"/outbound-webhooks/{hook['id']}").json()["status"] == "auto_disabled"
    ENABLE[via](team, hook)
    _requests(receiver, 2)


@pytest.mark.parametrize("via", ["api", "page"])
def test_sending_bundles_now_wakes_a_worker(via: str, sleepy: Service, receiver: Receiver) -> None:
    team = sleepy.workspace()
    team.account()
    hook = team.webhook(receiver.url, aggregation="24h")
    team.post("/messages", event("m1"))
    FLUSH[via](team, hook)
    _requests(receiver, 1)


@pytest.mark.parametrize("via", ["api", "page"])
def test_changing_the_aggregation_wakes_a_worker(
    via: str, sleepy: Service, receiver: Receiver
) -> None:
    """Leaving a period sends what was gathered (SPEC), at once."""
    team = sleepy.workspace()
    team.account()
    hook = team.webhook(receiver.url, aggregation="24h")
    team.post("/messages", event("m1"))
    SETTINGS[via](team, hook)
    _requests(receiver, 1)


@pytest.mark.parametrize("via", ["api", "page"])
def test_replay_wakes_a_worker(via: str, sleepy: Service, receiver: Receiver) -> None:
    team = sleepy.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    team.post("/messages", event("m1"))
    wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}").json()["last_success_at"],
        what="the first delivery recorded",
    )
    now = sleepy.clock.now()
    since, until = now - timedelta(hours=1), now + timedelta(minutes=2)
    if via == "api":
        answer = team.post(
            f"/outbound-webhooks/{hook['id']}/replay",
            {"since": since.isoformat(), "until": until.isoformat()},
        )
        assert answer.json()["deliveries"] == 1
    else:
        _press(
            team,
            hook,
            "replay",
            since=since.strftime("%Y-%m-%dT%H:%M"),
            until=until.strftime("%Y-%m-%dT%H:%M"),
        )
    _requests(receiver, 2)


def test_what_waits_for_the_commit_waits_for_the_transaction_not_a_savepoint(
    database_url: str, clock: ManualClock
) -> None:
    """SQLAlchemy calls its commit listeners when a savepoint is released too (ingest opens
    one per new bundle): only the transaction's own commit runs what waits for it."""
    rt = build_runtime(make_settings(database_url), clock=clock)
    done: list[str] = []
    with rt.transaction() as session:
        after_commit(session, lambda: done.append("committed"))
        with session.begin_nested():
            session.execute(select(literal(1)))
        with contextlib.suppress(LookupError), session.begin_nested():
            session.execute(select(literal(1)))
            raise LookupError("a savepoint rolled back")
        assert done == []
    assert done == ["committed"]
    with pytest.raises(LookupError), rt.transaction() as session:
        after_commit(session, lambda: done.append("rolled back"))
        raise LookupError("the transaction rolled back")
    assert done == ["committed"]
    rt.engine.dispose()
