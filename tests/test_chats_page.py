"""The Chats page in a real Chromium, at desktop and phone sizes: chats by their latest
message, a search by name or phone, pages of 50, and each chat's row opening its page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browsing import desktop_and_phone, needs_chromium, set_password, sqlite_only
from tests.conftest import Service, Workspace, event

pytestmark = [needs_chromium, sqlite_only, desktop_and_phone]


def test_chats_are_listed_newest_first_found_paged_and_opened(
    service: Service, page: Page, viewport: str
) -> None:
    team = service.workspace()
    team.account()
    events = [
        event(
            f"m{number}",
            chat=f"9725400{number:05d}@c.us",
            chat_name=f"Contact {number:02d}",
            phone=f"+9725400{number:05d}",
            timestamp=f"2024-05-01T10:{number:02d}:00Z",
        )
        for number in range(1, 51)
    ]
    events.append(
        event("dana", chat_name="Dana Levi", phone="+972549999999", chat="972549999999@c.us")
    )
    events[-1]["timestamp"] = "2024-05-02T09:00:00Z"
    events.append(event("group", chat="120363@g.us", chat_name="Acme team", is_group=True))
    events[-1]["timestamp"] = "2024-04-30T09:00:00Z"
    assert team.post("/messages/batch", {"messages": events}).status_code == 202
    set_password(page, service, team)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chats").click()
    expect(page).to_have_url(service.url + "/chats")
    rows = page.locator("table.chats tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("Dana Levi")
    expect(rows.first).to_contain_text("+972549999999")
    expect(rows.nth(1)).to_contain_text("Contact 50")
    expect(page.locator("table.chats thead")).to_be_visible(visible=viewport == "desktop")
    if viewport == "phone":  # a card per chat, each value named
        label = rows.first.locator("td[data-label='Responsible']").evaluate(
            "el => getComputedStyle(el, '::before').content"
        )
        assert label == '"Responsible"'

    page.get_by_role("link", name="Older chats").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Contact 01")
    expect(rows.nth(1)).to_contain_text("Acme team")
    expect(rows.nth(1)).to_contain_text("Group")
    expect(page.get_by_role("link", name="Older chats")).to_have_count(0)
    page.get_by_role("link", name="Latest chats").click()
    expect(rows.first).to_contain_text("Dana Levi")

    search = page.get_by_label("Search by name or phone")
    search.fill("+972 54-999")
    search.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Dana Levi")
    search.fill("nobody here")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No chat has “nobody here” in its name or phone.")).to_be_visible()
    search.fill("contact 1")
    search.press("Enter")
    expect(rows).to_have_count(10)

    rows.first.get_by_role("link", name="Contact 19").click()
    expect(page).to_have_url(f"{service.url}/chat/{_chat_id(team, 'Contact 19')}/messages/")
    expect(page.get_by_role("heading", name="Contact 19")).to_be_visible()
    menu = page.get_by_role("navigation", name="Main")
    expect(menu.get_by_role("link", name="Chats")).to_have_attribute("aria-current", "page")


def _chat_id(team: Workspace, name: str) -> str:
    found = team.get("/chats", params={"q": name}).json()["chats"]
    return str(found[0]["chat_id"])
