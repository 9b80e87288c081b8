"""Refusals at a source's URL are cheap and explained: they store nothing, the sender gets
one generic 401, the source's log says why, a flood writes about one entry a second, and
every refusal is counted in the metrics. A changed secret takes effect."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from chathooks.store.models import Source
from tests.conftest import Service, run_coroutine
from tests.pages import browser, set_password
from tests.receiver import Receiver
from tests.test_sources import EVOLUTION_KEY, Sender, fixture, setup, stored_messages

GENERIC = {"detail": "missing or wrong signature or key"}


def _refusals(service: Service, kind: str) -> dict[str, float]:
    families = text_string_to_metric_families(service.http.get("/metrics").text)
    family = next(f for f in families if f.name == "chathooks_source_refusals")
    return {
        s.labels["reason"]: s.value
        for s in family.samples
        if s.name.endswith("_total") and s.labels["kind"] == kind
    }


def _refused_since(service: Service, kind: str, before: dict[str, float]) -> dict[str, float]:
    """Refusals counted since ``before`` (the metrics are the process' own, shared by tests)."""
    return {r: n - before.get(r, 0) for r, n in _refusals(service, kind).items()}


def _details(sender: Sender) -> list[str]:
    return [r["detail"] for r in sender.log()]


def test_cloud_api_refusals_name_the_reason(service: Service, receiver: Receiver) -> None:
    sender = setup(service, receiver, "whatsapp_cloud")
    before = _refusals(service, "whatsapp_cloud")
    body = fixture("whatsapp_cloud", "text_received")
    signature = sender.signature(body)["X-Hub-Signature-256"]
    sha1 = "sha1=" + signature.removeprefix("sha256=")
    tries = [{}, {"X-Hub-Signature-256": sha1}, sender.signature(body + b" ")]
    for headers in tries:
        answer = sender.post(body, headers)
        assert (answer.status_code, answer.json()) == (401, GENERIC)
        service.clock.advance(1)
    assert _details(sender) == [
        "the x-hub-signature-256 signature does not match the body signed with this "
        "source's secret",
        "x-hub-signature-256 does not start with 'sha256='",
        "the x-hub-signature-256 header is missing",
    ]
    assert stored_messages(service) == 0
    counted = _refused_since(service, "whatsapp_cloud", before)
    assert counted["signature_missing"] == counted["signature_wrong"] == 1
    assert counted["algorithm_unexpected"] == 1


def test_waha_and_evolution_refusals_name_the_reason(service: Service, receiver: Receiver) -> None:
    waha = setup(service, receiver, "waha")
    before = {kind: _refusals(service, kind) for kind in ("waha", "evolution")}
    body = fixture("waha", "text_received")
    signed = waha.signature(body)
    for headers in [{}, {**signed, "X-Webhook-Hmac-Algorithm": "sha256"}, waha.signature(b"x")]:
        assert waha.post(body, headers).status_code == 401
        service.clock.advance(1)
    assert _details(waha) == [
        "the x-webhook-hmac signature does not match the body signed with this source's secret",
        "x-webhook-hmac-algorithm is 'sha256', not 'sha512'",
        "the x-webhook-hmac header is missing",
    ]

    evolution = Sender(waha.team, "evolution")
    upsert = fixture("evolution", "text_received")
    for forged in [upsert.replace(b'"apikey"', b'"apiKey"'), upsert.replace(b"B6D7", b"0000")]:
        answer = evolution.post(forged)
        assert (answer.status_code, answer.json()) == (401, GENERIC)
        service.clock.advance(1)
    assert _details(evolution) == [
        "the body's apikey is not this source's API key",
        "the body has no apikey",
    ]
    assert stored_messages(service) == 0
    assert _refused_since(service, "evolution", before["evolution"])["apikey_missing"] == 1
    assert _refused_since(service, "waha", before["waha"])["algorithm_unexpected"] == 1


def test_a_flood_of_refusals_writes_one_entry_a_second(
    service: Service, receiver: Receiver
) -> None:
    sender = setup(service, receiver, "whatsapp_cloud")
    before = _refusals(service, "whatsapp_cloud")
    body = fixture("whatsapp_cloud", "text_received")
    forged = sender.signature(b"forged")
    for _ in range(30):
        assert sender.post(body, forged).status_code == 401
    sender.deliver("text_received", stored=1)  # a stored request is always logged
    assert [r["outcome"] for r in sender.log()] == ["stored", "unauthorized"]

    service.clock.advance(1)
    for _ in range(5):
        assert sender.post(body, {}).status_code == 401
    log = sender.log()
    assert [r["outcome"] for r in log] == ["unauthorized", "stored", "unauthorized"]
    assert log[0]["detail"] == (
        "the x-hub-signature-256 header is missing\n"
        "29 more refused since the previous entry (not logged one by one)"
    )
    counted = _refused_since(service, "whatsapp_cloud", before)
    assert (counted["signature_wrong"], counted["signature_missing"]) == (30, 5)
    assert stored_messages(service) == 1


def test_a_changed_secret_takes_effect(service: Service, receiver: Receiver) -> None:
    cloud = setup(service, receiver, "whatsapp_cloud")
    other = fixture("whatsapp_cloud", "text_received").replace(b"wamid.", b"wamid.other-")
    old = cloud.signature(other)
    cloud.deliver("text_received", stored=1)

    new_secret = "a-new-app-secret-0123456789"
    changed = cloud.team.patch(
        f"/sources/{cloud.source['id']}", {"secrets": {"app_secret": new_secret}}
    )
    assert changed.status_code == 200, changed.text
    cloud.source = changed.json()
    assert cloud.post(other, old).status_code == 401  # the old secret stops at once
    service.clock.advance(1)  # the new one is accepted within a second
    assert cloud.post(other).status_code == 200
    assert stored_messages(service) == 2

    evolution = Sender(cloud.team, "evolution")
    upsert = fixture("evolution", "text_received")
    evolution.deliver("text_received", stored=1)
    new_key = "F" * 32
    assert (
        cloud.team.patch(
            f"/sources/{evolution.source['id']}", {"secrets": {"api_key": new_key}}
        ).status_code
        == 200
    )
    again = upsert.replace(b"3EB0A0C1", b"3EB0A0C9")
    assert evolution.post(again).status_code == 401
    service.clock.advance(1)
    assert evolution.post(again.replace(EVOLUTION_KEY.encode(), new_key.encode())).json() == {
        "stored": 1,
        "duplicates": 0,
        "ignored": 0,
        "rejected": 0,
    }


def test_the_source_page_warns_of_a_short_secret(service: Service, receiver: Receiver) -> None:
    cloud = setup(service, receiver, "whatsapp_cloud")
    client = browser(service)
    set_password(service, cloud.team, client)
    page = client.get(f"/whatsapp/sources/{cloud.source['id']}")
    assert "can be guessed" not in page.text
    with service.rt.transaction() as session:  # a secret set before 8 characters were needed
        secrets: dict[str, Any] = {**cloud.source["secrets"], "app_secret": "abc"}
        session.execute(
            update(Source).where(Source.id == cloud.source["id"]).values(secrets=secrets)
        )
    page = client.get(f"/whatsapp/sources/{cloud.source['id']}")
    assert "The App secret has only 3 characters: one this short can be guessed." in page.text
    answer = client.post(
        f"/whatsapp/sources/{cloud.source['id']}",
        data={"name": "x", "secret_app_secret": "1234567", "csrf_token": _csrf(client, page)},
    )
    assert answer.status_code == 422
    assert "8 to 200 visible characters" in answer.text


def _csrf(client: httpx.Client, page: httpx.Response) -> str:
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def test_a_refused_flood_does_not_log_bodies(service: Service, receiver: Receiver) -> None:
    """A body over 8 MiB is a 413; its log entry keeps only the first 16 KiB."""
    sender = setup(service, receiver, "waha")
    before = _refusals(service, "waha")
    huge = json.dumps({"event": "message.any", "pad": "x" * (8 * 1024 * 1024)}).encode()
    answer = sender.post(huge, sender.signature(huge))
    assert answer.status_code == 413
    entry = sender.log()[0]
    assert (entry["outcome"], len(entry["body"])) == ("too_large", 16 * 1024)
    assert _refused_since(service, "waha", before)["too_large"] == 1


def test_large_bodies_take_turns_and_are_screened_whole(
    service: Service, receiver: Receiver
) -> None:
    """Bodies past 256 KiB are read one at a time: several at once all get their answer,
    the signed ones stored, the forged ones refused."""
    sender = setup(service, receiver, "waha")
    event = json.loads(fixture("waha", "text_received"))
    bodies = []
    for i in range(4):
        event["payload"]["id"] = f"large-{i}"
        bodies.append(json.dumps({**event, "pad": "x" * (1_500_000 + i)}).encode())

    async def post_all() -> list[int]:
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as http:
            answers = await asyncio.gather(
                *(
                    http.post(sender.path, content=body, headers=sender.signature(signed))
                    for body, signed in zip(bodies, [*bodies[:3], b"forged"], strict=True)
                )
            )
        return [answer.status_code for answer in answers]

    assert run_coroutine(post_all()) == [200, 200, 200, 401]
    assert stored_messages(service) == 3


def test_a_source_that_starts_refusing_is_logged_once_and_again_when_it_recovers(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chathooks.sources")
    sender = Sender(service.workspace(), "whatsapp_cloud")  # no webhook: the log is the point
    source_id = sender.source["id"]
    body = fixture("whatsapp_cloud", "text_received")

    def changes() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "source_id", None) == source_id]

    for _ in range(3):  # a sender with the wrong secret keeps trying
        assert sender.post(body, sender.signature(body + b" ")).status_code == 401
    [started] = changes()
    assert started.levelno == logging.WARNING
    named = f'source {source_id} "whatsapp_cloud line" (whatsapp_cloud) of workspace '
    assert started.getMessage().startswith(named)
    assert "started refusing requests: the x-hub-signature-256 signature does not match" in (
        started.getMessage()
    )
    assert started.__dict__["source_kind"] == "whatsapp_cloud"

    for _ in range(2):
        assert sender.post(body).status_code == 200
    [recovered] = changes()[1:]
    assert recovered.levelno == logging.INFO
    assert recovered.getMessage().startswith(named)
    assert recovered.getMessage().endswith("accepts requests again")
