"""Retention removes what is old and no longer needed, and nothing else; pages and the
replay API say where the horizon is."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from chathooks import retention
from chathooks.store.models import (
    Activity,
    Attempt,
    BundleMessage,
    Chat,
    Delivery,
    Message,
    Webhook,
    Workspace,
)
from tests.conftest import PUBLIC_BASE, Service, event, run_coroutine, wait_for
from tests.pages import browser
from tests.receiver import Receiver, Reply
from tests.test_operations import scrape, value

PASSWORD = "correct horse battery"


def logged_in(service: Service, link: str) -> httpx.Client:
    """A browser-like client, logged in through the owner's one-time link."""
    client = browser(service)
    path = link.removeprefix(PUBLIC_BASE)
    form = client.get(path)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    data = {"csrf_token": token.group(1), "password": PASSWORD, "confirm": PASSWORD}
    assert client.post(path, data=data).status_code == 303
    return client


def rows(service: Service, model: Any, *where: Any) -> list[Any]:
    with service.rt.transaction() as session:
        return list(session.scalars(select(model).where(*where)))


def count(service: Service, model: Any) -> int:
    with service.rt.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_retention_removes_what_is_old_and_done_and_nothing_else(
    start_service: Any, receiver: Receiver
) -> None:
    service = start_service(retention_batch_size=2)
    failing = Receiver().start()
    try:
        failing.default = Reply(503)
        run_scenario(service, receiver, failing)
    finally:
        failing.stop()


def run_scenario(service: Service, receiver: Receiver, failing: Receiver) -> None:
    team = service.workspace()
    team.account()
    single = team.webhook(receiver.url)
    bundled = team.webhook(receiver.url, "1h")

    # Day 0: "old1" reaches both webhooks; then a webhook whose receiver is down joins,
    # so "old2" waits for it (and must stay, however old).
    team.post("/messages", event("old1", chat="c1@c.us"))
    backlog = team.webhook(failing.url)
    team.post("/messages", event("old2", chat="c2@c.us"))
    team.post(f"/outbound-webhooks/{bundled['id']}/flush", {})
    wait_for(lambda: len(receiver.requests) == 4, what="day 0's deliveries")
    wait_for(lambda: failing.requests, what="the failing webhook's first attempt")
    wait_for(
        lambda: len(rows(service, Delivery, Delivery.status == "delivered")) == 4,
        what="day 0's deliveries to be recorded",
    )
    permalink = next(r.json for r in receiver.requests if "messages" in r.json)["aggregation"]
    old_bundle = re.search(r"/permalink/([^/]+)/", permalink)
    assert old_bundle

    service.clock.advance(31 * 24 * 3600)
    browser = logged_in(service, team.created["owner_password_link"])  # sessions end in 14 days
    team.post("/messages", event("new1", chat="c1@c.us"))
    wait_for(lambda: len(receiver.requests) == 5, what="day 31's single delivery")
    wait_for(
        lambda: (
            not rows(
                service, Delivery, Delivery.status == "pending", Delivery.lease_until.is_not(None)
            )
        ),
        what="leases to end",
    )
    before = {m: count(service, m) for m in (Workspace, Chat, Webhook)}
    horizon = retention.horizon(service.rt)

    removed = run_coroutine(retention.sweep(service.rt))

    kept = {m.external_id for m in rows(service, Message)}
    assert kept == {"old2", "new1"}  # old1 is done with; old2 waits for the failing webhook
    deliveries = rows(service, Delivery)
    assert {(d.webhook_id, d.status) for d in deliveries} == {
        (backlog["id"], "pending"),  # old2, still waiting
        (single["id"], "delivered"),  # new1, recent
        (bundled["id"], "open"),  # new1, gathering
    }
    assert {link.message_id for link in rows(service, BundleMessage)} == {
        m.id for m in rows(service, Message, Message.external_id == "new1")
    }
    assert all(a.at >= horizon for a in rows(service, Attempt))
    assert all(a.at >= horizon for a in rows(service, Activity))
    assert {m: count(service, m) for m in (Workspace, Chat, Webhook)} == before
    assert removed["messages"] == 1
    assert removed["deliveries"] == 4  # old1 x2, old2 x2 (single and bundle), delivered
    assert value(scrape(service), "chathooks_retention_removed_rows_total", table="messages") >= 1

    # A second pass finds nothing more to do.
    assert "messages" not in run_coroutine(retention.sweep(service.rt))

    # The pages say what is gone and since when.
    chat_id = rows(service, Message, Message.external_id == "new1")[0].chat_id
    page = browser.get(f"/chat/{chat_id}/messages/")
    assert page.status_code == 200
    assert f"Messages received before {horizon:%Y-%m-%d %H:%M:%S} UTC were removed" in page.text
    assert "keeps messages for 30 days" in page.text
    gone = browser.get(f"/permalink/{old_bundle.group(1)}/")
    assert gone.status_code == 404
    assert "These messages were removed" in gone.text
    assert f"before {horizon:%Y-%m-%d %H:%M:%S} UTC" in gone.text

    # A replay that starts before the horizon names it; one after it goes through.
    since = (horizon - timedelta(minutes=1)).isoformat()
    until = service.clock.now().isoformat()
    refused = team.post(
        f"/outbound-webhooks/{single['id']}/replay", {"since": since, "until": until}
    )
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "since"]
    assert f"retention horizon {horizon:%Y-%m-%dT%H:%M:%SZ}" in error["msg"]
    since = (horizon + timedelta(minutes=1)).isoformat()
    later = service.clock.now() + timedelta(seconds=1)
    accepted = team.post(
        f"/outbound-webhooks/{single['id']}/replay", {"since": since, "until": later.isoformat()}
    )
    assert accepted.status_code == 202
    assert accepted.json()["messages"] == 1  # new1 (old2 is older than the horizon)
