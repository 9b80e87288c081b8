"""The delivery worker: claims due deliveries, sends them, hands results to ``record``.

Claims, sends and records overlap: sending never waits for the database, and results are
recorded in batches (one transaction each). The claim hands out a (webhook, chat) lane
only from its oldest pending delivery, with the due ones behind it; the worker sends them
one at a time, in order, and nobody else can claim the lane until they are recorded, so a
chat's order holds however many workers share the database. Different chats go out
concurrently, up to ``delivery_concurrency``. After a failure the webhook's other claimed
requests are handed back untried, and its back-off (stored on the webhook) decides when it
is claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import datetime, timedelta

from chathooks import metrics
from chathooks.deliver.jobs import Job, load_jobs
from chathooks.deliver.leasing import keep_leases
from chathooks.deliver.ratelimit import rate_limiter_for, webhook_target
from chathooks.deliver.signing import signed_headers, signing_secrets, webhook_id
from chathooks.deliver.transport import failed
from chathooks.health import Heartbeat
from chathooks.mail import compose
from chathooks.payloads import TEST_HEADER
from chathooks.record import Sent, record
from chathooks.runtime import Runtime
from chathooks.store import alerts, deliveries, notices

log = logging.getLogger("chathooks.worker")

RUN_LENGTH = 500
"""A chat's due deliveries claimed together, at most: they go out back to back, so a busy
chat's backlog drains at the receiver's pace instead of one claim and record per message."""

RECORD_GATHER_SECONDS = 0.02
"""Results wait this long to share one transaction: fewer commits, and the request log
writes only the newest 100 of a batch instead of writing and pruning each row."""


MIN_SLEEP_SECONDS = 0.005
"""The shortest wait for something due: a moment already past (a clock that moved) costs
a short pause, not a busy loop."""


CLAIM_INTERVAL_SECONDS = 0.005
"""Claims start at least this far apart: the wakes of a stream of single messages (a
NOTIFY or a group commit each) share a claim instead of each costing one, on every
worker. A wake after a quiet moment still claims at once."""

BUSY_CLAIM_INTERVAL_SECONDS = 0.25
"""While requests stream into this process (``serve``), its worker claims at most this
often: the API and the worker share one core and the SQLite writer, and a delivery costs
more than a stored message, so senders get their answers first. The claims that still come
keep deliveries going; they catch up once the stream ends. Claimed deliveries still go."""

INGEST_CHECK_SECONDS = 0.01
"""How often a worker that gives way looks whether the requests stopped."""


class DeliveryWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: list[Sent] = []
        self._released: list[deliveries.Lease] = []
        self._owned: dict[int, datetime] = {}
        """Deliveries claimed and not yet recorded, with the end of the lease held on each: a
        lease that ran out meanwhile (a clock jump, a slow record) must not make this worker
        send one of them twice, and a request never starts on a lease about to end."""
        self._holders: dict[int, int] = {}
        """The liveness lock each owned delivery's lease was taken under (PostgreSQL): if
        that lock was lost since, another worker may hold the delivery now."""
        self._generation = 0
        self._halted: dict[int, float] = {}
        self._limiter = rate_limiter_for(runtime)
        self._waiting: set[asyncio.Task[None]] = set()
        """Deliveries not yet sending (waiting for their rate or a free slot): on stop
        they are handed back at once instead of sent."""
        self.heartbeat = Heartbeat()
        self._stopping = False
        self._wake = asyncio.Event()
        self._recorded = asyncio.Event()
        self._to_record = asyncio.Event()
        self._slots = asyncio.Semaphore(runtime.settings.delivery_concurrency)
        self._claimed_at = -math.inf
        """When the last claim started (``time.monotonic()``)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then hand back what was not sent and record the rest."""
        self.rt.on_wake(asyncio.get_running_loop(), self._wake)
        helpers = [
            asyncio.create_task(self._record_loop()),
            asyncio.create_task(self._mail_loop(stop)),
            asyncio.create_task(self._lease_loop()),
        ]
        try:
            await self._claim_loop(stop)
        finally:
            self._stopping = True
            for task in list(self._waiting):
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.rt.settings.total_timeout_seconds + 1)
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            await self._record_batch()

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        settings = self.rt.settings
        while not stop.is_set():
            self.heartbeat.beat()
            room = settings.claim_batch_size - len(self._owned)
            if room >= min(settings.delivery_concurrency, settings.claim_batch_size):
                await self._pace(stop)
                if stop.is_set():
                    break
                self._claimed_at = time.monotonic()
                self._wake.clear()
                self._generation += 1
                due: datetime | None = None
                holder = self.rt.holder
                try:
                    jobs, due = await asyncio.to_thread(
                        self._claim, room, self._generation, holder, len(self._owned)
                    )
                except Exception:
                    log.exception("claiming deliveries failed; trying again shortly")
                    jobs = []
                runs: dict[tuple[int, int], list[Job]] = {}
                for job in jobs:
                    if job.claimed.id not in self._owned:
                        lane = (job.claimed.webhook_id, job.claimed.chat_id)
                        runs.setdefault(lane, []).append(job)
                    self._owned[job.claimed.id] = job.claimed.lease_until
                    if holder is not None:
                        self._holders[job.claimed.id] = holder
                for run in runs.values():
                    task = asyncio.create_task(self._deliver_run(run))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if len(jobs) == room:
                    continue
                waiters = [self._wake.wait(), stop.wait()]
                timeout = self._sleep_seconds(due)
            else:
                self._recorded.clear()
                waiters = [self._recorded.wait(), stop.wait()]
                timeout = self.rt.poll_seconds
            waiting = [asyncio.ensure_future(w) for w in waiters]
            await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiting:
                waiter.cancel()

    async def _pace(self, stop: asyncio.Event) -> None:
        """Wait until the next claim may start: ``CLAIM_INTERVAL_SECONDS`` after the last
        one, and while this process' API is busy, until its requests pause or
        ``BUSY_CLAIM_INTERVAL_SECONDS`` have passed. Wakes meanwhile are taken by it."""
        soonest = self._claimed_at + CLAIM_INTERVAL_SECONDS
        latest = self._claimed_at + BUSY_CLAIM_INTERVAL_SECONDS
        while not stop.is_set():
            now = time.monotonic()
            if now < latest and self.rt.ingest_busy(now):
                await asyncio.sleep(min(INGEST_CHECK_SECONDS, latest - now))
            elif now < soonest:
                await asyncio.sleep(soonest - now)
            else:
                return

    def _sleep_seconds(self, due: datetime | None) -> float:
        """Until the next thing comes due, or the poll interval if that is sooner: nobody
        wakes a worker when a back-off or a period ends."""
        poll = self.rt.poll_seconds
        if due is None:
            return poll
        until_due = (due - self.rt.clock.now()).total_seconds()
        return min(poll, max(until_due, MIN_SLEEP_SECONDS))

    def _claim(
        self, limit: int, generation: int, holder: int | None, held: int
    ) -> tuple[list[Job], datetime | None]:
        """Due deliveries as jobs and, if fewer than ``limit`` were due, when the next
        one will be (None: nothing is scheduled)."""
        rt = self.rt
        with rt.transaction() as session:
            now = rt.clock.now()
            if deliveries.close_due_bundles(session, now):
                notices.notify(session)  # other workers share the bundles just closed
            lease = timedelta(seconds=rt.settings.lease_seconds)
            claimed = deliveries.claim(
                session, now, lease=lease, limit=limit, run=RUN_LENGTH, holder=holder, held=held
            )
            due = deliveries.next_due(session, now) if len(claimed) < limit else None
            return load_jobs(session, claimed, rt.settings.base_url, generation), due

    def _is_halted(self, job: Job) -> bool:
        return self._stopping or job.generation <= self._halted.get(job.claimed.webhook_id, -1)

    async def _deliver_run(self, run: list[Job]) -> None:
        """A lane's claimed deliveries, one after another in order: after a failure the
        webhook is halted, so the rest are handed back untried."""
        for job in run:
            await self._deliver(job)

    async def _deliver(self, job: Job) -> None:
        """Send one claimed delivery, unless its webhook failed since it was claimed."""
        claimed = job.claimed
        if not self._is_halted(job) and await self._turn(job):
            try:
                if not self._is_halted(job) and self._lease_outlasts_a_request(claimed.id):
                    sent = await self._send(job)
                    metrics.observe_request(sent.outcome, job.received, self.rt.clock.now())
                    self._results.append(sent)
                    if not sent.outcome.success:
                        self._halted[claimed.webhook_id] = math.inf
                    self._to_record.set()
                    return
            finally:
                self._slots.release()
        self._released.append((claimed.id, self._owned[claimed.id]))
        self._to_record.set()

    def _lease_outlasts_a_request(self, delivery_id: int) -> bool:
        """A request may take ``total_timeout_seconds``; one that could outlive the lease
        might overlap the same delivery sent by another worker, after newer messages of
        its chat (a worker paused past its lease): such a delivery is handed back instead."""
        timeout = timedelta(seconds=self.rt.settings.total_timeout_seconds)
        holder = self._holders.get(delivery_id)
        if holder is not None and holder != self.rt.holder:
            return False  # the liveness lock was lost: the lease may be another's now
        return self.rt.clock.now() + timeout <= self._owned[delivery_id]

    async def _turn(self, job: Job) -> bool:
        """Wait for the webhook's rate and a free sending slot; False if stopped meanwhile
        (the slot is then not taken)."""
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            target = webhook_target(job.claimed.webhook_id)
            await self._limiter.wait(target, job.claimed.max_requests_per_second)
            await self._slots.acquire()
            return True
        except asyncio.CancelledError:
            return False
        finally:
            self._waiting.discard(task)

    async def _send(self, job: Job) -> Sent:
        claimed = job.claimed
        at = self.rt.clock.now()
        secrets = signing_secrets(
            claimed.secret, claimed.previous_secret, claimed.previous_secret_until, at
        )
        headers = signed_headers(secrets, webhook_id(claimed.uuid), at, job.body)
        if job.is_test:
            headers[TEST_HEADER] = "true"
        try:
            outcome = await self.rt.transport.post(claimed.url, headers, job.body.encode())
        except Exception as error:
            log.exception(
                "sending delivery %d failed unexpectedly",
                claimed.id,
                extra={"webhook_id": claimed.webhook_id, "delivery_id": claimed.id},
            )
            outcome = failed(error, 0.0)
        return Sent(
            claimed.webhook_id,
            claimed.id,
            claimed.chat_id,
            job.message_count,
            claimed.url,
            headers,
            job.body,
            outcome,
            at,
        )

    async def _record_loop(self) -> None:
        while True:
            await self._to_record.wait()
            await asyncio.sleep(RECORD_GATHER_SECONDS)
            self._to_record.clear()
            await self._record_batch()
            self._recorded.set()

    async def _record_batch(self) -> None:
        results, self._results = self._results, []
        released, self._released = self._released, []
        if not results and not released:
            return
        results = await asyncio.to_thread(record, self.rt, results, released)
        for webhook in {r.webhook_id for r in results if not r.outcome.success}:
            self._halted[webhook] = self._generation
        done = [r.delivery_id for r in results if r.delivery_id is not None]
        for delivery_id in done + [id_ for id_, _ in released]:
            self._owned.pop(delivery_id, None)
            self._holders.pop(delivery_id, None)
        self._wake.set()

    async def _lease_loop(self) -> None:
        """Keep the leases of claimed deliveries while they wait: a rate-limited webhook's
        queue can outlast one lease, and no other worker may send them too."""
        owned = self._owned
        await keep_leases(
            self.rt, owned, lambda: list(owned.items()), deliveries.extend_leases, log
        )

    async def _mail_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await send_pending_alerts(self.rt)
            except Exception:
                log.exception("sending alert e-mails failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rt.settings.poll_interval_seconds * 4)


async def send_pending_alerts(rt: Runtime) -> int:
    """Send unsent alert e-mails; a failed send stays queued and is retried a minute later."""

    def claim() -> list[tuple[int, str, str, str]]:
        with rt.transaction() as session:
            claimed = alerts.claim_unsent(session, rt.clock.now(), timedelta(minutes=5))
            return [(a.id, a.recipient, a.subject, a.body) for a in claimed]

    def finish(alert_id: int, error: str) -> None:
        with rt.transaction() as session:
            now = rt.clock.now()
            if error:
                alerts.mark_failed(session, alert_id, error, now + timedelta(minutes=1))
            else:
                alerts.mark_sent(session, alert_id, now)

    sent = 0
    for alert_id, recipient, subject, body in await asyncio.to_thread(claim):
        try:
            await rt.mailer.send(compose(rt.settings.mail_from, recipient, subject, body))
            error = ""
            sent += 1
            metrics.ALERT_EMAILS.labels("sent").inc()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            metrics.ALERT_EMAILS.labels("failed").inc()
            log.warning(
                "alert e-mail %d failed, will retry: %s",
                alert_id,
                error,
                extra={"alert_id": alert_id},
            )
        await asyncio.to_thread(finish, alert_id, error)
    return sent
