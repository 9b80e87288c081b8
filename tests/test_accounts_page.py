"""WhatsApp > Accounts in a real Chromium: which source feeds each account, renaming and
removing one."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browsing import desktop_and_phone, needs_chromium, screenshot, set_password, sqlite_only
from tests.conftest import Service
from tests.test_accounts import BUSINESS, _waha_text
from tests.test_sources import Sender

pytestmark = [needs_chromium, sqlite_only, desktop_and_phone]


def test_accounts_show_their_source_and_are_renamed_and_removed(
    service: Service, page: Page, viewport: str
) -> None:
    team = service.workspace()
    team.account()
    sender = Sender(team, "waha")
    _waha_text(sender, "false_79111111111@c.us_P1")
    set_password(page, service, team)
    page.goto(service.url + "/whatsapp/accounts")

    fed = page.locator("tr", has_text=BUSINESS)
    expect(fed.get_by_role("link", name="waha line")).to_have_attribute(
        "href", f"/whatsapp/sources/{sender.source['id']}"
    )
    expect(page.locator("tr", has_text="+972500000000")).to_contain_text("connected by hand")
    if viewport == "desktop":
        screenshot(page, "accounts")

    fed.locator("summary", has_text="Rename").click()
    fed.get_by_label(f"Name of {BUSINESS}").fill("Shop line")
    fed.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status")).to_have_text(f"{BUSINESS} is now named Shop line.")
    renamed = page.locator("tr", has_text="Shop line")
    expect(renamed).to_contain_text(BUSINESS)

    renamed.locator("summary", has_text="Remove").click()
    renamed.get_by_role("button", name=f"Remove {BUSINESS}").click()
    expect(page.get_by_role("status")).to_have_text(
        f"{BUSINESS} is removed. Its chats and delivered messages stay."
    )
    expect(page.locator("tr", has_text=BUSINESS)).to_have_count(0)
    assert [a["phone"] for a in team.get("/whatsapp-accounts").json()] == ["+972500000000"]
