"""What happened to each request, written in one transaction per batch of results.

The request log, the activity log, the delivery's status and the webhook's failure
counter move together: a crash leaves either all of a result recorded or none of it
(then the delivery is simply sent again — at least once).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from chathooks.deliver.transport import Outcome
from chathooks.settings import Settings
from chathooks.store import alerts, deliveries, logs, tenants, webhooks
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


def activity_row(sent: Sent, action: str) -> dict[str, object]:
    return {
        "webhook_id": sent.webhook_id,
        "at": sent.at,
        "action": action,
        "chat_id": sent.chat_id,
        "message_count": sent.message_count,
        "status_code": sent.outcome.status,
        "error": sent.outcome.error,
        "latency_ms": sent.outcome.latency_ms,
    }


def backoff_seconds(failures: int, settings: Settings, rng: random.Random) -> float:
    """10 s doubling up to the maximum, with up to 20 % jitter so retries don't align."""
    delay = settings.retry_base_seconds * 2 ** min(max(failures - 1, 0), 30)
    return float(min(delay * rng.uniform(1.0, 1.2), settings.retry_max_seconds))


def record_results(
    session: Session,
    results: Sequence[Sent],
    released: Sequence[int],
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
    logs.add_attempts(session, [attempt_row(r) for r in results])
    logs.add_activity(
        session, [activity_row(r, "delivered" if r.outcome.success else "failed") for r in results]
    )
    for webhook_id, webhook_results in sorted(by_webhook.items()):
        if webhook_id in present:
            _update_webhook(session, present[webhook_id], webhook_results, now, settings, rng)


def _update_webhook(
    session: Session,
    webhook: Webhook,
    results: Sequence[Sent],
    now: datetime,
    settings: Settings,
    rng: random.Random,
) -> None:
    """Failure counter, back-off and auto-disable from one batch of a webhook's results.

    Requests that failed together (one outage seen by many chats at once) count as one
    failed attempt: the budget of failures is spent one back-off round at a time.
    """
    last_success = max((i for i, r in enumerate(results) if r.outcome.success), default=-1)
    failing = list(results[last_success + 1 :])
    gone = next((r for r in results if r.outcome.status == 410), None)
    if not failing and gone is None:
        webhook.consecutive_failures = 0
        webhook.retry_at = None
        return
    previous = webhook.consecutive_failures if last_success < 0 else 0
    failures = previous + (1 if failing else 0)
    webhook.consecutive_failures = failures
    last_failure = gone or failing[-1]
    webhook.last_error = last_failure.outcome.describe()
    delay = backoff_seconds(failures, settings, rng)
    asked = [r.outcome.retry_after_seconds(now.timestamp()) for r in failing]
    delay = max([delay, *(a for a in asked if a is not None)])
    webhook.retry_at = now + timedelta(seconds=min(delay, settings.retry_after_max_seconds))
    if webhook.status == "enabled" and (
        gone is not None or failures > settings.disable_after_failures
    ):
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
    log.warning(
        "webhook %d auto-disabled: %s",
        webhook.id,
        reason,
        extra={"workspace_id": webhook.workspace_id, "webhook_id": webhook.id},
    )
    webhook.status = "auto_disabled"
    webhook.status_changed_at = now
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
    alerts.add(
        session,
        workspace_id=workspace.id,
        recipient=workspace.owner_email,
        now=now,
        subject=f"chathooks: webhook {webhook.id} was disabled automatically",
        body=(
            f"Hello {workspace.owner_name},\n\n"
            f"chathooks stopped sending to the outbound webhook {webhook.id} of the workspace "
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
