"""Pages in a real headless Chromium (Debian's), for the browser tests: the browser, a
page at desktop or phone size, and the steps every journey starts with.

A pytest plugin (``conftest.py`` loads it). ``CHATHOOKS_SCREENSHOTS=1`` makes
``screenshot`` save pages to ``docs/`` as PNG.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import PUBLIC_BASE, Service, Workspace

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "correct horse battery"
DOCS = Path(__file__).resolve().parent.parent / "docs"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
"""Browser tests run on SQLite only: the pages call the same services as the API, which the
rest of the suite runs on both databases; one PostgreSQL run covers the main journey."""
desktop_and_phone = pytest.mark.parametrize("viewport", list(VIEWPORTS), indirect=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def viewport(request: pytest.FixtureRequest) -> str:
    """``desktop`` unless a test asks for both (``desktop_and_phone``)."""
    return str(getattr(request, "param", "desktop"))


RIGHTMOST = """Math.max(...Array.from(document.querySelectorAll("body *"),
  (e) => e.getBoundingClientRect().right + window.scrollX))"""
"""How far right the page's content reaches: on a phone it must fit the screen."""


@pytest.fixture
def page(browser: Browser, viewport: str) -> Iterator[Page]:
    context = browser.new_context(
        accept_downloads=True,
        viewport=VIEWPORTS[viewport],  # type: ignore[arg-type]
        is_mobile=viewport == "phone",
        has_touch=viewport == "phone",
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    try:
        if viewport == "phone" and page.url.startswith("http"):
            right = page.evaluate(RIGHTMOST)
            assert right <= VIEWPORTS["phone"]["width"], f"{page.url} reaches {right} px"
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("CHATHOOKS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def local(service: Service, link: str) -> str:
    """Links in payloads and answers use the public base; the browser uses the served one."""
    assert link.startswith(PUBLIC_BASE), link
    return service.url + link.removeprefix(PUBLIC_BASE)


def set_password(page: Page, service: Service, team: Workspace) -> None:
    """The owner's one-time link, as ``create-workspace`` and the API hand it out."""
    follow_password_link(page, service, team.created["owner_password_link"])


def follow_password_link(page: Page, service: Service, link: str) -> None:
    page.goto(local(service, link))
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat it").fill(PASSWORD)
    page.get_by_role("button", name="Set password and log in").click()
    expect(page).to_have_url(service.url + "/webhooks/outbound")


def log_in(page: Page, service: Service, email: str, next_path: str = "") -> None:
    page.goto(service.url + "/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def webhook_id_from(page: Page) -> int:
    match = re.search(r"/webhooks/outbound/(\d+)$", page.url)
    assert match, page.url
    return int(match.group(1))
