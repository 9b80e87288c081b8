"""What every phase uses: the cleanup, the receiver, chathooks services, a workspace and
batch ingest. Phases live in ``bench.run``, ``bench.operations``, ``bench.busy`` and
``bench.backlog``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from bench.common import PYTHON, ROOT, free_port, start, stop, wait_ready
from bench.payload import ACCOUNT_EMAIL, ACCOUNT_NAME, ACCOUNT_PHONE

ADMIN_TOKEN = "bench-admin-token-0123456789"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS = ROOT / "bench" / "results" / "latest.json"


@dataclass
class Cleanup:
    """Everything the run started, undone in reverse order whatever happens."""

    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)

    def close(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                stop(proc)
        for name in self.databases:
            with contextlib.suppress(Exception):
                drop_database(name)
        shutil.rmtree(self.tmp, ignore_errors=True)


def create_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def guarded(name: str, phase: Any, timeout: float) -> dict[str, Any]:
    """Run one phase under a hard time limit; a failure is reported, not fatal."""
    print(f"== {name} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        result: dict[str, Any] = await asyncio.wait_for(phase, timeout)
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    result["phase_seconds"] = round(time.monotonic() - started, 1)
    print(f"   done in {result['phase_seconds']} s", file=sys.stderr, flush=True)
    return result


# ---------------------------------------------------------------- receiver


@dataclass(frozen=True)
class Receiver:
    base: str

    @property
    def hook(self) -> str:
        return f"{self.base}/hook"

    async def reset(self, http: aiohttp.ClientSession) -> None:
        """Forget every arrival and answer 200 again."""
        async with http.post(f"{self.base}/_reset") as resp:
            resp.raise_for_status()

    async def answer(self, http: aiohttp.ClientSession, status: int, delay: float = 0.0) -> None:
        """Answer every webhook with ``status`` from now on (503: an outage), ``delay``
        seconds late (a slow receiver)."""
        mode = {"status": status, "delay": delay}
        async with http.post(f"{self.base}/_mode", json=mode) as resp:
            resp.raise_for_status()

    async def stats(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.base}/_stats") as resp:
            return dict(await resp.json())

    async def arrivals(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.base}/_arrivals") as resp:
            return dict(await resp.json())

    async def wait_for(
        self, http: aiohttp.ClientSession, key: str, expected: int, deadline: float
    ) -> dict[str, Any]:
        """Poll until ``stats[key] >= expected``; fail on the deadline or a 60 s stall."""
        progress, last_change = -1, time.monotonic()
        while True:
            stats = await self.stats(http)
            if stats[key] >= expected:
                return stats
            now = time.monotonic()
            if stats[key] != progress:
                progress, last_change = stats[key], now
            if now > deadline or now - last_change > 60:
                raise TimeoutError(f"receiver has {stats[key]}/{expected} {key}: {stats}")
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------- chathooks


@dataclass(frozen=True)
class Service:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


async def start_service(
    cleanup: Cleanup, args: list[str], database_url: str, label: str, env: dict[str, str]
) -> Service:
    """``python -m chathooks serve|api|worker`` (or ``bench.service``), ready when
    ``/readyz`` answers (a worker's on its metrics port)."""
    port, metrics_port = free_port(), free_port()
    log = cleanup.tmp / f"{label}.log"
    proc = start(
        [PYTHON, "-m", *args],
        log,
        env={
            "PYTHONPATH": str(ROOT),
            "CHATHOOKS_DATABASE_URL": database_url,
            "CHATHOOKS_PORT": str(port),
            "CHATHOOKS_METRICS_PORT": str(metrics_port),
            "CHATHOOKS_ADMIN_TOKEN": ADMIN_TOKEN,
            "CHATHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "CHATHOOKS_OUTBOX_DIR": str(cleanup.tmp / "outbox"),
            **env,
        },
        cwd=cleanup.tmp,
    )
    cleanup.procs.append(proc)
    base = f"http://127.0.0.1:{metrics_port if args[-1] == 'worker' else port}"
    await wait_ready(f"{base}/readyz", proc, timeout=90, log=log)
    return Service(proc, base, log)


def start_profiler(
    cleanup: Cleanup, service: Service, label: str
) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``service`` (and its children) into
    ``bench/results/profile-<label>.txt`` (collapsed stacks)."""
    py_spy = Path(PYTHON).parent / "py-spy"
    if not py_spy.exists():
        print("   (py-spy is not installed: no profile)", file=sys.stderr)
        return None
    out = RESULTS.parent / f"profile-{label}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [str(py_spy), "record", "--pid", str(service.pid), "--rate", "200", "--nonblocking"]
    args += ["--threads", "--subprocesses", "--format", "raw", "--output", str(out)]
    proc = start(args, cleanup.tmp / f"py-spy-{label}.log", cwd=ROOT)
    cleanup.procs.append(proc)
    return proc


def stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)


async def api(
    http: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.request(method, url, json=body, headers=headers) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"{method} {url}: {resp.status} {await resp.text()}")
        return await resp.json()


async def set_up_workspace(
    http: aiohttp.ClientSession, service: Service, hook_url: str, aggregation: str
) -> str:
    """Workspace, WhatsApp account and one webhook; returns the workspace token."""
    v1 = f"{service.base}/api/v1"
    workspace = await api(
        http,
        "POST",
        f"{v1}/workspaces",
        ADMIN_TOKEN,
        {"name": "Bench", "owner_name": ACCOUNT_NAME, "owner_email": ACCOUNT_EMAIL},
    )
    token = str(workspace["api_token"])
    account = {"phone": ACCOUNT_PHONE, "full_name": ACCOUNT_NAME, "email": ACCOUNT_EMAIL}
    await api(http, "POST", f"{v1}/whatsapp-accounts", token, account)
    hook = {"url": hook_url, "aggregation": aggregation}
    await api(http, "POST", f"{v1}/outbound-webhooks", token, hook)
    return token


@dataclass(frozen=True)
class Ingested:
    started: float
    finished: float
    accepted: int
    batch_times: list[tuple[float, float]]
    """(POST start, response received) per batch, in the order given."""

    @property
    def rate(self) -> float:
        return self.accepted / (self.finished - self.started)


async def ingest(
    http: aiohttp.ClientSession,
    service: Service,
    token: str,
    events: Iterable[list[dict[str, Any]]],
    concurrency: int,
) -> Ingested:
    """POST the batches through ``/api/v1/messages/batch``, ``concurrency`` in flight, in
    order of start. Each body is encoded just before it is sent (a few ms per 1,000
    events), so a backlog of any size costs the client little memory."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    url = f"{service.base}/api/v1/messages/batch"
    times: dict[int, tuple[float, float]] = {}
    accepted = 0
    pending = enumerate(events)

    async def poster() -> None:
        nonlocal accepted
        for index, batch in pending:
            body = json.dumps({"messages": batch}).encode()
            sent = time.monotonic()
            async with http.post(url, data=body, headers=headers) as resp:
                answer = await resp.json()
                if resp.status != 202:
                    raise RuntimeError(f"batch ingest: {resp.status} {answer}")
            times[index] = (sent, time.monotonic())
            accepted += sum(r["status"] == "accepted" for r in answer["results"])

    await asyncio.gather(*(poster() for _ in range(concurrency)))
    ordered = [times[i] for i in sorted(times)]
    return Ingested(min(t[0] for t in ordered), max(t[1] for t in ordered), accepted, ordered)
