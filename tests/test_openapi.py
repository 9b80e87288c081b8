"""The OpenAPI document teaches: tags, descriptions, enums and working examples, and the
requests chathooks sends; /docs and /redoc render with no network beyond this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from chathooks.payload_models import BundlePayload, MessagePayload
from tests.browsing import CHROMIUM, sqlite_only
from tests.conftest import Service, event, wait_for
from tests.receiver import Receiver


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def _schema(document: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


@sqlite_only
def test_every_operation_is_tagged_described_and_its_body_has_a_working_example(
    service: Service,
) -> None:
    team = service.workspace()
    team.account()
    document = service.http.get("/openapi.json").json()
    declared = {tag["name"] for tag in document["tags"]}
    for method, path, operation in _operations(document):
        assert operation.get("tags"), f"{method} {path} has no tag"
        assert set(operation["tags"]) <= declared, f"{method} {path}: undeclared tag"
        body = operation.get("requestBody")
        if body is None:
            continue
        schema = _schema(document, body["content"]["application/json"]["schema"]["$ref"])
        assert schema.get("examples"), f"{method} {path}: its body has no example"
        for name, field in schema["properties"].items():
            assert "description" in field or "$ref" in field, f"{path}: {name} undescribed"

    # The documented bodies of the two message routes are accepted as they stand.
    single = _schema(document, "MessageEvent")["examples"][0]
    assert team.post("/messages", single).status_code == 202
    batch = _schema(document, "MessageBatch")["examples"][0]
    assert list(batch) == ["messages"]
    batch["messages"][0]["message_id"] = "from-the-batch-example"
    answer = team.post("/messages/batch", batch)
    assert answer.status_code == 202, answer.text
    assert answer.json()["results"][0]["status"] == "accepted"


@sqlite_only
def test_every_summary_is_written_for_people(service: Service) -> None:
    """Not FastAPI's default, the function's name in Title Case ("Post Batch")."""
    document = service.http.get("/openapi.json").json()
    operations = list(_operations(document))
    operations += [("post", name, item["post"]) for name, item in document["webhooks"].items()]
    for method, path, operation in operations:
        summary = operation.get("summary", "")
        assert " " in summary and "_" not in summary, f"{method} {path}: {summary!r}"
        assert summary != summary.title(), f"{method} {path}: {summary!r} looks like a name"
        assert summary[0].isupper(), f"{method} {path}: {summary!r}"


@sqlite_only
def test_enums_and_chat_id_as_text(service: Service) -> None:
    schemas = service.http.get("/openapi.json").json()["components"]["schemas"]
    activity = schemas["ActivityOut"]["properties"]
    assert {"delivered", "failed", "skipped", "auto_disabled", "test"} <= set(
        activity["action"]["enum"]
    )

    def enum(model: str, field: str) -> list[str]:
        """The values a field takes: its own enum's, also when it may be null."""
        schema = schemas[model]["properties"][field]
        ref = next(s["$ref"] for s in [schema, *schema.get("anyOf", [])] if "$ref" in s)
        return list(schemas[ref.rsplit("/", 1)[1]]["enum"])

    assert enum("WebhookOut", "status") == ["enabled", "failing", "disabled", "auto_disabled"]
    assert enum("WebhookIn", "aggregation") == ["none", "1h", "6h", "12h", "24h"]
    assert enum("WebhookPatch", "aggregation") == enum("WebhookIn", "aggregation")
    assert enum("SourceIn", "kind") == ["whatsapp_cloud", "waha", "evolution", "twilio"]
    assert enum("SourceOut", "kind") == enum("SourceIn", "kind")
    for name in ("ActivityOut", "ChatOut", "MessageResult", "PayloadChat"):
        chat_id = schemas[name]["properties"]["chat_id"]
        types = [chat_id.get("type")] + [option.get("type") for option in chat_id.get("anyOf", [])]
        assert "string" in types and "integer" not in types, name


def test_outgoing_requests_are_documented_and_match_what_is_sent(
    service: Service, receiver: Receiver
) -> None:
    document = service.http.get("/openapi.json").json()
    webhooks = document["webhooks"]
    for name, model in (("message", "MessagePayload"), ("bundle", "BundlePayload")):
        operation = webhooks[name]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + model)
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        assert {"200", "410", "default"} <= set(operation["responses"])

    # What a receiver gets is exactly what the document describes: no field more or less,
    # no type different (chat_id a string, timestamps in the documented form).
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    bundled = team.webhook(receiver.url.replace("/hook", "/bundle"), aggregation="1h")
    team.post("/messages", event("doc-1", text="first 🙂"))
    team.post("/messages", event("doc-2", chat="972549999999@g.us", is_group=True, phone=""))
    wait_for(lambda: len(receiver.requests) == 2, what="two single requests")
    assert team.post(f"/outbound-webhooks/{bundled['id']}/flush", {}).json() == {"bundles": 2}
    wait_for(lambda: len(receiver.requests) == 4, what="two bundles")
    for received in receiver.requests:
        model = BundlePayload if received.path == "/bundle" else MessagePayload
        model.model_validate(received.json, strict=True)


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A page that can reach 127.0.0.1 only; every other request is refused and noted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    refused: list[str] = []

    def only_this_machine(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_this_machine)
    yield context.new_page(), refused
    context.close()


@sqlite_only
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_docs_and_redoc_render_their_operations_without_internet(
    service: Service, offline_page: tuple[Page, list[str]]
) -> None:
    page, refused = offline_page
    page.goto(service.url + "/docs")
    batch = page.locator(".opblock-summary-path", has_text="/api/v1/messages/batch")
    expect(batch).to_be_visible(timeout=30_000)  # Swagger UI renders the whole spec first
    expect(page.locator(".opblock-tag", has_text="outbound webhooks")).to_be_visible()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    batch.click()
    expect(page.locator(".opblock-body")).to_contain_text('"messages"')

    page.goto(service.url + "/redoc")
    expect(
        page.get_by_role("heading", name="Send up to 1,000 messages at once").first
    ).to_be_attached()
    expect(page.locator("redoc")).to_contain_text("A bundle (aggregation 1h, 6h, 12h or 24h)")
    assert refused == []
