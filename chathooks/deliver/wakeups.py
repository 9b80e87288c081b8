"""Instant wake-ups across processes: a worker LISTENs on PostgreSQL and wakes the moment
an API process stores a message or a worker closes bundles. Polling stays the fallback,
faster while the listening connection is down."""

from __future__ import annotations

import asyncio
import logging

import psycopg

from chathooks.runtime import Runtime
from chathooks.store import notices

log = logging.getLogger("chathooks.wakeups")

RECONNECT_SECONDS = 1.0


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
                rt.listening = True
                rt.wake_local()  # anything queued while not listening
                async for _ in conn.notifies():
                    rt.wake_local()
        except Exception as error:
            log.warning("listening for wake-ups failed, polling meanwhile: %s", error)
        finally:
            rt.listening = False
        if not stop.is_set():
            await asyncio.sleep(RECONNECT_SECONDS)
