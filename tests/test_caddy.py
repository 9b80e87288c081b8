"""deploy/Caddyfile in front of a real ``chathooks serve``: a real Caddy (Debian's package),
as docs/going-live.md sets it up, with only what cannot be the same here changed: the host
name, Caddy's own certificate authority instead of Let's Encrypt (``local_certs``, the
global ``tls internal``) and free local ports.

Every client connects from an address of its own on loopback, so chathooks' log shows whose
address it saw: 127.0.0.1 is this machine (Caddy, and the operator the Caddyfile lets in by
default), 127.0.0.2 a client that reaches chathooks directly, 127.0.0.3 anyone on the
internet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, wait_for
from tests.test_listen import Running, free_port
from tests.test_sources import fixture

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "chathooks.example.com"
OPERATOR, DIRECT, PUBLIC = "127.0.0.1", "127.0.0.2", "127.0.0.3"
SPOOFED = "203.0.113.7"


class Site:
    """chathooks behind Caddy; ``request(address, …)`` connects from that address."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.chathooks_port, self.https_port, self.http_port = free_port(), free_port(), free_port()
        self.public_base = f"https://{DOMAIN}:{self.https_port}"
        self.root_ca = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        self.running: list[Running] = []

    def start(self) -> None:
        tmp_path = self.tmp_path
        self.chathooks = self._serve()
        (tmp_path / "Caddyfile").write_text(
            "{\n\tlocal_certs\n\tskip_install_trust\n\tadmin off\n"
            f"\thttp_port {self.http_port}\n\thttps_port {self.https_port}\n}}\n\n"
            f"import {ROOT / 'deploy' / 'Caddyfile'}\n"
        )
        self.caddy = Running(
            ["caddy", "run", "--adapter", "caddyfile", "--config", str(tmp_path / "Caddyfile")],
            env={
                "PATH": os.environ["PATH"],
                "HOME": str(tmp_path),
                "XDG_DATA_HOME": str(tmp_path / "data"),
                "XDG_CONFIG_HOME": str(tmp_path / "config"),
                "CHATHOOKS_DOMAIN": DOMAIN,
                "CHATHOOKS_UPSTREAM": f"127.0.0.1:{self.chathooks_port}",
            },
        )
        self.running.append(self.caddy)
        wait_for(self.root_ca.exists, what=f"Caddy's root certificate: {self.caddy.output}")
        wait_for(self._answers, what=f"Caddy to answer: {self.caddy.output}")

    def _serve(self) -> Running:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATHOOKS_")}
        env.update(
            CHATHOOKS_DATABASE_URL=f"sqlite:///{self.tmp_path / 'chathooks.db'}",
            CHATHOOKS_PORT=str(self.chathooks_port),
            CHATHOOKS_PUBLIC_BASE_URL=self.public_base,
            CHATHOOKS_TRUSTED_PROXIES="127.0.0.1",
            CHATHOOKS_ADMIN_TOKEN=ADMIN_TOKEN,
            CHATHOOKS_LOG_FORMAT="json",
            CHATHOOKS_OUTBOX_DIR=str(self.tmp_path / "outbox"),
            PYTHONUNBUFFERED="1",
        )
        command = [sys.executable, "-m", "chathooks", "serve", "--log-level", "info"]
        serve = Running(command, env, cwd=self.tmp_path)
        self.running.append(serve)
        serve.wait_for_output("is running on")
        return serve

    def _answers(self) -> bool:
        try:
            return self.request(OPERATOR, "GET", "/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    def request(self, address: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Through Caddy, as to https://chathooks.example.com:PORT (connecting to 127.0.0.1,
        with that name in the Host header and the TLS handshake, and Caddy's CA trusted)."""
        tls = ssl.create_default_context(cafile=str(self.root_ca))
        transport = httpx.HTTPTransport(verify=tls, local_address=address)
        with httpx.Client(transport=transport, timeout=30) as client:
            headers = {"Host": f"{DOMAIN}:{self.https_port}", **kwargs.pop("headers", {})}
            return client.request(
                method,
                f"https://127.0.0.1:{self.https_port}{path}",
                headers=headers,
                extensions={"sni_hostname": DOMAIN},
                **kwargs,
            )

    def direct(self, address: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """To chathooks itself, bypassing Caddy."""
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(transport=transport, timeout=30) as client:
            url = f"http://127.0.0.1:{self.chathooks_port}{path}"
            return client.request(method, url, **kwargs)

    def seen_addresses(self, path: str) -> list[str]:
        """The client addresses of chathooks' access-log lines for ``path`` (JSON logs)."""
        seen = []
        for line in self.chathooks.lines:
            if line.startswith("{") and '"client_addr"' in line:
                entry = json.loads(line)
                if entry["path"] == path:
                    seen.append(entry["client_addr"].rsplit(":", 1)[0])
        return seen

    def stop(self) -> None:
        for process in reversed(self.running):
            process.stop()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    if shutil.which("caddy") is None:
        pytest.fail("caddy is not installed (Debian: apt-get install caddy; ./scripts/test does)")
    running = Site(tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def _waha_source(site: Site) -> tuple[dict[str, Any], dict[str, str]]:
    """A workspace and a WAHA source, made by the operator through the public site."""
    created = site.request(
        OPERATOR,
        "POST",
        "/api/v1/workspaces",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        json={"name": "Acme", "owner_name": "Olive Owner", "owner_email": "olive@acme.test"},
    )
    assert created.status_code == 201, created.text
    team = {"Authorization": f"Bearer {created.json()['api_token']}"}
    source = site.request(
        OPERATOR, "POST", "/api/v1/sources", headers=team, json={"kind": "waha", "name": "Main"}
    )
    assert source.status_code == 201, source.text
    return source.json(), team


def _signed(source: dict[str, Any], body: bytes) -> dict[str, str]:
    key = source["secrets"]["hmac_key"].encode()
    return {
        "Content-Type": "application/json",
        "X-Webhook-Hmac": hmac.new(key, body, hashlib.sha512).hexdigest(),
        "X-Webhook-Hmac-Algorithm": "sha512",
    }


def test_a_signed_request_reaches_chathooks_over_https_and_only_in_is_public(
    site: Site,
) -> None:
    source, team = _waha_source(site)
    assert source["url"].startswith(f"{site.public_base}/in/")
    assert source["reachability_warning"] is None
    path = urlsplit(source["url"]).path
    body = fixture("waha", "text_received")

    answer = site.request(PUBLIC, "POST", path, content=body, headers=_signed(source, body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 1
    stored = site.request(OPERATOR, "GET", f"/api/v1/sources/{source['id']}", headers=team)
    assert stored.json()["stored"] == 1
    log = site.request(OPERATOR, "GET", f"/api/v1/sources/{source['id']}/requests", headers=team)
    assert [r["outcome"] for r in log.json()] == ["stored"]

    # A forged request passes Caddy too, and chathooks refuses it.
    forged = site.request(PUBLIC, "POST", path, content=body, headers=_signed(source, b"{}"))
    assert forged.status_code == 401

    # Plain http is sent to https (Caddy's automatic HTTPS).
    plain = httpx.post(
        f"http://127.0.0.1:{site.http_port}{path}", headers={"Host": DOMAIN}, content=body
    )
    assert plain.status_code == 308
    assert plain.headers["location"] == f"https://{DOMAIN}{path}"

    for denied in ("/", "/login", "/webhooks/outbound", "/docs", "/metrics", "/healthz"):
        assert site.request(PUBLIC, "GET", denied).status_code == 403, denied
    for method, api_path in (("GET", "/api/v1/sources"), ("POST", "/api/v1/workspaces")):
        refused = site.request(PUBLIC, method, api_path, headers=team, json={})
        assert refused.status_code == 403, api_path
    assert site.request(OPERATOR, "GET", "/login").status_code == 200


def test_chathooks_sees_the_client_through_caddy_and_believes_no_one_else(site: Site) -> None:
    source, _ = _waha_source(site)
    path = urlsplit(source["url"]).path
    body = fixture("waha", "text_received")
    headers = {**_signed(source, body), "X-Forwarded-For": SPOOFED}

    through_caddy = site.request(PUBLIC, "POST", path, content=body, headers=headers)
    assert through_caddy.status_code == 200
    wait_for(lambda: site.seen_addresses("/in/***"), what="the access log line")
    direct = site.direct(DIRECT, "POST", path, content=body, headers=headers)
    assert direct.status_code == 200
    wait_for(lambda: len(site.seen_addresses("/in/***")) == 2, what="the second log line")

    # Caddy replaced the client's own X-Forwarded-For; chathooks believed Caddy's, and
    # ignored the same header from a client it does not trust.
    assert site.seen_addresses("/in/***") == [PUBLIC, DIRECT]
