"""The parts one running chathooks shares: settings, database, clock, mailer, transport."""

from __future__ import annotations

import asyncio
import math
import random
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from chathooks.clock import Clock, SystemClock
from chathooks.deliver.transport import AiohttpTransport, Transport
from chathooks.mail import Mailer, mailer_for
from chathooks.settings import Settings
from chathooks.store import notices
from chathooks.store.database import (
    make_engine,
    make_sessionmaker,
    outermost_commit,
    reading,
    unit_of_work,
)

INGEST_WINDOW_SECONDS = 0.05
"""Ingest is busy while this window saw ``INGEST_STREAM`` requests, and for one window
after the last of them: a worker that gives way resumes this soon after a burst."""

INGEST_STREAM = 16
"""Requests within ``INGEST_WINDOW_SECONDS`` that make a stream (over 300 msg/s): 100
msg/s, even at random, is not one, and a message arriving alone is claimed at once."""


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    mailer: Mailer
    transport: Transport
    own_transport: Transport
    """For requests to chathooks' own public URL (a source's Send sample): the operator chose
    that address, so it may be private, unlike a webhook's."""
    sender_transport: Transport
    """For calls to senders' APIs (check, send): the webhook rule, except the ``host:port``
    pairs of ``CHATHOOKS_SENDER_HOSTS``."""
    rng: random.Random = field(default_factory=random.Random)
    session_secret: str = ""
    listening: bool = False
    """A LISTEN connection is open (PostgreSQL): workers poll only as a fallback."""
    holder: int | None = None
    """The liveness lock this process' LISTEN connection holds (PostgreSQL): the leases its
    worker takes last only while that connection does."""
    _wake: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)
    _window_ends: float = -math.inf
    _in_window: int = 0
    _busy_until: float = -math.inf

    def __post_init__(self) -> None:
        event.listen(self.sessions, "after_commit", self._after_commit)
        event.listen(self.sessions, "after_soft_rollback", self._after_rollback)

    def transaction(self) -> AbstractContextManager[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises. The API's
        requests, the pages and the worker's jobs each use one; nothing else commits."""
        return unit_of_work(self.sessions)

    def reading(self) -> AbstractContextManager[Connection]:
        """A read-only transaction, for a lookup that must not wait for a writer."""
        return reading(self.engine)

    def on_wake(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        """Register a worker to be woken when new deliveries are queued in this process."""
        self._wake.append((loop, event))

    def wake_local(self) -> None:
        """Wake this process' workers; safe from any thread."""
        for loop, woken in self._wake:
            if not loop.is_closed():
                loop.call_soon_threadsafe(woken.set)

    def arrived(self, now: float) -> None:
        """A request to store came in at ``now`` (``time.monotonic()``; the group commit's,
        on the event loop): no lock, a few attributes, as it runs for every request."""
        if now >= self._window_ends:
            self._window_ends = now + INGEST_WINDOW_SECONDS
            self._in_window = 0
        self._in_window += 1
        if self._in_window >= INGEST_STREAM:
            self._busy_until = now + INGEST_WINDOW_SECONDS

    def ingest_busy(self, now: float) -> bool:
        """Requests are streaming into this process (``now``: ``time.monotonic()``): its
        worker gives way to them (see ``deliver.worker``)."""
        return now < self._busy_until

    def _after_commit(self, session: Session) -> None:
        """A unit of work that queued work (``notices.notify``) wakes this process' workers
        once it commits; PostgreSQL delivers its NOTIFY to every other process."""
        if outermost_commit(session) and notices.queued(session):
            self.wake_local()

    def _after_rollback(self, session: Session, transaction: SessionTransaction) -> None:
        if not transaction.nested:
            notices.queued(session)

    @property
    def poll_seconds(self) -> float:
        """How often a worker looks for due work when nothing wakes it."""
        s = self.settings
        return s.fallback_poll_seconds if self.listening else s.poll_interval_seconds


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    transport: Transport | None = None,
) -> Runtime:
    engine = make_engine(settings.database_url)

    def guarded(
        allow_private: bool, connections: int, allowed_hosts: list[str] | None = None
    ) -> AiohttpTransport:
        return AiohttpTransport(
            allow_private=allow_private,
            connect_timeout=settings.connect_timeout_seconds,
            total_timeout=settings.total_timeout_seconds,
            connections=connections,
            allowed_hosts=allowed_hosts or (),
        )

    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        clock=clock or SystemClock(),
        mailer=mailer or mailer_for(settings),
        transport=transport
        or guarded(settings.allow_private_targets, settings.delivery_concurrency),
        own_transport=guarded(True, 1),
        sender_transport=guarded(
            settings.allow_private_targets, settings.delivery_concurrency, settings.sender_hosts
        ),
    )
