"""Check a source's sending (``POST /api/v1/sources/{id}/check`` and the page's Check
button) against fake senders on 127.0.0.1; the rule for senders' URLs with and without
``CHATHOOKS_SENDER_HOSTS``; sending secrets masked where secrets are."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pydantic import ValidationError

from chathooks.settings import problems
from tests.browsing import set_password, sqlite_only
from tests.conftest import Service, Workspace, free_port, make_settings
from tests.fake_senders.evolution import FakeEvolution
from tests.fake_senders.fixtures import (
    EVOLUTION_KEY,
    META_TOKEN,
    NUMBER_ID,
    TWILIO_SENDER,
    TWILIO_SID,
    TWILIO_TOKEN,
)
from tests.fake_senders.twilio import FakeTwilio
from tests.fake_senders.whatsapp_cloud import FakeGraph
from tests.pages import browser, csrf_of
from tests.pages import set_password as set_password_over_http


def source(team: Workspace, kind: str, secrets: dict[str, str]) -> dict[str, Any]:
    answer = team.post("/sources", {"kind": kind, "name": f"{kind} line", "secrets": secrets})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def checked(team: Workspace, source_id: int) -> dict[str, Any]:
    answer = team.post(f"/sources/{source_id}/check", {})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_check_says_what_is_missing_wrong_or_fine(
    service: Service, fake_evolution: FakeEvolution, graph: FakeGraph
) -> None:
    team = service.workspace()
    evolution = source(team, "evolution", {"api_key": EVOLUTION_KEY})
    assert checked(team, evolution["id"]) == {
        "ok": False,
        "words": "To send, this source needs its Evolution API URL and Instance name: set "
        "them in the source's settings.",
    }
    assert fake_evolution.calls == []
    patched = team.patch(
        f"/sources/{evolution['id']}",
        {"secrets": {"api_url": fake_evolution.url, "instance": "sales"}},
    )
    assert patched.status_code == 200, patched.text
    assert checked(team, evolution["id"]) == {
        "ok": True,
        "words": "Instance 'sales' is connected to WhatsApp: chathooks can send.",
    }
    fake_evolution.state = "connecting"
    assert "is connecting to WhatsApp" in checked(team, evolution["id"])["words"]
    team.patch(f"/sources/{evolution['id']}", {"secrets": {"api_key": "0" * 32}})
    wrong = checked(team, evolution["id"])
    assert not wrong["ok"] and wrong["words"].startswith("Evolution refused the API key (401")
    closed = free_port()
    team.patch(
        f"/sources/{evolution['id']}", {"secrets": {"api_url": f"http://127.0.0.1:{closed}"}}
    )
    assert checked(team, evolution["id"]) == {
        "ok": False,
        "words": f"Connection refused by 127.0.0.1:{closed}: is Evolution API running at "
        "this address?",
    }

    cloud = source(
        team,
        "whatsapp_cloud",
        {"app_secret": "a" * 32, "access_token": META_TOKEN, "phone_number_id": NUMBER_ID},
    )
    team.patch(f"/sources/{cloud['id']}", {"secrets": {"api_url": graph.url}})
    assert checked(team, cloud["id"]) == {
        "ok": True,
        "words": "Connected to Acme Sales (+1 650-555-1111), quality rating GREEN.",
    }
    twilio = source(team, "twilio", {"auth_token": "t" * 32})
    assert checked(team, twilio["id"]) == {
        "ok": False,
        "words": "To send, this source needs its Account SID and WhatsApp sender: set them in "
        "the source's settings.",
    }
    waha = source(team, "waha", {})
    assert checked(team, waha["id"]) == {
        "ok": False,
        "words": "To send, this source needs its API base URL: set it in the source's settings.",
    }
    other = service.workspace("Rival", "owner@rival.test")
    assert other.post(f"/sources/{evolution['id']}/check", {}).status_code == 404


def test_a_private_sender_url_needs_the_operators_allowance(
    start_service: Callable[..., Service], fake_evolution: FakeEvolution
) -> None:
    strict = start_service(allow_private_targets=False)
    team = strict.workspace()
    evolution = source(team, "evolution", {"api_key": EVOLUTION_KEY})
    refused = team.patch(
        f"/sources/{evolution['id']}",
        {"secrets": {"api_url": fake_evolution.url, "instance": "sales"}},
    )
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "secrets", "api_url"]
    assert "127.0.0.1, a loopback, private or link-local address" in error["msg"]
    assert "CHATHOOKS_SENDER_HOSTS" in error["msg"]
    secrets = team.get(f"/sources/{evolution['id']}").json()["secrets"]
    assert secrets == {"api_key": EVOLUTION_KEY, "api_url": "", "instance": ""}
    created = team.post(
        "/sources",
        {
            "kind": "evolution",
            "name": "x",
            "secrets": {"api_key": EVOLUTION_KEY, "api_url": fake_evolution.url},
        },
    )
    assert created.status_code == 422 and len(team.get("/sources").json()) == 1
    strict.stop()

    allowed = start_service(
        allow_private_targets=False,
        sender_hosts=f"waha.internal:3000, 127.0.0.1:{fake_evolution.port}",
    )
    team = Workspace(allowed, team.token, team.created)
    saved = team.patch(
        f"/sources/{evolution['id']}",
        {"secrets": {"api_url": fake_evolution.url, "instance": "sales"}},
    )
    assert saved.status_code == 200, saved.text
    assert checked(team, evolution["id"])["ok"] is True
    webhook = team.post("/outbound-webhooks", {"url": fake_evolution.url, "aggregation": "none"})
    assert webhook.status_code == 422  # the allowance is for senders, never for webhooks
    allowed.stop()

    calls = len(fake_evolution.calls)
    again = start_service(allow_private_targets=False)  # the allowance withdrawn
    team = Workspace(again, team.token, team.created)
    refused_now = checked(team, evolution["id"])
    assert refused_now["ok"] is False
    assert refused_now["words"].startswith(
        f"chathooks may not call 127.0.0.1:{fake_evolution.port}: it resolves to 127.0.0.1"
    )
    assert len(fake_evolution.calls) == calls


def test_sending_secrets_are_masked_in_the_log_and_on_the_page(service: Service) -> None:
    team = service.workspace()
    cloud = source(
        team,
        "whatsapp_cloud",
        {"app_secret": "a" * 32, "access_token": META_TOKEN, "phone_number_id": NUMBER_ID},
    )
    path = "/" + cloud["url"].split("/", 3)[3]
    body = json.dumps({"object": "page", "leaked": META_TOKEN, "number": NUMBER_ID}).encode()
    service.http.post(path, content=body, headers={"Content-Type": "application/json"})
    [logged] = team.get(f"/sources/{cloud['id']}/requests").json()
    assert META_TOKEN not in json.dumps(logged) and "••••••" in logged["body"]
    assert NUMBER_ID in logged["body"]  # an id, not a secret: the log shows it

    client = browser(service)
    set_password_over_http(service, team, client)
    page = client.get(f"/whatsapp/sources/{cloud['id']}").text
    assert META_TOKEN not in page
    assert f"saved: ••••{META_TOKEN[-4:]} (leave blank to keep it)" in page
    assert f"saved: {NUMBER_ID} (leave blank to keep it)" in page
    assert "can be guessed" not in page  # the empty Graph API URL is no short secret


def test_the_pages_settings_refuse_a_bad_sender_url_naming_the_field(
    start_service: Callable[..., Service], fake_evolution: FakeEvolution
) -> None:
    service = start_service(allow_private_targets=False)
    team = service.workspace()
    evolution = source(team, "evolution", {"api_key": EVOLUTION_KEY})
    client = browser(service)
    set_password_over_http(service, team, client)
    where = f"/whatsapp/sources/{evolution['id']}"
    answer = client.post(
        where,
        data={
            "name": "evolution line",
            "secret_api_url": fake_evolution.url,
            "secret_instance": "sales",
            "csrf_token": csrf_of(client, where),
        },
    )
    assert answer.status_code == 422
    assert 'id="api_url-error"' in answer.text and "CHATHOOKS_SENDER_HOSTS" in answer.text
    assert team.get(f"/sources/{evolution['id']}").json()["secrets"]["instance"] == ""


@sqlite_only
def test_the_check_button_shows_the_senders_answer_in_words(
    service: Service, fake_evolution: FakeEvolution, page: Page
) -> None:
    team = service.workspace()
    evolution = source(team, "evolution", {"api_key": EVOLUTION_KEY})
    set_password(page, service, team)
    page.goto(f"{service.url}/whatsapp/sources/{evolution['id']}")
    page.get_by_role("button", name="Check").click()
    result = page.locator("#check-result")
    expect(result).to_contain_text("Cannot send")
    expect(result).to_contain_text("needs its Evolution API URL and Instance name")
    page.get_by_label("Evolution API URL").fill(fake_evolution.url)
    page.get_by_label("Instance name").fill("sales")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#secret_instance")).to_have_attribute(
        "placeholder", "saved: sales (leave blank to keep it)"
    )
    page.get_by_role("button", name="Check").click()
    expect(result).to_contain_text("Can send")
    expect(result).to_contain_text("Instance 'sales' is connected to WhatsApp")
    assert [c.path for c in fake_evolution.calls] == ["/instance/connectionState/sales"]


def test_sender_hosts_must_each_name_a_host_and_a_port() -> None:
    assert make_settings(
        "sqlite:///x.db", sender_hosts="WAHA.internal:3000, [fd00::5]:8080"
    ).sender_hosts == [
        "waha.internal:3000",
        "fd00::5:8080",
    ]
    with pytest.raises(ValidationError) as refused:
        make_settings("sqlite:///x.db", sender_hosts="waha.internal:3000,10.0.0.5")
    assert problems(refused.value) == [
        "invalid setting CHATHOOKS_SENDER_HOSTS=waha.internal:3000,10.0.0.5: "
        "'10.0.0.5' is not host:port (e.g. waha.internal:3000)"
    ]


def test_twilio_checks_its_account_and_the_answer_keeps_the_token_out(
    service: Service, fake_twilio: FakeTwilio
) -> None:
    team = service.workspace()
    secrets = {"auth_token": TWILIO_TOKEN, "account_sid": TWILIO_SID, "sender": TWILIO_SENDER}
    twilio = source(team, "twilio", {**secrets, "api_url": fake_twilio.url})
    assert checked(team, twilio["id"]) == {
        "ok": True,
        "words": "Account 'Acme Sales' is active: chathooks can send.",
    }
    fake_twilio.state = "suspended"
    answer = checked(team, twilio["id"])
    assert answer["ok"] is False and TWILIO_TOKEN not in json.dumps(answer)
    assert answer["words"] == (
        "Account 'Acme Sales' is suspended: reactivate it in Twilio's Console."
    )
