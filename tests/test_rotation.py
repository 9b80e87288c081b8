"""Rotating a webhook's secret never breaks a receiver: for 24 hours the previous secret
signs every request too (SPEC §5), checked by a receiver that verifies with the library
receivers use (it also checks the timestamp against the real time, so the test's clock
is set one day back first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.conftest import Service, Workspace, event, wait_for
from tests.receiver import Receiver


def test_the_previous_secret_keeps_signing_for_24_hours_and_not_after(
    service: Service, receiver: Receiver
) -> None:
    rotated_at = a_day_back(service)
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    old = hook["secret"]
    rotated = team.patch(f"/outbound-webhooks/{hook['id']}", {"rotate_secret": True}).json()
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    until = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert until == rotated_at + timedelta(hours=24)

    check_overlap(service, team, receiver, old=old, new=new, until=until)


def a_day_back(service: Service) -> datetime:
    """Set the clock one day (less a minute) back: when the overlap ends, it is about the
    real time again, which the receivers' library checks timestamps against."""
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=24, minutes=-1)
    service.clock.set(moment)
    return moment


def check_overlap(
    service: Service,
    team: Workspace,
    receiver: Receiver,
    *,
    old: str,
    new: str,
    until: datetime,
) -> None:
    """A message delivered a minute before ``until`` verifies with the old secret as well
    as the new one; a message a minute after it, with the new one only."""
    service.clock.set(until - timedelta(minutes=1))
    team.post("/messages", event("in-overlap"))
    request = wait_for(lambda: receiver.requests, what="the delivery in the overlap")[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        verified = Webhook(secret).verify(request.body, request.headers)
        assert verified["message"]["message_id"] == "in-overlap"

    service.clock.set(until + timedelta(minutes=1))
    team.post("/messages", event("after-overlap"))
    request = wait_for(lambda: receiver.requests[1:], what="the delivery after it")[0]
    assert Webhook(new).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(old).verify(request.body, request.headers)


def test_rotating_twice_leaves_only_the_last_two_secrets_signing(
    service: Service, receiver: Receiver
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    path = f"/outbound-webhooks/{hook['id']}"
    second = team.patch(path, {"rotate_secret": True}).json()["secret"]
    third = team.patch(path, {"rotate_secret": True}).json()["secret"]
    attempt = team.post(path + "/test", None).json()
    assert attempt["success"] is True
    request = receiver.requests[0]
    for secret in (second, third):
        assert Webhook(secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(request.body, request.headers)
