"""Pacing shared by every worker: requests to one target are spaced evenly, by every
worker together. Targets are named ``webhook:<id>`` (its ``max_requests_per_second``) and
``account:<id>`` (sends through one WhatsApp account, ``chathooks.send``).

Spacing is 10 % wider than ``1 / rate``: a receiver counting any 1 s window then never sees
more than ``rate`` requests, even when the moments requests arrive wobble by up to 100 ms
(a busy event loop, the network); the price is a steady rate 9 % below the limit.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Protocol

from chathooks.runtime import Runtime
from chathooks.store import rates

log = logging.getLogger("chathooks.ratelimit")

SPACING_GUARD = 1.1
LATE_SECONDS = 0.05
REBOOKINGS = 3
RESERVE_AHEAD_SECONDS = 1.0
"""How far ahead a worker may book a start time; beyond that it waits its turn, so
bookings never outlive a worker's claim on the delivery or send."""


def webhook_target(webhook_id: int) -> str:
    return f"webhook:{webhook_id}"


def account_target(account_id: int) -> str:
    return f"account:{account_id}"


def spacing(per_second: float) -> float:
    return SPACING_GUARD / per_second


class RateLimiter(Protocol):
    async def wait(self, target: str, per_second: float | None) -> None:
        """Return when a request to ``target`` may start."""
        ...


class LocalRateLimiter:
    """One process (``serve`` on SQLite): the schedule lives in memory.

    Spacing is measured from when each request really started, so a stalled event loop
    that wakes late cannot let a burst through.
    """

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, target: str, per_second: float | None) -> None:
        if not per_second:
            return
        loop = asyncio.get_running_loop()
        async with self._locks.setdefault(target, asyncio.Lock()):
            pause = self._last.get(target, -math.inf) + spacing(per_second) - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            self._last[target] = loop.time()


class SharedRateLimiter:
    """Several workers (PostgreSQL): each request books the target's next start time in
    the database (``store.rates``). Within a process one request per target books at a
    time; the others queue behind it without asking the database."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._locks: dict[str, asyncio.Lock] = {}

    def _reserve(self, target: str, gap: float) -> float | None:
        try:
            with self.rt.transaction() as session:
                return rates.reserve(session, target, gap, RESERVE_AHEAD_SECONDS)
        except Exception:
            log.exception("booking a request to %s failed; trying again", target)
            return None

    async def wait(self, target: str, per_second: float | None) -> None:
        """A start time that woke up more than ``LATE_SECONDS`` after it (a busy machine)
        is given up and another one booked (at most ``REBOOKINGS`` times): the request after
        it may already be on time, and the two would reach the receiver too close together."""
        if not per_second:
            return
        gap = spacing(per_second)
        loop = asyncio.get_running_loop()
        for _ in range(REBOOKINGS + 1):
            async with self._locks.setdefault(target, asyncio.Lock()):
                while True:
                    pause = await asyncio.to_thread(self._reserve, target, gap)
                    if pause is not None:
                        break
                    await asyncio.sleep(gap)  # every slot in reach is taken: look again
            booked = loop.time() + pause
            await asyncio.sleep(pause)
            if loop.time() - booked <= LATE_SECONDS:
                return


def rate_limiter_for(rt: Runtime) -> RateLimiter:
    return LocalRateLimiter() if rt.settings.is_sqlite else SharedRateLimiter(rt)
