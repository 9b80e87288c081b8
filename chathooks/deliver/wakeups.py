"""Instant wake-ups across processes: a worker LISTENs on PostgreSQL and wakes the moment
an API process stores a message or a worker closes bundles. Polling stays the fallback,
faster while the listening connection is down.

The same connection holds the worker's liveness lock: its leases last only while the
connection does, so when a worker dies (``kill -9``, a lost host), PostgreSQL drops the
lock and the others take its chats at once. Each worker checks every second for a lock
that went away, and wakes to claim what that worker held."""

from __future__ import annotations

import asyncio
import logging

import psycopg

from chathooks.runtime import Runtime
from chathooks.store import deliveries, notices

log = logging.getLogger("chathooks.wakeups")

RECONNECT_SECONDS = 1.0
PEERS_SECONDS = 1.0
"""How often a worker looks for workers that died (one small read of ``pg_locks``)."""
HOLDER_NUMBERS = 2**31 - 1


async def wake_on_notices(rt: Runtime, stop: asyncio.Event) -> None:
    """Until ``stop``: hold a LISTEN connection, waking this process' worker on each
    notification; reconnect after a failure."""
    conninfo = rt.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=5
            ) as conn:
                await notices.listen(conn)
                holder = rt.rng.randint(1, HOLDER_NUMBERS)
                await deliveries.hold(conn, holder)
                rt.holder = holder
                rt.listening = True
                rt.wake_local()  # anything queued while not listening
                alive = await deliveries.holders_alive(conn)
                while True:
                    async for _ in conn.notifies(timeout=PEERS_SECONDS):
                        rt.wake_local()
                    now_alive = await deliveries.holders_alive(conn)
                    if alive - now_alive:
                        rt.wake_local()  # a worker died: its chats are free now
                    alive = now_alive
        except Exception as error:
            log.warning("listening for wake-ups failed, polling meanwhile: %s", error)
        finally:
            rt.listening = False
            rt.holder = None
        if not stop.is_set():
            await asyncio.sleep(RECONNECT_SECONDS)
