"""The web pages in a real headless Chromium (Debian's), against chathooks served by uvicorn.

Every assertion is about what a user sees or gets: text on the page, the URL, a downloaded
file, the request the receiver got (``tests/browsing.py`` has the browser and the steps).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browsing import (
    PASSWORD,
    local,
    log_in,
    needs_chromium,
    screenshot,
    set_password,
    sqlite_only,
    webhook_id_from,
)
from tests.conftest import Service, event, free_port, wait_for
from tests.receiver import Receiver, Reply
from tests.test_sources import APP_SECRET

pytestmark = needs_chromium


def test_owner_sets_password_creates_webhook_tests_it_and_watches_activity(
    service: Service, receiver: Receiver, page: Page, tmp_path: Path
) -> None:
    team = service.workspace()
    team.account()

    page.goto(service.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    screenshot(page, "login")

    # The one-time link: errors show next to the field, nothing is set until they are fixed.
    page.goto(local(service, team.created["owner_password_link"]))
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    page.get_by_label("New password").fill("short")
    page.get_by_label("Repeat it").fill("short")
    page.get_by_role("button", name="Set password and log in").click()
    expect(page.locator("#password-error")).to_have_text("Use at least 8 characters.")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat it").fill(PASSWORD + "!")
    page.get_by_role("button", name="Set password and log in").click()
    expect(page.locator("#confirm-error")).to_have_text("The two passwords differ.")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat it").fill(PASSWORD)
    page.get_by_role("button", name="Set password and log in").click()
    expect(page).to_have_url(service.url + "/webhooks/outbound")
    expect(page.get_by_text("No outbound webhook yet")).to_be_visible()
    expect(page.locator(".who")).to_contain_text("Acme")

    # The link works once.
    page.goto(local(service, team.created["owner_password_link"]))
    expect(page.get_by_role("heading", name="This link is no longer valid")).to_be_visible()

    # A bad URL is refused inline, and nothing is created.
    page.goto(service.url + "/webhooks/outbound")
    page.get_by_label("URL").fill("ftp://x")
    page.get_by_role("button", name="Create webhook").click()
    expect(page.locator("#url-error")).to_contain_text("must be an http:// or https:// URL")
    expect(page.get_by_label("URL")).to_have_value("ftp://x")
    assert team.get("/outbound-webhooks").json() == []

    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Aggregation").select_option(label="No aggregation")
    page.get_by_role("button", name="Create webhook").click()
    expect(page).to_have_url(re.compile(r"/webhooks/outbound/\d+$"))
    webhook_id = webhook_id_from(page)
    expect(page.locator(".webhook-title")).to_contain_text(receiver.url)
    expect(page.locator(".webhook-title .badge")).to_have_text("Enabled")
    secret = team.get(f"/outbound-webhooks/{webhook_id}").json()["secret"]
    expect(page.locator("#secret-value")).to_have_attribute("type", "password")
    page.get_by_role("button", name="Reveal").click()
    expect(page.locator("#secret-value")).to_have_attribute("type", "text")
    expect(page.locator("#secret-value")).to_have_value(secret)

    # Send test: what was sent and the answer appear in the page, without leaving it.
    page.get_by_role("button", name="Send test").click()
    result = page.locator("#test-result .exchange")
    expect(result).to_contain_text("Success")
    expect(result).to_contain_text("HTTP 200")
    expect(result).to_contain_text(re.compile(r"\d+ ms"))
    expect(result.locator(".response-body")).to_have_text("ok")
    expect(result).to_contain_text("chathooks-test")
    sent = json.loads(result.locator(".request-body").inner_text())
    assert sent["message"]["message_id"].startswith("test_")
    assert page.url.endswith(f"/webhooks/outbound/{webhook_id}")
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json == sent

    # A message posted through the API shows up in the activity log by itself.
    posted = team.post("/messages", event("m-1", text="hello from the browser test"))
    assert posted.status_code == 202
    delivered = page.locator("#activity .act.delivered")
    expect(delivered).to_have_count(1)
    expect(delivered).to_contain_text("John Doe")
    expect(delivered).to_contain_text("HTTP 200")
    expect(page.locator("#activity .act.test")).to_have_count(1)

    # The request log downloads as a JSON file.
    with page.expect_download() as download_info:
        page.get_by_role("link", name=re.compile("Download the request log")).click()
    download = download_info.value
    assert re.fullmatch(
        rf"chathooks-webhook-{webhook_id}-requests-\d{{8}}T\d{{6}}Z\.json",
        download.suggested_filename,
    )
    path = tmp_path / "log.json"
    download.save_as(path)
    log = json.loads(path.read_text())
    assert [entry["response_status"] for entry in log] == [200, 200]
    assert json.loads(log[0]["request_body"])["message"]["text"] == "hello from the browser test"

    # The list shows the webhook; logging out ends the session.
    page.goto(service.url + "/webhooks/outbound")
    expect(page.locator("table.list")).to_contain_text(receiver.url)
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(service.url + "/login")
    page.goto(service.url + f"/webhooks/outbound/{webhook_id}")
    expect(page).to_have_url(re.compile(r"/login\?next=/webhooks/outbound/\d+$"))

    # Logging in again leads back to the page asked for; a wrong password does not.
    page.get_by_label("E-mail").fill("owner@acme.test")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(service.url + f"/webhooks/outbound/{webhook_id}")


@sqlite_only
def test_settings_change_and_period_send_now(
    service: Service, receiver: Receiver, page: Page
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    set_password(page, service, team)
    page.goto(service.url + f"/webhooks/outbound/{hook['id']}")
    expect(page.locator("#open-period")).to_have_count(0)

    page.get_by_label("Aggregation").select_option(label="Every 1 hour")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    assert team.get(f"/outbound-webhooks/{hook['id']}").json()["aggregation"] == "1h"
    expect(page.locator("#open-period")).to_contain_text("No message gathered")

    for n, chat in enumerate(["111@c.us", "222@c.us", "111@c.us"]):
        assert team.post("/messages", event(f"p-{n}", chat=chat)).status_code == 202
    page.reload()
    expect(page.locator("#open-period")).to_contain_text(
        re.compile(r"3\s+messages\s+from\s+2\s+chats\s+will be sent at")
    )
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_role("status")).to_have_text("2 bundles queued to send now.")
    wait_for(lambda: len(receiver.requests) == 2, what="two bundles")
    assert sorted(len(body["messages"]) for body in receiver.bodies()) == [1, 2]

    # Rotating the secret, once confirmed, shows the new one; a bad URL keeps the settings.
    old_secret = page.locator("#secret-value").input_value()
    page.get_by_text("Rotate secret…").click()
    page.get_by_role("button", name="Rotate now").click()
    expect(page.locator("#secret-value")).not_to_have_value(old_secret)
    assert page.locator("#secret-value").input_value().startswith("whsec_")
    page.locator("#settings").get_by_label("URL").fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#url-error")).to_have_text(
        "Enter the URL that should receive the messages."
    )
    assert team.get(f"/outbound-webhooks/{hook['id']}").json()["url"] == receiver.url


@sqlite_only
def test_auto_disabled_webhook_shows_why_and_re_enables_with_its_backlog(
    service: Service, receiver: Receiver, page: Page
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    receiver.replies.append(Reply(status=410, body="gone"))
    assert team.post("/messages", event("gone-1", text="first")).status_code == 202
    wait_for(
        lambda: team.get(f"/outbound-webhooks/{hook['id']}").json()["status"] == "auto_disabled",
        what="auto-disable on 410",
    )
    assert team.post("/messages", event("gone-2", text="second")).status_code == 202

    set_password(page, service, team)
    page.goto(service.url + f"/webhooks/outbound/{hook['id']}")
    status = page.locator("#status")
    expect(page.locator(".webhook-title .badge")).to_have_text("Auto-disabled")
    expect(status).to_contain_text("Auto-disabled on")
    expect(status.locator(".reason")).to_contain_text("410")
    expect(status).to_contain_text("2 deliveries waiting")
    expect(page.locator("#activity .act.auto_disabled")).to_have_count(1)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: one column
    screenshot(page, "webhook-auto-disabled-mobile")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Re-enable and send the backlog").click()
    expect(page.locator(".webhook-title .badge")).to_have_text("Enabled")
    wait_for(lambda: len(receiver.requests) == 3, what="the backlog")
    assert [r.json["message"]["text"] for r in receiver.requests[1:]] == ["first", "second"]
    expect(page.locator("#activity .act.re_enabled")).to_have_count(1)


def test_permalink_opens_the_chat_at_the_bundle_first_message(
    service: Service, receiver: Receiver, page: Page
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url, "1h")
    assert team.post("/messages", event("old", text="before the bundle")).status_code == 202
    assert team.post(f"/outbound-webhooks/{hook['id']}/flush", {}).status_code == 200
    wait_for(lambda: receiver.requests, what="the first bundle")
    receiver.requests.clear()
    texts = ['<b>not bold</b> & "quoted"', "line one\nline two 👋"]
    for n, text in enumerate(texts):
        body = event(f"b-{n}", text=text, timestamp=f"2021-02-24T16:3{n}:00Z")
        assert team.post("/messages", body).status_code == 202
    attachment = event("pic", timestamp="2021-02-24T16:40:00Z", text="")
    attachment["attachments"] = [{"type": "image", "url": "https://example.test/p.jpg"}]
    assert team.post("/messages", attachment).status_code == 202
    assert team.post(f"/outbound-webhooks/{hook['id']}/flush", {}).status_code == 200
    bundle = wait_for(receiver.bodies, what="the bundle")[0]
    assert [m["text"] for m in bundle["messages"]] == texts
    permalink = re.search(r"href='([^']+)'", bundle["aggregation"]).group(1)  # type: ignore[union-attr]
    chat_url = bundle["chat"]["chat_url"]

    # Without a session the permalink asks for a login, then opens where it pointed.
    page.goto(local(service, permalink))
    expect(page).to_have_url(re.compile(r"/login\?next=/permalink/"))
    set_password(page, service, team)
    page.goto(local(service, permalink))
    expect(page).to_have_url(re.compile(re.escape(local(service, chat_url)) + r"#m\d+$"))
    anchor = page.url.rsplit("#", 1)[1]
    target = page.locator(f"#{anchor}")
    expect(target).to_contain_text('<b>not bold</b> & "quoted"')
    assert target.evaluate("el => el.matches(':target')")
    assert target.locator(".bubble").evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    assert page.locator(".bubble b").count() == 0  # the text is shown, never run as markup

    messages = page.locator("ol.messages > li")
    expect(messages).to_have_count(4)
    expect(messages.nth(0)).to_contain_text("before the bundle")
    expect(messages.nth(2)).to_contain_text("line one\nline two 👋")
    expect(messages.nth(3).locator(".attachments")).to_have_text("📎 1 attachment · not forwarded")
    expect(messages.nth(0)).to_contain_text("2021-02-24 16:25:29 UTC")
    expect(messages.nth(0)).to_contain_text("received")
    screenshot(page, "chat")


@sqlite_only
def test_another_workspace_sees_404_and_visitors_are_sent_to_login(
    service: Service, receiver: Receiver, page: Page
) -> None:
    acme = service.workspace()
    acme.account()
    hook = acme.webhook(receiver.url)
    chat_id = acme.post("/messages", event("a-1")).json()["chat_id"]
    other = service.workspace("Other", owner_email="boss@other.test")

    chat_path = f"/chat/{chat_id}/messages/"
    page.goto(service.url + chat_path)
    expect(page).to_have_url(service.url + "/login?next=" + chat_path)

    set_password(page, service, other)
    for path in (chat_path, f"/webhooks/outbound/{hook['id']}"):
        response = page.goto(service.url + path)
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    response = page.goto(service.url + f"/webhooks/outbound/{hook['id']}/requests.json")
    assert response is not None and response.status == 404
    page.goto(service.url + "/webhooks/outbound")
    expect(page.get_by_text("No outbound webhook yet")).to_be_visible()

    # Acme's owner, logging in from the login page that the visitor saw, lands on the chat.
    page.context.clear_cookies()
    set_password(page, service, acme)
    page.context.clear_cookies()
    log_in(page, service, "owner@acme.test", chat_path)
    expect(page).to_have_url(service.url + chat_path)
    expect(page.locator("ol.messages > li")).to_have_count(1)


@sqlite_only
def test_a_post_without_the_csrf_token_is_refused(
    service: Service, receiver: Receiver, page: Page
) -> None:
    team = service.workspace()
    set_password(page, service, team)
    [cookie] = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
        "chathooks_session",
        True,
        "Lax",
    )
    form: dict[str, Any] = {"url": receiver.url, "directions": "received", "enabled": "1"}
    for token in (None, "forged"):
        data = form if token is None else {**form, "csrf_token": token}
        answer = page.request.post(service.url + "/webhooks/outbound", form=data, max_redirects=0)
        assert answer.status == 403
        assert "This form has expired" in answer.text()
    assert team.get("/outbound-webhooks").json() == []

    # The same request with the page's token goes through: the token was the only difference.
    token = page.locator("input[name=csrf_token]").first.input_value()
    answer = page.request.post(
        service.url + "/webhooks/outbound", form={**form, "csrf_token": token}, max_redirects=0
    )
    assert answer.status == 303
    assert [w["url"] for w in team.get("/outbound-webhooks").json()] == [receiver.url]


@sqlite_only
def test_rotate_the_api_token_from_the_settings_page(service: Service, page: Page) -> None:
    team = service.workspace()
    set_password(page, service, team)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Workspace").click()
    expect(page).to_have_url(service.url + "/settings/workspace")
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    expect(page.get_by_text("owner@acme.test")).to_be_visible()
    assert team.get("/outbound-webhooks").status_code == 200

    expect(page.get_by_role("button", name="Rotate now")).to_be_hidden()
    page.get_by_text("Rotate the API token").click()
    page.get_by_role("button", name="Rotate now").click()
    token_field = page.get_by_label("New API token")
    expect(token_field).to_have_value(re.compile(r"^chk_"))
    screenshot(page, "workspace-settings")
    new_token = token_field.input_value()

    assert team.get("/outbound-webhooks").status_code == 401
    headers = {"Authorization": f"Bearer {new_token}"}
    assert service.http.get("/api/v1/outbound-webhooks", headers=headers).status_code == 200

    page.reload()
    expect(page.get_by_label("New API token")).to_have_count(0)
    assert service.http.get("/api/v1/outbound-webhooks", headers=headers).status_code == 200


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

    page.get_by_role("navigation", name="Main").get_by_role("link", name="WhatsApp").click()
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
    # The URL is this machine's: Meta could not reach it, and the page says so.
    expect(page.locator("#reachability")).to_contain_text("127.0.0.1 is this machine itself")
    expect(page.locator("#reachability a")).to_have_attribute("href", "/guide/going-live")

    page.get_by_role("button", name="Send sample").click()
    expect(page.locator("#sample-result")).to_contain_text("HTTP 200")
    expect(page.locator('[data-count="stored"]')).to_have_text("1")
    expect(page.locator("#requests .req.stored")).to_have_count(1)
    page.locator("#requests .req.stored summary").click()
    expect(page.locator("#requests .req.stored")).to_contain_text("x-hub-signature-256")
    screenshot(page, "source")

    body = wait_for(receiver.bodies, what="the sample's delivery")[0]
    assert body["message"]["text"] == "this is a text message"
    assert body["chat"]["is_new_chat"] is True
    page.goto(service.url + f"/webhooks/outbound/{hook['id']}")
    expect(page.locator("#activity .act.delivered")).to_contain_text("test user name")

    page.goto(service.url + "/whatsapp/sources")
    expect(page.locator("table.list")).to_contain_text("Main number")
    screenshot(page, "sources")
