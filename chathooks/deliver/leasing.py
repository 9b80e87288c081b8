"""Keeping a worker's leases alive while what it claimed waits for its turn (a webhook's or
an account's pace can outlast one lease), shared by the delivery and the send workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from chathooks.runtime import Runtime
from chathooks.store.deliveries import Lease

Extend = Callable[[Session, Sequence[Lease], datetime], list[int]]
"""A store's ``extend_leases``: the leases still the ones taken run to ``until``; their ids."""


async def keep_leases(
    rt: Runtime,
    owned: dict[int, datetime],
    waiting: Callable[[], list[Lease]],
    extend: Extend,
    log: logging.Logger,
) -> None:
    """Every third of a lease, extend the ``waiting`` leases and note their new end in
    ``owned``. Only a lease still this worker's own is extended: one that ran out while the
    worker was paused may be another's now, and its row is then handed back, never sent."""
    lease = timedelta(seconds=rt.settings.lease_seconds)
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        held = waiting()
        if not held:
            continue
        until = rt.clock.now() + lease
        try:
            extended = await asyncio.to_thread(_extend, rt, extend, held, until)
        except Exception:
            log.exception("extending leases failed; trying again shortly")
            continue
        for row_id in extended:
            if row_id in owned:
                owned[row_id] = until


def _extend(rt: Runtime, extend: Extend, held: list[Lease], until: datetime) -> list[int]:
    with rt.transaction() as session:
        return extend(session, held, until)
