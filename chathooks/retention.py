"""Retention: what is older than ``CHATHOOKS_RETENTION_DAYS`` and no longer needed goes.

Removed, in small batches of one transaction each (so delivery never waits long for the
database): delivered deliveries (and test bundles) with their bundle links, messages that
no waiting delivery will send, sent and failed sends (``outgoing``, with their
idempotency keys: kept at least a day, the shortest retention), and request-log,
activity and sent-alert rows. Waiting deliveries and their messages stay, however old: an
auto-disabled webhook keeps its backlog; so do queued sends. Workers sweep every
``CHATHOOKS_RETENTION_INTERVAL_SECONDS``, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from chathooks import metrics
from chathooks.runtime import Runtime
from chathooks.states import DeliveryStatus
from chathooks.store import rates
from chathooks.store import retention as store

log = logging.getLogger("chathooks.retention")

MESSAGE_SLACK = timedelta(hours=1)
"""Messages stay an hour past the horizon: a replay (allowed back to the horizon) that
races a sweep on a machine whose clock is a little off still finds its messages."""
BATCH_PAUSE_SECONDS = 0.05
"""Between two batches, so delivery's own transactions get their turn."""


def horizon(rt: Runtime, now: datetime | None = None) -> datetime:
    """Messages received before this are removed (or about to be)."""
    return (now or rt.clock.now()) - timedelta(days=rt.settings.retention_days)


class Sweep:
    """One pass over the tables; each batch is its own transaction."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.now = rt.clock.now()
        self.horizon = horizon(rt, self.now)
        self.removed: Counter[str] = Counter()
        self._needed: set[int] | None = None

    def _batch(self, work: Callable[[Session], bool]) -> bool:
        """Run one batch if no other worker is sweeping; True if there is more to do."""
        with self.rt.transaction() as session:
            if not store.try_lock(session):
                return False
            return work(session)

    def deliveries(self, after: int) -> tuple[bool, int]:
        size = self.rt.settings.retention_batch_size
        last = after

        def work(session: Session) -> bool:
            nonlocal last
            rows = store.deliveries_after(session, after, size)
            gone = [
                r.id
                for r in rows
                if (
                    r.status == DeliveryStatus.DELIVERED
                    and r.delivered_at
                    and r.delivered_at < self.horizon
                )
                or (r.status == DeliveryStatus.TEST and r.created_at < self.horizon)
            ]
            count, links = store.delete_deliveries(session, gone)
            self.removed.update(deliveries=count, bundle_messages=links)
            last = rows[-1].id if rows else after
            return len(rows) == size and rows[-1].created_at < self.horizon

        return self._batch(work), last

    def messages(self, after: int) -> tuple[bool, int]:
        size = self.rt.settings.retention_batch_size
        cutoff = self.horizon - MESSAGE_SLACK
        last = after

        def work(session: Session) -> bool:
            nonlocal last
            rows = store.messages_after(session, after, size)
            old = [r.id for r in rows if r.received_at < cutoff]
            if old and self._needed is None:
                self._needed = store.messages_still_needed(session.connection())
            needed = self._needed or set()
            gone = [id_ for id_ in old if id_ not in needed]
            self.removed.update(messages=store.delete_messages(session, gone))
            last = rows[-1].id if rows else after
            return len(rows) == size and rows[-1].received_at < cutoff

        return self._batch(work), last

    def outgoing(self, after: int) -> tuple[bool, int]:
        size = self.rt.settings.retention_batch_size
        last = after

        def work(session: Session) -> bool:
            nonlocal last
            rows = store.outgoing_after(session, after, size)
            gone = [r.id for r in rows if store.finished_before(r, self.horizon)]
            self.removed.update(outgoing=store.delete_outgoing(session, gone))
            last = rows[-1].id if rows else after
            return len(rows) == size and rows[-1].created_at < self.horizon

        return self._batch(work), last

    def logs(self) -> bool:
        size = self.rt.settings.retention_batch_size

        def work(session: Session) -> bool:
            removed = store.delete_logs_before(session, self.horizon, size)
            self.removed.update(removed)
            self.removed.update(
                send_slots=rates.delete_stale(session, self.now - timedelta(days=1))
            )
            return any(count == size for count in removed.values())

        return self._batch(work)


async def sweep(rt: Runtime, stop: asyncio.Event | None = None) -> dict[str, int]:
    """One full pass; returns the rows removed per table."""
    pass_ = Sweep(rt)
    for step in (pass_.deliveries, pass_.messages, pass_.outgoing):
        after = 0
        more = True
        while more and not (stop and stop.is_set()):
            more, after = await asyncio.to_thread(step, after)
            await asyncio.sleep(BATCH_PAUSE_SECONDS)
    while not (stop and stop.is_set()):
        if not await asyncio.to_thread(pass_.logs):
            break
        await asyncio.sleep(BATCH_PAUSE_SECONDS)
    removed = {table: count for table, count in pass_.removed.items() if count}
    metrics.count_removed(removed)
    if removed:
        log.info("retention removed %s (horizon %s)", removed, pass_.horizon.isoformat())
    return removed


async def run_retention(rt: Runtime, stop: asyncio.Event) -> None:
    """Sweep now and then every ``retention_interval_seconds`` until ``stop``."""
    while not stop.is_set():
        try:
            await sweep(rt, stop)
        except Exception:
            log.exception("retention failed; trying again at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rt.settings.retention_interval_seconds)
