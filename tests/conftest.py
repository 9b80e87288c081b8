"""Real parts for every test: SQLite files, PostgreSQL, an HTTP receiver, an SMTP server,
and chathooks itself served by uvicorn on 127.0.0.1 with a clock the test moves."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from sqlalchemy import text

from chathooks.app import create_app
from chathooks.clock import ManualClock
from chathooks.runtime import Runtime, build_runtime
from chathooks.settings import Settings
from chathooks.store.database import make_engine, migrate
from chathooks.store.models import Base
from tests.receiver import Receiver

pytest_plugins = ["tests.browsing", "tests.fake_senders.fixtures"]

T = TypeVar("T")
PG_ADMIN_URL = os.environ.get("CHATHOOKS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "test-admin-token"
PUBLIC_BASE = "http://chathooks.test"


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright keeps an event
    loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; a deadline, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _pg_reachable() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test: the schema comes from Alembic."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this run's own, migrated once and dropped at the end."""
    if not _pg_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}, and CI=true")
        pytest.skip("PostgreSQL is not reachable")
    name = f"chathooks_test_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    migrate(Settings(database_url=url).database_url)
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "chathooks.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    engine = make_engine(Settings(database_url=url).database_url)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def clock() -> ManualClock:
    """Starts at the real time (receivers check signature timestamps), moves when told."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class Service:
    """chathooks served by uvicorn on 127.0.0.1, with an HTTP client and shortcuts."""

    def __init__(
        self, rt: Runtime, run_worker: bool = True, port: int = 0, app: Any = None
    ) -> None:
        self.rt = rt
        config = uvicorn.Config(
            app or create_app(rt, run_worker=run_worker),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.browsers: list[httpx.Client] = []
        """Clients of ``tests.pages.browser``, closed with the service."""

    def start(self) -> Service:
        self.thread.start()
        wait_for(lambda: self.server.started, what="uvicorn to start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.http = httpx.Client(base_url=self.url, timeout=30)
        return self

    def stop(self) -> None:
        self.http.close()
        for client in self.browsers:
            client.close()
        self.server.should_exit = True
        self.thread.join(30)
        self.rt.engine.dispose()

    @property
    def clock(self) -> ManualClock:
        clock = self.rt.clock
        assert isinstance(clock, ManualClock)
        return clock

    def workspace(self, name: str = "Acme", owner_email: str = "owner@acme.test") -> Workspace:
        answer = self.http.post(
            "/api/v1/workspaces",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            json={"name": name, "owner_name": "Olive Owner", "owner_email": owner_email},
        )
        assert answer.status_code == 201, answer.text
        return Workspace(self, answer.json()["api_token"], answer.json())


class Workspace:
    """One team's API, with its token already in every request."""

    def __init__(self, service: Service, token: str, created: dict[str, Any]) -> None:
        self.service = service
        self.token = token
        self.created = created
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.service.http.request(method, "/api/v1" + path, headers=headers, **kwargs)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.request("POST", path, json=body)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def patch(self, path: str, body: Any) -> httpx.Response:
        return self.request("PATCH", path, json=body)

    def account(
        self,
        phone: str = "+972500000000",
        full_name: str = "Amnon Haha",
        email: str = "amnon@acme.test",
    ) -> dict[str, Any]:
        answer = self.post(
            "/whatsapp-accounts", {"phone": phone, "full_name": full_name, "email": email}
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def webhook(self, url: str, aggregation: str = "none", **extra: Any) -> dict[str, Any]:
        answer = self.post("/outbound-webhooks", {"url": url, "aggregation": aggregation, **extra})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "allow_private_targets": True,
        "public_base_url": PUBLIC_BASE,
        "poll_interval_seconds": 0.05,
        "fallback_poll_seconds": 0.2,
        "session_secret": "test-session-secret",
        "outbox_dir": Path(os.environ.get("PYTEST_TMP", "/tmp")) / "chathooks-outbox",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def start_service(database_url: str, clock: ManualClock) -> Iterator[Callable[..., Service]]:
    """Start chathooks (several times, for restarts) on this test's database and clock."""
    started: list[Service] = []

    def start(run_worker: bool = True, port: int = 0, **overrides: Any) -> Service:
        """``port``: listen there (so ``public_base_url`` can point at this very server)."""
        rt = build_runtime(make_settings(database_url, **overrides), clock=clock)
        service = Service(rt, run_worker, port).start()
        started.append(service)
        return service

    yield start
    for service in started:
        if service.thread.is_alive():
            service.stop()


@pytest.fixture
def service(start_service: Callable[..., Service]) -> Service:
    return start_service()


def event(
    message_id: str,
    *,
    account: str = "+972500000000",
    chat: str = "972540000000@c.us",
    chat_name: str = "John Doe",
    is_group: bool = False,
    phone: str = "+972540000000",
    direction: str = "received",
    timestamp: str = "2021-02-24T16:25:29Z",
    text: str = "lorem ipsum",
    attachments: list[Any] | None = None,
) -> dict[str, Any]:
    """A message event as the SPEC §5 example has it, with the parts a test varies."""
    return {
        "whatsapp_account_phone": account,
        "chat": {"external_id": chat, "full_name": chat_name, "is_group": is_group, "phone": phone},
        "message_id": message_id,
        "direction": direction,
        "timestamp": timestamp,
        "sender": {"full_name": chat_name, "phone": phone},
        "recipient": {"full_name": "Amnon Haha", "phone": account},
        "text": text,
        "attachments": attachments or [],
    }
