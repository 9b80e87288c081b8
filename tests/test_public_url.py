"""Every URL chathooks shows starts where people and senders reach it, and a source whose
URL a sender elsewhere cannot reach says so, on its page and in the API, with the guide."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from chathooks.public_url import reachability_warning
from tests.conftest import ADMIN_TOKEN, Service
from tests.pages import browser, set_password
from tests.test_cli import _chathooks, _create_workspace
from tests.test_listen import Running

ROOT = Path(__file__).resolve().parent.parent
GUIDE = "docs/going-live.md"


def _serve(database_url: str, cwd: Path) -> tuple[Running, str]:
    """``chathooks serve --port 0`` as an operator starts it: no public base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATHOOKS_")}
    env.update(
        CHATHOOKS_DATABASE_URL=database_url,
        CHATHOOKS_ADMIN_TOKEN=ADMIN_TOKEN,
        PYTHONUNBUFFERED="1",
    )
    serve = Running([sys.executable, "-m", "chathooks", "serve", "--port", "0"], env, cwd)
    serve.wait_for_output("is running on")
    found = re.search(r"is running on (http://127\.0\.0\.1:\d+)", serve.output)
    assert found, serve.output
    return serve, found.group(1)


def test_links_name_the_port_serve_listens_on(database_url: str, tmp_path: Path) -> None:
    """Without CHATHOOKS_PUBLIC_BASE_URL: create-workspace, run beside ``serve --port 0``,
    prints a set-password link that opens, and a source's URL names that port too, with
    the warning that only this machine reaches it."""
    serve, url = _serve(database_url, tmp_path)
    try:
        done = _create_workspace(database_url, "olive@acme.test")
        assert done.returncode == 0, done.stderr
        link = done.stdout.split("set-password link: ")[1].strip()
        assert link.startswith(f"{url}/set-password/")
        assert httpx.get(link, timeout=30).status_code == 200
        token = done.stdout.split("API token: ")[1].split()[0]
        answer = httpx.post(
            f"{url}/api/v1/sources",
            headers={"Authorization": f"Bearer {token}"},
            json={"kind": "waha", "name": "Main number"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        source = answer.json()
        assert source["url"].startswith(f"{url}/in/")
        warning = source["reachability_warning"]
        assert "127.0.0.1 is this machine itself" in warning
        assert "plain http" in warning
        assert GUIDE in warning
    finally:
        serve.stop()


def test_a_public_base_url_wins_over_where_serve_listened(
    database_url: str, tmp_path: Path
) -> None:
    serve, _ = _serve(database_url, tmp_path)
    serve.stop()
    done = _chathooks(
        database_url,
        "create-workspace",
        "--name",
        "Acme",
        "--owner-name",
        "Olive",
        "--owner-email",
        "olive@acme.test",
        env={"CHATHOOKS_PUBLIC_BASE_URL": "https://chathooks.example.com/"},
    )
    assert done.returncode == 0, done.stderr
    assert "link: https://chathooks.example.com/set-password/" in done.stdout


@pytest.mark.parametrize(
    ("base", "says"),
    [
        ("http://chathooks.test", ["plain http"]),
        ("https://localhost:8443", ["localhost is this machine itself"]),
        ("https://10.1.2.3", ["10.1.2.3 is a private address"]),
        ("https://192.168.1.20:8000", ["192.168.1.20 is a private address"]),
        ("https://[::1]", ["::1 is this machine itself (loopback)"]),
        ("https://chathooks", ["chathooks is a name only this network knows"]),
        ("http://172.16.0.9", ["172.16.0.9 is a private address", "plain http"]),
    ],
)
def test_urls_senders_elsewhere_cannot_reach_are_named_with_the_reason(
    base: str, says: list[str]
) -> None:
    warning = reachability_warning(f"{base}/in/Xk3")
    assert warning is not None
    for text in says:
        assert text in warning
    assert GUIDE in warning


def test_a_public_https_address_has_no_warning(start_service: Callable[..., Service]) -> None:
    service = start_service(public_base_url="https://chathooks.example.com")
    team = service.workspace()
    created = team.post(
        "/sources",
        {"kind": "whatsapp_cloud", "name": "Main", "secrets": {"app_secret": "s" * 32}},
    )
    assert created.status_code == 201, created.text
    assert created.json()["url"].startswith("https://chathooks.example.com/in/")
    assert created.json()["reachability_warning"] is None
    assert [s["reachability_warning"] for s in team.get("/sources").json()] == [None]


def test_the_source_page_warns_and_links_to_the_guide(service: Service) -> None:
    """(A page under an https base URL has secure cookies, which plain http cannot test;
    the API test above shows such a URL has no warning.)"""
    team = service.workspace()
    source = team.post("/sources", {"kind": "waha", "name": "Main number"}).json()
    with browser(service) as client:
        set_password(service, team, client)
        page = client.get(f"/whatsapp/sources/{source['id']}").text
    warning = re.search(r'id="reachability">(.*?)</p>', page, re.DOTALL)
    assert warning, page
    assert "plain http" in warning.group(1)
    guide_link = re.search(r'<a href="([^"]+)">Open the guide</a>', warning.group(1))
    assert guide_link
    guide = service.http.get(guide_link.group(1))
    assert guide.status_code == 200
    assert guide.headers["content-type"].startswith("text/plain")
    assert guide.text == (ROOT / GUIDE).read_text()
