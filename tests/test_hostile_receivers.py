"""One hostile receiver never hurts anyone else: whatever it answers is parsed defensively,
and a result that cannot be recorded counts against its own webhook only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chathooks.deliver.transport import AiohttpTransport, Outcome
from tests.conftest import Service, Workspace, event, wait_for
from tests.receiver import Receiver, Reply


@pytest.fixture
def victim_receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _two_teams(service: Service, hostile_url: str, victim_url: str) -> tuple[Any, ...]:
    hostile = service.workspace("Hostile", "owner@hostile.test")
    hostile.account()
    hostile_hook = hostile.webhook(hostile_url)
    victim = service.workspace("Victim", "owner@victim.test")
    victim.account()
    victim_hook = victim.webhook(victim_url)
    return hostile, hostile_hook, victim, victim_hook


def _send_both(hostile: Workspace, victim: Workspace, count: int) -> None:
    """Both teams' messages in many chats, so their results are recorded in shared batches."""
    for i in range(count):
        hostile.post("/messages", event(f"h{i}", chat=f"h{i}@c.us"))
        victim.post("/messages", event(f"v{i}", chat=f"v{i}@c.us"))


def _recorded(team: Workspace, hook: dict[str, Any]) -> list[dict[str, Any]]:
    return list(team.get(f"/outbound-webhooks/{hook['id']}/requests").json())


def _failed(team: Workspace, hook: dict[str, Any]) -> dict[str, Any]:
    """The webhook, once it has recorded a failure."""
    found: dict[str, Any] = wait_for(
        lambda: (
            (h := team.get(f"/outbound-webhooks/{hook['id']}").json())
            and h["consecutive_failures"] >= 1
            and h
        ),
        what="the hostile webhook's failure",
    )
    return found


def _victim_got_everything_once(
    victim: Workspace, victim_hook: dict[str, Any], victim_receiver: Receiver, count: int
) -> None:
    expected = {f"v{i}" for i in range(count)}
    wait_for(
        lambda: {b["message"]["message_id"] for b in victim_receiver.bodies()} == expected,
        what="every victim message",
    )
    wait_for(
        lambda: sum(a["success"] for a in _recorded(victim, victim_hook)) == count,
        what="the victim's results to be recorded",
    )
    sent = Counter(b["message"]["message_id"] for b in victim_receiver.bodies())
    assert max(sent.values()) == 1, f"duplicates: {[m for m, n in sent.items() if n > 1]}"


@pytest.mark.parametrize(
    "retry_after",
    ["²", "١٢", "1e3", "99999999999999999999999", "-5"],
    ids=["superscript-two", "arabic-digits", "exponent", "huge", "negative"],
)
def test_a_hostile_retry_after_never_hurts_another_workspace(
    service: Service, receiver: Receiver, victim_receiver: Receiver, retry_after: str
) -> None:
    receiver.default = Reply(429, {"Retry-After": retry_after})
    hostile, hostile_hook, victim, victim_hook = _two_teams(
        service, receiver.url, victim_receiver.url
    )
    _send_both(hostile, victim, 30)

    _victim_got_everything_once(victim, victim_hook, victim_receiver, 30)
    failed = _failed(hostile, hostile_hook)
    assert failed["last_error"] == "HTTP 429"
    assert (failed["status"], failed["enabled"]) == ("failing", True)
    logged = _recorded(hostile, hostile_hook)
    assert logged and logged[0]["response_headers"]["Retry-After"] == retry_after


class CorruptingTransport:
    """The real transport, with every answer from one URL given a text no database stores:
    it stands for a parsing gap that lets something unstorable through."""

    def __init__(self, inner: AiohttpTransport, poisoned_url: str) -> None:
        self.inner = inner
        self.poisoned_url = poisoned_url

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        outcome = await self.inner.post(url, headers, body)
        if url != self.poisoned_url:
            return outcome
        return Outcome(outcome.status, outcome.latency_ms, outcome.headers, "bad \ud800 text")

    async def close(self) -> None:
        await self.inner.close()


def test_a_result_that_cannot_be_recorded_fails_only_its_own_webhook(
    start_service: Any, receiver: Receiver, victim_receiver: Receiver
) -> None:
    service = start_service()
    real = service.rt.transport
    assert isinstance(real, AiohttpTransport)
    service.rt.transport = CorruptingTransport(real, receiver.url)
    hostile, hostile_hook, victim, victim_hook = _two_teams(
        service, receiver.url, victim_receiver.url
    )
    _send_both(hostile, victim, 20)

    _victim_got_everything_once(victim, victim_hook, victim_receiver, 20)
    failed = _failed(hostile, hostile_hook)
    assert "could not be recorded" in failed["last_error"]
    logged = _recorded(hostile, hostile_hook)
    assert logged and all(not a["success"] for a in logged)
    assert all(a["response_body"] == "" for a in logged)
