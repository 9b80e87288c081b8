"""Logins under attack: does password hashing hold up the API, and does a login's time tell
whether its e-mail is known?

Starts ``chathooks serve`` on a fresh SQLite file, sets the owner's password, then
measures (all on 127.0.0.1, bounded in count and time):

1. the API's median answer (``GET /api/v1/outbound-webhooks``), quiet;
2. the same while ``--attackers`` clients send wrong passwords as fast as they can, each
   attempt from another address and e-mail (a distributed attack: the per-address and
   per-account limits do not stop it, so every attempt costs password work);
3. the median time of a wrong password for the known e-mail and for an unknown one.

    .venv/bin/python -m bench.logins [--attackers 8] [--samples 200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import PYTHON, ROOT, free_port, start, stop

ADMIN = "bench-admin-token"
PASSWORD = "correct horse battery"


def _session() -> aiohttp.ClientSession:
    """A browser: keeps cookies, also those of 127.0.0.1 (aiohttp refuses IP cookies)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as page:
        match = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert match
    return match.group(1)


async def _login(http: aiohttp.ClientSession, base: str, email: str, address: str) -> float:
    started = time.perf_counter()
    data = {"email": email, "password": "wrong", "csrf_token": await _csrf(http, base + "/login")}
    async with http.post(
        base + "/login", data=data, headers={"X-Forwarded-For": address}, allow_redirects=False
    ) as answer:
        await answer.read()
    return time.perf_counter() - started


async def _api_median(http: aiohttp.ClientSession, base: str, token: str, samples: int) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        async with http.get(
            base + "/api/v1/outbound-webhooks", headers={"Authorization": f"Bearer {token}"}
        ) as answer:
            await answer.read()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def run(attackers: int, samples: int, known: bool, base: str) -> dict[str, float]:
    async with _session() as http:
        async with http.post(
            base + "/api/v1/workspaces",
            headers={"Authorization": f"Bearer {ADMIN}"},
            json={"name": "Bench", "owner_name": "O", "owner_email": "owner@bench.test"},
        ) as answer:
            created = await answer.json()
        link = created["owner_password_link"].replace("http://127.0.0.1:0", base)
        link = base + link[link.index("/set-password/") :]
        async with _session() as owner:
            data = {"password": PASSWORD, "confirm": PASSWORD}
            data["csrf_token"] = await _csrf(owner, link)
            async with owner.post(link, data=data, allow_redirects=False) as done:
                assert done.status == 303, done.status
        token = created["api_token"]
        quiet = await _api_median(http, base, token, samples)

        counter = itertools.count()
        stop_attack = asyncio.Event()

        async def attacker() -> None:
            async with _session() as own:
                while not stop_attack.is_set():
                    n = next(counter)
                    address = f"198.18.{n // 250 % 250}.{n % 250}"
                    email = "owner@bench.test" if known else f"guess{n}@bench.test"
                    await _login(own, base, email, address)

        tasks = [asyncio.create_task(attacker()) for _ in range(attackers)]
        await asyncio.sleep(2)
        try:
            attacked = await asyncio.wait_for(_api_median(http, base, token, samples), 120)
        finally:
            stop_attack.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        known_times, unknown_times = [], []
        for i in range(10):
            known_times.append(await _login(http, base, "owner@bench.test", f"198.19.0.{i}"))
            unknown_times.append(await _login(http, base, f"nobody{i}@bench.test", f"198.19.1.{i}"))
    return {
        "api_median_quiet_ms": quiet,
        "api_median_attacked_ms": attacked,
        "login_attempts_during_attack": float(next(counter)),
        "wrong_password_known_ms": statistics.median(known_times) * 1000,
        "wrong_password_unknown_ms": statistics.median(unknown_times) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--known", action="store_true", help="attack the owner's e-mail (else unknown ones)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        port = free_port()
        env = {
            "CHATHOOKS_DATABASE_URL": f"sqlite:///{workdir}/bench.db",
            "CHATHOOKS_PORT": str(port),
            "CHATHOOKS_ADMIN_TOKEN": ADMIN,
            "CHATHOOKS_LOGIN_ATTEMPTS_PER_ACCOUNT": "100000",
            "CHATHOOKS_LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
        }
        process = start(
            [PYTHON, "-m", "chathooks", "serve"], Path(workdir) / "serve.log", cwd=ROOT, env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    asyncio.run(_ping(base))
                    break
                except OSError:
                    time.sleep(0.1)
            results = asyncio.run(run(args.attackers, args.samples, args.known, base))
        finally:
            stop(process)
    for name, value in results.items():
        print(f"{name:32} {value:10.1f}")
    slowed = results["api_median_attacked_ms"] / results["api_median_quiet_ms"]
    print(f"{'attacked / quiet':32} {slowed:10.2f}")
    print(
        f"{'unknown / known e-mail':32} "
        f"{results['wrong_password_unknown_ms'] / results['wrong_password_known_ms']:10.2f}"
    )


async def _ping(base: str) -> None:
    async with _session() as http, http.get(base + "/openapi.json") as answer:
        answer.raise_for_status()


if __name__ == "__main__":
    main()
