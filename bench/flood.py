"""A flood of forged requests, in a process of its own so that it does not slow the client
that measures chathooks meanwhile.

    python -m bench.flood URL BYTES CONCURRENCY

``CONCURRENCY`` requests of ``BYTES`` (a Cloud API body signed with no secret) are in
flight until SIGTERM; then prints ``{"answers": {status: count}}`` as its last line. Prints
``flooding`` once the first answer came back.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp

from bench.sources import forged_body


async def flood(url: str, size: int, concurrency: int) -> dict[str, int]:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    body = forged_body(size)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "0" * 64}
    answers: dict[str, int] = {}

    async def forger(http: aiohttp.ClientSession) -> None:
        while not stopping.is_set():
            try:
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    status = str(resp.status)
            except aiohttp.ClientError as error:
                status = type(error).__name__
            if not answers:
                print("flooding", flush=True)
            answers[status] = answers.get(status, 0) + 1

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(*(forger(http) for _ in range(concurrency)))
    return answers


def main() -> None:
    url, size, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    answers = asyncio.run(flood(url, size, concurrency))
    print(json.dumps({"answers": answers}), flush=True)


if __name__ == "__main__":
    main()
