"""WhatsApp > Sources in a real headless Chromium: create a source, send its sample, see it
counted and delivered."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.conftest import Service, free_port, wait_for
from tests.receiver import Receiver
from tests.test_sources import APP_SECRET
from tests.test_web import PASSWORD, browser, page, pytestmark, screenshot, sqlite_only

__all__ = ["browser", "page", "pytestmark"]  # fixtures and the skip mark, shared


@sqlite_only
def test_create_a_source_send_its_sample_and_see_it_delivered(
    start_service: Callable[..., Service], receiver: Receiver, page: Page
) -> None:
    port = free_port()
    service = start_service(port=port, public_base_url=f"http://127.0.0.1:{port}")
    team = service.workspace()
    hook = team.webhook(receiver.url)
    page.goto(team.created["owner_password_link"])  # the public base is this server here
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat it").fill(PASSWORD)
    page.get_by_role("button", name="Set password and log in").click()

    page.get_by_role("link", name="WhatsApp").click()
    expect(page).to_have_url(service.url + "/whatsapp/sources")
    expect(page.get_by_text("No source yet")).to_be_visible()
    page.get_by_label("Kind").select_option(label="WAHA")
    expect(page.locator("#secret_app_secret")).to_be_hidden()
    page.get_by_label("Kind").select_option(label="WhatsApp Cloud API (Meta)")
    page.get_by_label("Name").fill("Main number")
    page.get_by_role("button", name="Create source").click()
    expect(page.locator("#app_secret-error")).to_contain_text("Paste the App secret")
    assert team.get("/sources").json() == []
    page.locator("#secret_app_secret").fill(APP_SECRET)
    page.get_by_role("button", name="Create source").click()
    expect(page).to_have_url(re.compile(r"/whatsapp/sources/\d+$"))

    [source] = team.get("/sources").json()
    expect(page.locator("#source-url")).to_have_value(source["url"])
    token = source["secrets"]["verify_token"]
    expect(page.locator("#secret-verify_token")).to_have_value(token)
    expect(page.locator("ol.steps")).to_contain_text(source["url"])
    expect(page.locator("ol.steps")).to_contain_text(token)
    expect(page.locator('[data-count="stored"]')).to_have_text("0")

    page.get_by_role("button", name="Send sample").click()
    expect(page.locator("#sample-result")).to_contain_text("HTTP 200")
    expect(page.locator('[data-count="stored"]')).to_have_text("1")
    expect(page.locator("#requests .req.stored")).to_have_count(1)
    page.locator("#requests .req.stored summary").click()
    expect(page.locator("#requests .req.stored")).to_contain_text("x-hub-signature-256")
    screenshot(page, "source")

    body = wait_for(lambda: receiver.bodies(), what="the sample's delivery")[0]
    assert body["message"]["text"] == "this is a text message"
    assert body["chat"]["is_new_chat"] is True
    page.goto(service.url + f"/webhooks/outbound/{hook['id']}")
    expect(page.locator("#activity .act.delivered")).to_contain_text("test user name")

    page.goto(service.url + "/whatsapp/sources")
    expect(page.locator("table.list")).to_contain_text("Main number")
    screenshot(page, "sources")
