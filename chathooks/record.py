"""What happened to each request, written in one transaction per batch of results.

The request log, the activity log, the delivery's status and the webhook's failure
counter move together: a crash leaves either all of a result recorded or none of it
(then the delivery is simply sent again — at least once). One result that cannot be
written never holds up the others: it is written apart, as a failure of its own webhook.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session

from chathooks import metrics
from chathooks.deliver.transport import Outcome
from chathooks.runtime import Runtime
from chathooks.settings import Settings
from chathooks.states import FailureClass, WebhookStatus
from chathooks.storable import storable
from chathooks.store import alerts, deliveries, logs, tenants, webhooks
from chathooks.store.database import after_commit
from chathooks.store.models import Webhook

log = logging.getLogger("chathooks.record")


@dataclass(frozen=True, slots=True)
class Sent:
    """One request made for a delivery (``delivery_id`` is None for a test send)."""

    webhook_id: int
    delivery_id: int | None
    chat_id: int | None
    message_count: int
    url: str
    headers: dict[str, str]
    body: str
    outcome: Outcome
    at: datetime


def attempt_row(sent: Sent) -> dict[str, object]:
    outcome = sent.outcome
    return {
        "webhook_id": sent.webhook_id,
        "delivery_id": sent.delivery_id,
        "at": sent.at,
        "url": sent.url,
        "request_headers": sent.headers,
        "request_body": sent.body,
        "response_status": outcome.status,
        "response_headers": outcome.headers,
        "response_body": outcome.body,
        "error": outcome.error,
        "latency_ms": outcome.latency_ms,
    }


def activity_row(sent: Sent, action: str, request_id: int | None) -> dict[str, object]:
    """The action a request was, pointing at its logged request and response."""
    return {
        "webhook_id": sent.webhook_id,
        "at": sent.at,
        "action": action,
        "chat_id": sent.chat_id,
        "message_count": sent.message_count,
        "status_code": sent.outcome.status,
        "error": sent.outcome.error,
        "latency_ms": sent.outcome.latency_ms,
        "request_id": request_id,
    }


def backoff_seconds(failures: int, settings: Settings, rng: random.Random) -> float:
    """10 s doubling up to the maximum, with up to 20 % jitter so retries don't align."""
    delay = settings.retry_base_seconds * 2 ** min(max(failures - 1, 0), 30)
    return float(min(delay * rng.uniform(1.0, 1.2), settings.retry_max_seconds))


class Change(StrEnum):
    """A change of a webhook's state that an operator reads in the log."""

    FAILING = "failing"
    """Enabled, and its first attempt after a success (or since it was enabled) failed."""
    RECOVERED = "recovered"
    AUTO_DISABLED = "auto_disabled"
    RE_ENABLED = "re_enabled"


_SAID = {
    Change.FAILING: "is failing",
    Change.RECOVERED: "recovered",
    Change.AUTO_DISABLED: "was auto-disabled",
    Change.RE_ENABLED: "was re-enabled",
}


def announce(session: Session, webhook: Webhook, change: Change, why: str = "") -> None:
    """One log line for a change of the webhook's state, written once the change commits
    (never for one that is rolled back). It names the webhook, its workspace and its last
    error; never its URL (which may hold a token), a secret or a message."""
    name = json.dumps(webhook.name, ensure_ascii=False)
    error = webhook.last_error or "none"
    line = f"webhook {webhook.id} {name} of workspace {webhook.workspace_id} {_SAID[change]}"
    line += f": {why}; last error: {error}" if why else f" (last error: {error})"
    fields = {
        "workspace_id": webhook.workspace_id,
        "webhook_id": webhook.id,
        "webhook_name": webhook.name,
        "change": change.value,
        "last_error": webhook.last_error,
    }
    quiet = change in (Change.RECOVERED, Change.RE_ENABLED)
    level = logging.INFO if quiet else logging.WARNING
    after_commit(session, lambda: log.log(level, "%s", line, extra=fields))


def record(
    rt: Runtime, results: Sequence[Sent], released: Sequence[deliveries.Lease]
) -> list[Sent]:
    """Record a batch in one transaction; if that fails, each webhook's results apart, and
    if that fails too, each result alone. A result that cannot be written even alone is
    recorded as a failed attempt without its answer, so it counts against its own webhook
    only. Returns the results as recorded."""

    def write(
        part: Sequence[Sent], released: Sequence[deliveries.Lease] = ()
    ) -> BaseException | None:
        try:
            with rt.transaction() as session:
                record_results(
                    session,
                    part,
                    released=released,
                    now=rt.clock.now(),
                    settings=rt.settings,
                    rng=rt.rng,
                )
        except Exception as error:
            return error
        return None

    failure = write(results, released)
    if failure is None:
        return list(results)
    log.error(
        "recording %d results together failed (%r); recording them apart", len(results), failure
    )
    if released and (failure := write([], released)) is not None:
        log.error(
            "handing back %d deliveries failed (%r); their leases will end", len(released), failure
        )
    by_webhook: dict[int, list[Sent]] = {}
    for result in results:
        by_webhook.setdefault(result.webhook_id, []).append(result)
    recorded: list[Sent] = []
    for group in by_webhook.values():
        if write(group) is None:
            recorded += group
            continue
        broken: list[Sent] = []
        for result in group:
            if (error := write([result])) is None:
                recorded.append(result)
            else:
                broken.append(unrecordable(result, error))
        if broken and (error := write(broken)) is not None:
            log.error(
                "recording %d failed results failed (%r); they will be sent again",
                len(broken),
                error,
            )
        recorded += broken
    return recorded


def unrecordable(sent: Sent, error: BaseException) -> Sent:
    """A result whose answer could not be written: a failed attempt without the answer."""
    reason = f"the response could not be recorded ({type(error).__name__}: {error})"
    outcome = Outcome(status=None, latency_ms=sent.outcome.latency_ms, error=storable(reason))
    return dataclasses.replace(sent, outcome=outcome)


def record_results(
    session: Session,
    results: Sequence[Sent],
    *,
    released: Sequence[deliveries.Lease],
    now: datetime,
    settings: Settings,
    rng: random.Random,
) -> None:
    """Results in completion order; ``released`` are claimed deliveries not attempted.

    The webhooks are locked first (in id order, like every writer of them); results of a
    webhook deleted meanwhile are dropped, so they can't fail the batch or leave logs.
    """
    by_webhook: dict[int, list[Sent]] = {}
    for result in results:
        by_webhook.setdefault(result.webhook_id, []).append(result)
    present = webhooks.lock(session, sorted(by_webhook))
    results = [r for r in results if r.webhook_id in present]
    deliveries.mark_delivered(
        session,
        [r.delivery_id for r in results if r.outcome.success and r.delivery_id is not None],
        now,
    )
    deliveries.mark_failed(
        session,
        [r.delivery_id for r in results if not r.outcome.success and r.delivery_id is not None],
    )
    deliveries.release(session, released)
    request_ids = logs.add_attempts(session, [attempt_row(r) for r in results])
    logs.add_activity(
        session,
        [
            activity_row(r, "delivered" if r.outcome.success else "failed", request_id)
            for r, request_id in zip(results, request_ids, strict=True)
        ],
    )
    for webhook_id, webhook_results in sorted(by_webhook.items()):
        if webhook_id in present:
            _update_webhook(
                session,
                present[webhook_id],
                webhook_results,
                now=now,
                settings=settings,
                rng=rng,
            )


def _update_webhook(
    session: Session,
    webhook: Webhook,
    results: Sequence[Sent],
    *,
    now: datetime,
    settings: Settings,
    rng: random.Random,
) -> None:
    """Failure counters, back-off and auto-disable from one batch of a webhook's results,
    and when it last succeeded and failed (what the webhook list shows, at no extra query).

    Requests that failed together (one outage seen by many chats at once) count as one
    failed attempt: the budget of failures is spent one back-off round at a time.
    """
    last_success = max((i for i, r in enumerate(results) if r.outcome.success), default=-1)
    failing = list(results[last_success + 1 :])
    watched = webhook.status is WebhookStatus.ENABLED
    if watched and webhook.consecutive_failures and last_success >= 0:
        announce(session, webhook, Change.RECOVERED)
    succeeded = [r.at for r in results if r.outcome.success]
    failed = [r.at for r in results if not r.outcome.success]
    if succeeded:
        webhook.last_success_at = max(succeeded)
    if failed:
        webhook.last_failure_at = max(failed)
    gone = next((r for r in results if r.outcome.status == 410), None)
    if not failing and gone is None:
        webhook.consecutive_failures = 0
        webhook.failed_requests = 0
        webhook.retry_at = None
        return
    previous = webhook.consecutive_failures if last_success < 0 else 0
    failures = previous + (1 if failing else 0)
    webhook.consecutive_failures = failures
    webhook.failed_requests = (webhook.failed_requests if last_success < 0 else 0) + len(failing)
    last_failure = gone or failing[-1]
    webhook.last_error = last_failure.outcome.describe()
    if failing:
        why = FailureClass.of(last_failure.outcome.status, last_failure.outcome.error)
        after_commit(session, lambda: metrics.count_failed_attempt(why))
        if watched and failures == 1:
            announce(session, webhook, Change.FAILING)
    delay = backoff_seconds(failures, settings, rng)
    asked = [r.outcome.retry_after for r in failing if r.outcome.retry_after is not None]
    delay = max([delay, *asked])
    webhook.retry_at = now + timedelta(seconds=min(delay, settings.retry_after_max_seconds))
    if watched and (gone is not None or failures > settings.disable_after_failures):
        reason = (
            "the receiver answered 410 Gone (the URL is retired)"
            if gone is not None
            else f"{failures} consecutive failed attempts"
        )
        auto_disable(session, webhook, reason, now, settings.base_url)


def auto_disable(
    session: Session, webhook: Webhook, reason: str, now: datetime, base_url: str
) -> None:
    """Hold the webhook's backlog and tell the workspace owner, in this same transaction."""
    webhook.status = WebhookStatus.AUTO_DISABLED
    webhook.status_changed_at = now
    announce(session, webhook, Change.AUTO_DISABLED, reason)
    logs.add_activity(
        session,
        [
            {
                "webhook_id": webhook.id,
                "at": now,
                "action": "auto_disabled",
                "error": f"{reason}; last: {webhook.last_error}",
            }
        ],
    )
    workspace = tenants.get_workspace(session, webhook.workspace_id)
    if workspace is None:
        return
    named = f'"{webhook.name}" ({webhook.id})' if webhook.name else str(webhook.id)
    alerts.add(
        session,
        workspace_id=workspace.id,
        recipient=workspace.owner_email,
        now=now,
        subject=f"chathooks: webhook {named} was disabled automatically",
        body=(
            f"Hello {workspace.owner_name},\n\n"
            f"chathooks stopped sending to the outbound webhook {named} of the workspace "
            f'"{workspace.name}":\n\n    {webhook.url}\n\n'
            f"Why: {reason}.\nLast status or error: {webhook.last_error}\n"
            f"When: {now:%Y-%m-%d %H:%M:%S} UTC\n\n"
            "Messages that arrive meanwhile are kept and will be sent, in order, once the "
            "webhook is enabled again.\n\n"
            "To re-enable it, fix the receiver, then either open\n"
            f"    {base_url}/webhooks/outbound/{webhook.id}\n"
            'and press "Re-enable", or call the API:\n'
            f"    PATCH {base_url}/api/v1/outbound-webhooks/{webhook.id}  "
            '{"enabled": true}\n'
        ),
    )
