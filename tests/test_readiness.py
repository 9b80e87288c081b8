"""Readiness follows the database: a PostgreSQL of the test's own is stopped and started
under a running API and worker (the shared server is never touched)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chathooks.runtime import build_runtime
from chathooks.store import database
from chathooks.store.database import make_engine, migrate
from tests.conftest import Service, make_settings, wait_for
from tests.test_restart import _free_port
from tests.workers import WorkerService

BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """initdb into a temporary folder, served on a free port of 127.0.0.1 (as the
    ``postgres`` OS user when the tests run as root, since initdb refuses root)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="chathooks-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        self._run(BIN / "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def _run(self, *args: object) -> None:
        subprocess.run(
            [*self.as_user, *map(str, args)], check=True, capture_output=True, timeout=120
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = self.folder / "server.log"
        self._run(BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run(BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        subprocess.run(
            [*self.as_user, str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL's server binaries are not in {BIN}")
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


def status(http: httpx.Client, path: str) -> int:
    return http.get(path).status_code


def test_readiness_while_the_database_stops_and_starts(private_postgres: PrivatePostgres) -> None:
    settings = make_settings(private_postgres.url)
    migrate(settings.database_url)
    api = Service(build_runtime(settings), run_worker=False).start()
    worker = WorkerService(build_runtime(settings)).start()
    try:
        for http in (api.http, worker.http):
            assert status(http, "/readyz") == 200
        private_postgres.stop()
        for http in (api.http, worker.http):
            wait_for(lambda h=http: status(h, "/readyz") == 503, what="503 while stopped")
            answer = http.get("/readyz").json()
            assert answer["checks"]["database"].startswith("unavailable")
            assert status(http, "/healthz") == 200
            assert status(http, "/metrics") == 200  # counters still; no database gauges
        private_postgres.start()
        for http in (api.http, worker.http):
            wait_for(lambda h=http: status(h, "/readyz") == 200, what="200 once started")
    finally:
        worker.stop()
        api.stop()


@pytest.mark.parametrize("rested", [False, True], ids=["just used", "rested"])
def test_the_pool_hands_out_no_connection_a_restart_closed(
    private_postgres: PrivatePostgres, monkeypatch: pytest.MonkeyPatch, rested: bool
) -> None:
    """After PostgreSQL restarts, the first transactions succeed: the pooled connections
    the old server closed are replaced, whether just used or rested long enough to be
    pinged."""
    if rested:
        monkeypatch.setattr(database, "PING_AFTER_IDLE", 0.0)
    engine = make_engine(make_settings(private_postgres.url).database_url)
    try:
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                conn.exec_driver_sql("SELECT 1")
        private_postgres.stop()
        private_postgres.start()
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()
