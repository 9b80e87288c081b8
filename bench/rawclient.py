"""The raw limit: a plain aiohttp client POSTing ~1 KB JSON bodies to the receiver.

Run as ``python -m bench.rawclient URL COUNT CONCURRENCY``; prints one JSON line with
the requests per second and the client's own CPU seconds while it sent. Keep-alive,
``CONCURRENCY`` requests in flight; any 2xx answer counts as a success (the fake sender
answers 201 for most kinds).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp

from bench.payload import raw_body

HEADERS = {
    "content-type": "application/json",
    "webhook-id": "msg_00000000-0000-0000-0000-000000000000",
    "webhook-timestamp": "1700000000",
    "webhook-signature": "v1," + "A" * 44,
}


async def run(url: str, count: int, concurrency: int, time_limit: float) -> dict[str, float]:
    bodies = [raw_body(i) for i in range(count)]
    queue = iter(range(count))
    failures = 0
    done = 0
    deadline = time.monotonic() + time_limit

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal failures, done
        for index in queue:
            if time.monotonic() > deadline:
                return
            async with http.post(url, data=bodies[index], headers=HEADERS) as resp:
                await resp.read()
                failures += not 200 <= resp.status < 300
                done += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=15, connect=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    return {
        "requests": done,
        "failures": failures,
        "seconds": elapsed,
        "requests_per_second": done / elapsed,
        "cpu_seconds": cpu,
        "mean_body_bytes": sum(map(len, bodies)) / count,
    }


def main() -> None:
    url, count, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(asyncio.run(run(url, count, concurrency, time_limit=300))), flush=True)


if __name__ == "__main__":
    main()
