"""The send worker: claims queued sends, makes each through its kind's sender call, and
records the result at once.

Each chat's sends go out one at a time, in order: the claim hands out only a lane's
oldest queued send, and that send holds its lane (also while it backs off) until it is
sent or failed. Sends through one WhatsApp account are paced at its kind's
``PER_SECOND`` (``CHATHOOKS_SEND_PER_SECOND`` overrides it) by every worker together, as
webhooks' ``max_requests_per_second`` (``deliver.ratelimit``). A send the sender keeps
answering with a 5xx or a timeout backs off and is tried again until
``send_give_up_seconds`` after it was queued, then fails. Leases work as delivery's: a
send whose worker died is claimed again when its lease ends (SQLite: at the next start;
PostgreSQL: as soon as that worker's liveness lock is gone).

None of the senders takes an idempotency key, so the one send that can be repeated is
the one in flight when a worker dies between the sender's answer and the commit that
records it: each result is recorded on its own, right after its answer, to keep that
window as short as the record's one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from chathooks import ingest, metrics
from chathooks.deliver.leasing import keep_leases
from chathooks.deliver.ratelimit import account_target, rate_limiter_for
from chathooks.deliver.transport import failed
from chathooks.health import Heartbeat
from chathooks.runtime import Runtime
from chathooks.schemas import MessageEvent
from chathooks.security import UnsafeTarget, check_sender_url
from chathooks.send.queue import log_failed, template_of
from chathooks.sources.kinds import SENDERS
from chathooks.sources.protocol import Reply, SendAnswer, Sender
from chathooks.states import SourceKind
from chathooks.store import outgoing
from chathooks.store.deliveries import Lease
from chathooks.store.outgoing import Claimed

log = logging.getLogger("chathooks.send")

MIN_SLEEP_SECONDS = 0.005
ERROR_CHARS = 1000


class SendWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._owned: dict[int, datetime] = {}
        """Claimed sends not yet recorded, with the end of the lease held on each."""
        self._holders: dict[int, int] = {}
        self._pacing: set[int] = set()
        """Claimed sends still waiting for their account's pace: only their leases are
        extended (a send in flight keeps the lease it was checked to outlast)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._limiter = rate_limiter_for(runtime)
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._stopping = False
        self.heartbeat = Heartbeat()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then sends waiting for their pace are handed back
        and those in flight finish and are recorded."""
        self.rt.on_wake(asyncio.get_running_loop(), self._wake)
        leases = asyncio.create_task(self._lease_loop())
        try:
            await self._claim_loop(stop)
        finally:
            self._stopping = True
            for task in list(self._tasks):
                if task.get_name() == "pacing":
                    task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=self.rt.settings.total_timeout_seconds + 5)
            leases.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leases

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        room_total = self.rt.settings.send_concurrency
        while not stop.is_set():
            self.heartbeat.beat()
            self._wake.clear()
            self._done.clear()
            room = room_total - len(self._owned)
            due: datetime | None = None
            if room > 0:
                holder = self.rt.holder
                try:
                    claimed, due = await asyncio.to_thread(self._claim, room, holder)
                except Exception:
                    log.exception("claiming sends failed; trying again shortly")
                    claimed = []
                for send in claimed:
                    known = send.id in self._owned
                    self._owned[send.id] = send.lease_until  # a lease that ran out, retaken
                    if known:
                        continue
                    if holder is not None:
                        self._holders[send.id] = holder
                    task = asyncio.create_task(self._send(send), name="pacing")
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if len(claimed) == room:
                    continue
            waiters = [asyncio.ensure_future(w.wait()) for w in (self._wake, self._done, stop)]
            await asyncio.wait(
                waiters, timeout=self._sleep_seconds(due), return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()

    def _sleep_seconds(self, due: datetime | None) -> float:
        poll = self.rt.poll_seconds
        if due is None:
            return poll
        return min(poll, max((due - self.rt.clock.now()).total_seconds(), MIN_SLEEP_SECONDS))

    def _claim(self, limit: int, holder: int | None) -> tuple[list[Claimed], datetime | None]:
        rt = self.rt
        if rt.settings.is_sqlite:  # most wake-ups are for deliveries: no writer's turn
            with rt.reading() as connection:
                now = rt.clock.now()
                if not outgoing.any_due(connection, now):
                    return [], outgoing.next_due(connection, now)
        with rt.transaction() as session:
            now = rt.clock.now()
            lease = timedelta(seconds=rt.settings.lease_seconds)
            claimed = outgoing.claim(session, now, lease=lease, limit=limit, holder=holder)
            due = outgoing.next_due(session.connection(), now) if len(claimed) < limit else None
            return claimed, due

    async def _send(self, send: Claimed) -> None:
        """Wait for the account's pace, then make the call and record what it got; handed
        back untried if stopped meanwhile or if its lease could run out during the call."""
        task = asyncio.current_task()
        sender = SENDERS.get(SourceKind(send.kind)) if send.kind else None
        self._pacing.add(send.id)
        try:
            if sender is not None:
                await self._limiter.wait(account_target(send.account_id), self._per_second(sender))
        except asyncio.CancelledError:
            self._pacing.discard(send.id)
            await self._release(send)
            self._forget(send.id)
            return
        self._pacing.discard(send.id)
        if task is not None:
            task.set_name("sending")
        try:
            if self._stopping or not self._lease_outlasts_a_request(send.id):
                await self._release(send)
                return
            answer = await self._call(send, sender)
            lease = (send.id, self._owned[send.id])
            await asyncio.to_thread(self._record, send, lease, answer)
        except Exception:
            log.exception("send %d could not be recorded; it is tried again later", send.id)
        finally:
            self._forget(send.id)

    def _forget(self, send_id: int) -> None:
        self._owned.pop(send_id, None)
        self._holders.pop(send_id, None)
        self._done.set()

    def _per_second(self, sender: Sender) -> float:
        return self.rt.settings.send_per_second or sender.PER_SECOND

    def _lease_outlasts_a_request(self, send_id: int) -> bool:
        """As delivery's: a call that could outlive the lease might overlap the same send
        made by another worker; a lost liveness lock means the lease may be another's."""
        holder = self._holders.get(send_id)
        if holder is not None and holder != self.rt.holder:
            return False
        timeout = timedelta(seconds=self.rt.settings.total_timeout_seconds)
        return self.rt.clock.now() + timeout <= self._owned[send_id]

    async def _call(self, send: Claimed, sender: Sender | None) -> SendAnswer:
        if sender is None or send.secrets is None:
            return SendAnswer("failed", error="the source was removed or can no longer send")
        missing = [name for name in sender.SEND_SECRETS if not send.secrets.get(name)]
        if missing:
            return SendAnswer(
                "failed", error=f"the source has no sending credentials ({', '.join(missing)})"
            )
        reply = Reply(
            chat_external_id=send.chat_key,
            phone=send.phone,
            is_group=send.is_group,
            text=send.text,
            template=template_of(send.template),
        )
        settings = self.rt.settings
        try:
            call = sender.send_call(send.secrets, reply)
            check_sender_url(call.url, settings.allow_private_targets, settings.sender_hosts)
            result = await self.rt.sender_transport.request(
                call.method, call.url, dict(call.headers), call.body
            )
        except UnsafeTarget as error:
            return SendAnswer("failed", error=f"chathooks may not call the sender: it {error}")
        except Exception as error:
            result = failed(error, 0.0)
        if result.status is None:
            return SendAnswer("retry", error=result.error)
        try:
            return sender.read_send(result.status, result.body)
        except Exception as error:  # a kind's reading should never raise; if it does, say so
            return SendAnswer("failed", error=f"the sender's answer could not be read: {error}")

    def _record(self, send: Claimed, lease: tuple[int, datetime], answer: SendAnswer) -> None:
        """One transaction per result, right after its answer (the repeat window)."""
        rt = self.rt
        with rt.transaction() as session:
            now = rt.clock.now()
            answer = self._given_up(send, answer, now)
            error = answer.error[:ERROR_CHARS]
            if answer.outcome == "sent":
                message_id = answer.message_id or f"chathooks-send-{send.id}"
                chat_id = self._store_sent(session, send, message_id, now)
                if not outgoing.mark_sent(
                    session, lease, message_id=message_id, chat_id=chat_id, now=now
                ):
                    log.warning("send %d was sent after its lease ended", send.id)
            elif answer.outcome == "retry":
                at = min(now + self._back_off(send), self._give_up_at(send))
                outgoing.retry_later(session, lease, error=error, at=at)
            else:
                outgoing.mark_failed(
                    session, lease, error=error, attempted=send.kind is not None, now=now
                )
        metrics.count_send(send.kind or "removed", answer.outcome)
        if answer.outcome == "failed":
            log_failed(send.id, send.source_id, error)

    def _store_sent(
        self, session: Session, send: Claimed, message_id: str, now: datetime
    ) -> int | None:
        """The sent message, stored and queued for the webhooks like any (a duplicate if
        its echo came first); its chat's id (None: the account was removed meanwhile)."""
        event = _sent_event(send, message_id, now)
        base_url = self.rt.settings.base_url
        try:
            stored = ingest.ingest(session, send.workspace_id, [event], now, base_url)[0]
        except ingest.UnknownAccount:
            return None
        if stored.status == "duplicate":  # its echo came first
            outgoing.attribute_sent(session, send.workspace_id, message_id, send.sender_name)
        return stored.chat_id

    def _give_up_at(self, send: Claimed) -> datetime:
        """The last try is made then (WhatsApp's 24-hour window has closed by default)."""
        return send.queued_at + timedelta(seconds=self.rt.settings.send_give_up_seconds)

    def _given_up(self, send: Claimed, answer: SendAnswer, now: datetime) -> SendAnswer:
        """A retry answer at or past the give-up time fails the send, in plain words."""
        if answer.outcome != "retry" or now < self._give_up_at(send):
            return answer
        tries = send.attempts + 1
        over = _duration(now - send.queued_at)
        error = f"gave up after {tries} attempt{'s' * (tries != 1)} over {over}: {answer.error}"
        return SendAnswer("failed", error=error)

    def _back_off(self, send: Claimed) -> timedelta:
        settings = self.rt.settings
        seconds = settings.retry_base_seconds * 2 ** min(send.attempts, 20)
        return timedelta(seconds=min(seconds, settings.retry_max_seconds))

    async def _release(self, send: Claimed) -> None:
        lease = (send.id, self._owned.get(send.id, send.lease_until))  # as last extended
        try:
            await asyncio.to_thread(self._release_now, lease)
        except Exception:
            log.exception("handing back send %d failed; its lease will end", send.id)

    def _release_now(self, lease: tuple[int, datetime]) -> None:
        with self.rt.transaction() as session:
            outgoing.release(session, [lease])

    async def _lease_loop(self) -> None:
        """Keep the leases of claimed sends while they wait for their account's pace."""
        owned = self._owned

        def waiting() -> list[Lease]:
            return [(i, until) for i, until in owned.items() if i in self._pacing]

        await keep_leases(self.rt, owned, waiting, outgoing.extend_leases, log)


def _sent_event(send: Claimed, message_id: str, now: datetime) -> MessageEvent:
    """The sent message as ingest stores it: from the account, written by ``sender_name``
    (the teammate, or the workspace), with the sender's id (its echo is then a duplicate),
    to the chat's contact or group as the chat is named."""
    chat_name = send.chat_name or ""
    return MessageEvent.model_validate(
        {
            "whatsapp_account_phone": send.account_phone,
            "chat": {
                "external_id": send.chat_key,
                "full_name": chat_name,
                "is_group": send.is_group,
                "phone": send.phone,
            },
            "message_id": message_id,
            "direction": "sent",
            "timestamp": now,
            "sender": {"full_name": send.sender_name, "phone": send.account_phone},
            "recipient": {"full_name": chat_name, "phone": send.phone},
            "text": send.text or _template_text(send),
        }
    )


def _duration(span: timedelta) -> str:
    """``span`` as people say it: "24 h", "90 min", "45 s"."""
    seconds = round(span.total_seconds())
    if seconds >= 7200:
        return f"{round(seconds / 3600)} h"
    if seconds >= 120:
        return f"{round(seconds / 60)} min"
    return f"{seconds} s"


def _template_text(send: Claimed) -> str:
    template = template_of(send.template)
    return "" if template is None else f"[template {template.name}]"
