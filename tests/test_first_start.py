"""The first start, as a newcomer meets it: ``serve`` and the login page lead to the setup
page, which takes the admin token and ends logged in, with the workspace's API token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browsing import PASSWORD, desktop_and_phone, log_in, needs_chromium, sqlite_only
from tests.conftest import ADMIN_TOKEN, Service


def _fill_setup(page: Page, token: str) -> None:
    page.get_by_label("Admin token").fill(token)
    page.get_by_label("Your team's name").fill("Acme")
    page.get_by_label("Your full name").fill("Olive Owner")
    page.get_by_label("Your e-mail").fill("olive@acme.test")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create workspace and log in").click()


@needs_chromium
@sqlite_only
@desktop_and_phone
def test_the_login_page_leads_to_setup_which_ends_logged_in(
    service: Service, page: Page, viewport: str
) -> None:
    page.goto(service.url + "/")
    expect(page).to_have_url(service.url + "/login?next=/webhooks/outbound")
    expect(page.locator("#first-start")).to_contain_text("There is no workspace yet")
    page.locator("#first-start").get_by_role("link", name="Set up chathooks").last.click()
    expect(page).to_have_url(service.url + "/setup")

    _fill_setup(page, "not-the-token")
    expect(page.locator("#admin_token-error")).to_contain_text("This is not the admin token")
    expect(page.get_by_label("Your team's name")).to_have_value("Acme")
    assert service.http.get("/setup").status_code == 200, "nothing was created"

    _fill_setup(page, ADMIN_TOKEN)
    expect(page).to_have_url(service.url + "/settings/workspace")
    expect(page.get_by_role("status").first).to_have_text(
        "Welcome to chathooks: Acme is ready, and you are logged in."
    )
    token = page.get_by_label("New API token").input_value()
    answer = service.http.get(
        "/api/v1/outbound-webhooks", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, "the API token shown works"

    # Once there is a workspace the setup page is gone, and the login page is plain.
    assert service.http.get("/setup", follow_redirects=False).headers["location"] == "/login"
    page.context.clear_cookies()
    page.goto(service.url + "/login")
    expect(page.locator("#first-start")).to_have_count(0)
    log_in(page, service, "olive@acme.test")
    expect(page).to_have_url(service.url + "/webhooks/outbound")


@needs_chromium
@sqlite_only
def test_setup_refuses_once_a_workspace_exists(service: Service, page: Page) -> None:
    service.workspace()
    page.goto(service.url + "/setup")
    expect(page).to_have_url(service.url + "/login")
    page.goto(service.url + "/login")
    expect(page.locator("#first-start")).to_have_count(0)


def test_serve_names_the_setup_page_on_the_first_start_only(tmp_path: Path) -> None:
    env = {**os.environ, "CHATHOOKS_DATABASE_URL": "sqlite:///./fresh.db", "PYTHONUNBUFFERED": "1"}
    env.pop("CHATHOOKS_ADMIN_TOKEN", None)
    command = [sys.executable, "-m", "chathooks", "serve", "--port", "0"]

    def banner() -> str:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        with process.stdout:
            lines = [process.stdout.readline() for _ in range(4)]
            process.terminate()
            process.wait(20)
            return "".join(lines) + process.stdout.read()

    first = banner()
    url = first.split("is running on ")[1].split()[0]
    assert f"No workspace yet. Open {url}/setup and paste the admin token" in first
    create = [sys.executable, "-m", "chathooks", "create-workspace", "--name", "Acme"]
    create += ["--owner-name", "Olive", "--owner-email", "olive@acme.test"]
    subprocess.run(create, env=env, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    assert "No workspace yet" not in banner()
