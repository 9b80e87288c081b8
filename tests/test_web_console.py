"""The operator's console in a real Chromium, at desktop and phone sizes: a failing webhook
in plain sight and retried, a request opened from the activity, secret rotation with its
overlap, filters and every other setting, teammates, WhatsApp accounts, a chat's
responsible, replay.

Every assertion is about what a user sees or gets: text on the page, the request the
receiver got, what the API then answers.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

from playwright.sync_api import Browser, Locator, Page, expect

from tests.browsing import (
    desktop_and_phone,
    follow_password_link,
    needs_chromium,
    screenshot,
    set_password,
    sqlite_only,
)
from tests.conftest import Service, event, wait_for
from tests.receiver import Receiver, Reply
from tests.test_rotation import a_day_back, check_overlap

pytestmark = [needs_chromium, sqlite_only, desktop_and_phone]


def _hook_page(page: Page, service: Service, hook_id: int) -> None:
    page.goto(service.url + f"/webhooks/outbound/{hook_id}")


def _flash(page: Page) -> Locator:
    return page.get_by_role("status")


def _cut_with_ellipsis(link: Locator) -> None:
    """Shown on one line and cut, instead of wrapping a few characters per line."""
    looks = link.evaluate(
        "el => ({overflow: getComputedStyle(el).textOverflow, cut: el.scrollWidth > el.clientWidth,"
        " lines: el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)})"
    )
    assert looks["overflow"] == "ellipsis" and looks["cut"], looks
    assert looks["lines"] < 1.5, looks


def test_a_failing_webhook_is_plain_to_see_and_retry_now_delivers(
    service: Service, receiver: Receiver, page: Page, viewport: str
) -> None:
    team = service.workspace()
    team.account()
    team.webhook(
        receiver.url.replace("/hook", "/healthy"),
        name="Warehouse",
        filters={"directions": ["sent"]},
    )
    long_url = receiver.url + "/" + "very-long-path-segment/" * 8 + "whatsapp?token=" + "x" * 40
    hook = team.webhook(long_url)
    set_password(page, service, team)
    _hook_page(page, service, hook["id"])
    expect(page.locator("#title-status .badge")).to_have_text("Enabled")

    # It starts failing while the page is open: the badge, the status card and the activity
    # change together, without a reload.
    receiver.default = Reply(500, body="down")
    team.post("/messages", event("m1", text="hello"))
    expect(page.locator("#activity .act.failed")).to_have_count(1)
    expect(page.locator("#title-status .badge")).to_have_text("Failing")
    status = page.locator("#status")
    expect(status).to_contain_text("Failing: 1 failed attempt (1 request) since the last success.")
    expect(status).to_contain_text("Last error: HTTP 500.")
    expect(status).to_contain_text(re.compile(r"Next try at\s+\S+ \S+ UTC \(in under a minute\)"))
    expect(status).to_contain_text("After 10 more failed attempts it is disabled automatically")
    expect(status.locator("dl.facts")).to_contain_text("Waiting1 delivery")

    # While nothing changes the refresh answers 204 and leaves the page alone: the keyboard
    # focus stays where it was.
    retry = page.get_by_role("button", name="Retry now")
    retry.focus()
    with page.expect_response(lambda r: "/activity?seen=" in r.url and r.status == 204):
        pass
    expect(retry).to_be_focused()

    # The list says it too: which one fails, since when, what waits.
    page.goto(service.url + "/webhooks/outbound")
    row = page.locator("tr.failing")
    expect(row.locator(".badge")).to_have_text("Failing")
    expect(row).to_contain_text("1 failed attempt (1 request) · next try in under a minute")
    expect(row.locator("[data-label='Last failure']")).to_contain_text("just now")
    expect(row.locator("[data-label='Last success']")).to_contain_text("never")
    expect(row.locator("[data-label='Waiting']")).to_contain_text("1 delivery")
    other = page.locator("tr.enabled")
    expect(other).to_contain_text("Warehouse")
    expect(other).to_contain_text("No aggregation · sent only")
    expect(other.locator("[data-label='Waiting']")).to_contain_text("0 deliveries")
    _cut_with_ellipsis(row.locator("a.url"))
    screenshot(page, "webhooks" if viewport == "desktop" else "webhooks-mobile")

    # Fixed receiver, Retry now: delivered at once, although the clock has not moved.
    page.get_by_role("link", name=long_url).click()
    _cut_with_ellipsis(page.locator(".webhook-title .url"))
    receiver.default = Reply(200)
    page.get_by_role("button", name="Retry now").click()
    expect(_flash(page)).to_have_text("Trying again now.")
    expect(page.locator("#activity .act.delivered")).to_have_count(1)
    expect(page.locator("#activity .act.retried")).to_have_count(1)
    expect(page.locator("#title-status .badge")).to_have_text("Enabled")
    expect(status).not_to_contain_text("Failing")
    expect(status.locator("dl.facts")).to_contain_text("Waiting0 deliveries")
    assert [r.json["message"]["text"] for r in receiver.requests] == ["hello", "hello"]
    assert "/healthy" not in {r.path for r in receiver.requests}, "its filters left it out"


def test_an_activity_row_opens_its_request_and_response_in_the_page(
    service: Service, receiver: Receiver, page: Page, viewport: str
) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url, name="CRM")
    receiver.replies.append(
        Reply(500, {"X-Request-Id": "abc-123"}, body='{"error": "database is down"}')
    )
    team.post("/messages", event("m1", text="hello there"))
    wait_for(lambda: receiver.requests, what="the failed request")
    set_password(page, service, team)
    _hook_page(page, service, hook["id"])

    failed = page.locator("#activity .act.failed")
    failed.get_by_role("link", name=re.compile("^Failed at .*: request and response$")).click()
    shown = page.locator("#request .exchange")
    expect(shown.get_by_role("heading", level=3)).to_have_text("Request Failed")
    expect(shown.get_by_role("heading", level=3)).to_be_focused()
    expect(shown).to_contain_text("HTTP 500")
    answer = shown.get_by_label("Answer")
    expect(
        answer.get_by_role("row", name=re.compile("^X-Request-Id abc-123$", re.I))
    ).to_be_visible()
    expect(answer.locator(".response-body")).to_have_text('{\n  "error": "database is down"\n}')
    sent = shown.get_by_label("Sent")
    expect(sent).to_contain_text("POST " + receiver.url)
    expect(sent.get_by_role("row", name=re.compile("^webhook-signature v1,"))).to_be_visible()
    body = json.loads(sent.locator(".request-body").inner_text())
    assert body == receiver.requests[0].json
    assert page.url == service.url + f"/webhooks/outbound/{hook['id']}", "nothing downloaded"
    if viewport == "desktop":
        screenshot(page, "webhook")
    page.get_by_role("button", name="Close").click()
    expect(page.locator("#request")).to_be_empty()

    # The retry succeeds; its row opens its own request. Without JavaScript the link is a page.
    service.clock.advance(13)
    delivered = page.locator("#activity .act.delivered")
    expect(delivered).to_have_count(1)
    link = delivered.get_by_role("link", name=re.compile("request and response$"))
    link.click()
    expect(shown.get_by_role("heading", level=3)).to_have_text("Request Success")
    expect(shown.locator(".response-body")).to_have_text("ok")
    page.goto(service.url + str(link.get_attribute("href")))
    expect(page.get_by_role("heading", name="Request Success")).to_be_visible()
    expect(page.locator(".crumbs")).to_contain_text("CRM")


def test_rotating_asks_first_and_the_old_secret_signs_for_24_hours_more(
    service: Service, receiver: Receiver, page: Page
) -> None:
    rotated_at = a_day_back(service)
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    old = hook["secret"]
    set_password(page, service, team)
    _hook_page(page, service, hook["id"])

    secret = page.get_by_label("Signing secret")
    expect(secret).to_have_attribute("type", "password")
    page.get_by_role("button", name="Reveal").click()
    expect(secret).to_have_value(old)
    expect(secret).to_have_attribute("type", "text")
    page.get_by_role("button", name="Hide").click()
    expect(secret).to_have_attribute("type", "password")

    rotate = page.get_by_role("button", name="Rotate now")
    expect(rotate).to_be_hidden()
    page.get_by_text("Rotate secret…").click()
    expect(page.locator("details.confirm")).to_contain_text("For 24 hours the current one")
    rotate.click()
    expect(_flash(page)).to_contain_text("For 24 hours every request is signed with both")
    new = team.get(f"/outbound-webhooks/{hook['id']}").json()["secret"]
    assert new != old
    expect(secret).to_have_value(new)
    until = rotated_at + timedelta(hours=24)
    expect(page.locator("#secret .overlap")).to_contain_text(
        f"The previous secret also signs every request until {until:%Y-%m-%d %H:%M:%S} UTC"
    )

    # A receiver still verifying with the old secret accepts until the overlap ends.
    check_overlap(service, team, receiver, old=old, new=new, until=until)
    page.reload()
    expect(page.locator("#secret .overlap")).to_have_count(0)


def test_name_filters_rate_limit_and_the_enabled_switch_are_on_the_page(
    service: Service, receiver: Receiver, page: Page
) -> None:
    team = service.workspace()
    team.account("+972500000000")
    team.account("+972500000001", "Bea Sales", "bea@acme.test")
    hook = team.webhook(receiver.url)
    path = f"/outbound-webhooks/{hook['id']}"
    set_password(page, service, team)
    _hook_page(page, service, hook["id"])
    settings = page.locator("#settings")

    settings.get_by_label("Name").fill("CRM notes")
    settings.get_by_label("Sent").uncheck()
    settings.get_by_label("Group chats").uncheck()
    settings.get_by_label("+972500000000").check()
    settings.get_by_label("Max requests per second").fill("5")
    settings.get_by_role("button", name="Save").click()
    expect(_flash(page)).to_have_text("Settings saved.")
    saved = team.get(path).json()
    assert saved["name"] == "CRM notes"
    assert saved["filters"] == {
        "directions": ["received"],
        "include_groups": False,
        "account_phones": ["+972500000000"],
    }
    assert saved["max_requests_per_second"] == 5.0
    expect(page.locator(".webhook-title")).to_contain_text("CRM notes")
    expect(page.locator(".target")).to_have_text(receiver.url)

    # Bad values are refused field by field, and nothing changes.
    settings.get_by_label("Received").uncheck()
    settings.get_by_label("Max requests per second").fill("0")
    settings.get_by_role("button", name="Save").click()
    expect(page.locator("#directions-error")).to_have_text("Tick at least one: received or sent.")
    expect(page.locator("#max_requests_per_second-error")).to_contain_text("above 0")
    expect(settings.get_by_label("Max requests per second")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert team.get(path).json() == saved

    # Filtered messages are not queued: the sent one never goes out, the received one does.
    team.post("/messages", event("out", direction="sent"))
    team.post("/messages", event("in", direction="received"))
    wait_for(lambda: receiver.requests, what="the received message")
    assert [r.json["message"]["message_id"] for r in receiver.requests] == ["in"]

    # The Enabled switch: a real switch, for the keyboard, a screen reader and Playwright.
    _hook_page(page, service, hook["id"])
    switch = settings.get_by_role("switch", name="Enabled")
    expect(switch).to_be_checked()
    expect(switch).to_have_accessible_description("Applies when you press “Save”.")
    switch.uncheck()
    settings.get_by_role("button", name="Save").click()
    expect(page.locator("#title-status .badge")).to_have_text("Disabled")
    assert team.get(path).json()["status"] == "disabled"
    switch.focus()
    page.keyboard.press("Space")
    expect(switch).to_be_checked()
    settings.get_by_role("button", name="Save").click()
    expect(page.locator("#title-status .badge")).to_have_text("Enabled")
    assert team.get(path).json()["status"] == "enabled"


def test_replay_sends_a_time_range_again(service: Service, receiver: Receiver, page: Page) -> None:
    team = service.workspace()
    team.account()
    hook = team.webhook(receiver.url)
    team.post("/messages", event("m1", text="once more"))
    wait_for(lambda: receiver.requests, what="the first delivery")
    set_password(page, service, team)
    _hook_page(page, service, hook["id"])
    now = service.clock.now()
    replay = page.locator("#replay")

    replay.get_by_label("From (UTC)").fill(f"{now:%Y-%m-%dT%H:%M}")
    replay.get_by_label("To (UTC, not included)").fill(f"{now - timedelta(hours=1):%Y-%m-%dT%H:%M}")
    replay.get_by_role("button", name="Send again").click()
    expect(page.locator("#until-error")).to_have_text("Must be later than since.")
    replay.get_by_label("From (UTC)").fill("")
    replay.get_by_role("button", name="Send again").click()
    expect(page.locator("#since-error")).to_have_text("Enter a date and time (UTC).")
    assert len(receiver.requests) == 1

    replay.get_by_label("From (UTC)").fill(f"{now - timedelta(minutes=5):%Y-%m-%dT%H:%M}")
    replay.get_by_label("To (UTC, not included)").fill(
        f"{now + timedelta(minutes=5):%Y-%m-%dT%H:%M}"
    )
    replay.get_by_role("button", name="Send again").click()
    expect(_flash(page)).to_have_text("Queued again: 1 message (1 delivery).")
    wait_for(lambda: len(receiver.requests) == 2, what="the replay")
    assert receiver.requests[1].json["message"]["text"] == "once more"


def test_teammates_are_invited_with_a_link_and_removed(
    service: Service, page: Page, browser: Browser, viewport: str
) -> None:
    team = service.workspace()
    set_password(page, service, team)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(service.url + "/settings/teammates")
    owner_row = page.locator("tr", has_text="owner@acme.test")
    expect(owner_row.locator(".badge")).to_have_text("Owner")
    expect(owner_row.locator("summary")).to_have_count(0)

    invite = page.locator("#invite")
    invite.get_by_label("Full name").fill("Carl New")
    invite.get_by_label("E-mail").fill("not an address")
    invite.get_by_role("button", name="Invite").click()
    expect(page.locator("#email-error")).to_have_text("Enter an e-mail address.")
    invite.get_by_label("E-mail").fill("carl@acme.test")
    invite.get_by_role("button", name="Invite").click()
    expect(_flash(page)).to_have_text("Carl New is invited. Send them the link below.")
    link = page.get_by_label("Set-password link for Carl New").input_value()
    expect(page.locator("tr", has_text="carl@acme.test")).to_contain_text("Invited")
    if viewport == "desktop":
        screenshot(page, "teammates")

    # Carl sets a password from the link, in a browser of his own.
    carls = browser.new_context(viewport=page.viewport_size)
    carl = carls.new_page()
    follow_password_link(carl, service, link)
    expect(carl.locator(".who .person")).to_have_count(1)
    team.account("+972500000009", "Carl New", "carl@acme.test")
    chat_id = team.post("/messages", event("c1", account="+972500000009")).json()["chat_id"]
    team.patch(f"/chats/{chat_id}", {"responsible_email": "carl@acme.test"})

    page.reload()
    row = page.locator("tr", has_text="carl@acme.test")
    expect(row).to_contain_text("Active")
    row.locator("summary", has_text="Remove").click()
    expect(row.locator("form")).to_contain_text(
        "Their 1 WhatsApp account passes to Olive Owner (the owner) and keeps forwarding."
    )
    row.get_by_role("button", name="Remove Carl New").click()
    expect(_flash(page)).to_have_text(
        "Carl New is removed and can no longer log in. Their 1 WhatsApp account now "
        "belongs to Olive Owner. 1 chat has no responsible now."
    )
    expect(page.locator("tr", has_text="carl@acme.test")).to_have_count(0)
    carl.goto(service.url + "/webhooks/outbound")
    expect(carl).to_have_url(re.compile(r"/login\?next="))
    carls.close()


def test_whatsapp_accounts_are_listed_and_connected(service: Service, page: Page) -> None:
    team = service.workspace()
    set_password(page, service, team)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="WhatsApp").click()
    page.get_by_role("navigation", name="WhatsApp").get_by_role("link", name="Accounts").click()
    expect(page).to_have_url(service.url + "/whatsapp/accounts")
    expect(page.get_by_text("No WhatsApp account yet")).to_be_visible()
    form = page.locator("#connect")
    form.get_by_label("Phone").fill("+972500000000")
    form.get_by_label("Owner's full name").fill("Amnon Haha")
    form.get_by_label("Owner's e-mail").fill("amnon@acme.test")
    form.get_by_role("button", name="Connect account").click()
    expect(_flash(page)).to_have_text("+972500000000 is connected. Its messages can now come in.")
    expect(page.locator("table.list")).to_contain_text("Amnon Haha")
    form.get_by_label("Phone").fill("+972500000000")
    form.get_by_label("Owner's full name").fill("Someone Else")
    form.get_by_label("Owner's e-mail").fill("else@acme.test")
    form.get_by_role("button", name="Connect account").click()
    expect(page.locator("#phone-error")).to_have_text(
        "A WhatsApp account with phone +972500000000 exists already."
    )
    assert [a["email"] for a in team.get("/whatsapp-accounts").json()] == ["amnon@acme.test"]
    assert "else@acme.test" not in [t["email"] for t in team.get("/teammates").json()]


def test_a_chat_gets_its_responsible_teammate_on_its_page(
    service: Service, receiver: Receiver, page: Page
) -> None:
    team = service.workspace()
    team.account()
    team.webhook(receiver.url)
    chat_id = team.post("/messages", event("m1")).json()["chat_id"]
    set_password(page, service, team)
    page.goto(service.url + f"/chat/{chat_id}/messages/")
    select = page.get_by_label("Responsible teammate")
    expect(select).to_have_value("")
    select.select_option(label="Amnon Haha (amnon@acme.test)")
    page.get_by_role("button", name="Save").click()
    expect(_flash(page)).to_have_text("Responsible set to amnon@acme.test.")
    expect(select).to_have_value("amnon@acme.test")
    team.post("/messages", event("m2"))
    wait_for(lambda: len(receiver.requests) == 2, what="the next message")
    assert receiver.requests[1].json["chat"]["responsible_name"] == "Amnon Haha"
    select.select_option(label="Nobody")
    page.get_by_role("button", name="Save").click()
    expect(_flash(page)).to_have_text("This chat has no responsible now.")
    assert team.get(f"/chats/{chat_id}").json()["responsible_email"] == ""
