"""What the webhook pages show, from stored rows: a webhook's state, its activity, one
request in full, and times said the way people read them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from chathooks.filters import Filter
from chathooks.payloads import TEST_HEADER
from chathooks.schemas import AttemptOut
from chathooks.states import WebhookState, WebhookStatus
from chathooks.store import logs, messages
from chathooks.store.models import Activity, Webhook

ACTIONS = {
    "delivered": "Delivered",
    "failed": "Failed",
    "skipped": "Skipped (attachment)",
    "auto_disabled": "Auto-disabled",
    "re_enabled": "Re-enabled",
    "enabled": "Enabled",
    "disabled": "Disabled",
    "flushed": "Sent now",
    "retried": "Retry now",
    "test": "Test",
}
STATES = {
    WebhookState.ENABLED: "Enabled",
    WebhookState.FAILING: "Failing",
    WebhookState.DISABLED: "Disabled",
    WebhookState.AUTO_DISABLED: "Auto-disabled",
}


def plural(count: int, noun: str) -> str:
    """``1 delivery``, ``2 deliveries``, ``3 failed attempts``."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


def relative(when: datetime | None, now: datetime) -> str:
    """``in 3 min``, ``2 h ago``, ``just now``: the distance a person cares about, coarse
    enough that a page refreshing every 2 s does not change it every time."""
    if when is None:
        return ""
    seconds = (when - now).total_seconds()
    size = abs(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            amount = f"{size / length:.0f} {unit}"
            return f"in {amount}" if seconds > 0 else f"{amount} ago"
    return "in under a minute" if seconds > 0 else "just now"


@dataclass(frozen=True, slots=True)
class State:
    """How a webhook is doing, as its badge and status card say it."""

    key: WebhookState
    label: str
    failing: bool
    failures: str
    """``5 failed attempts (6 requests)``: the back-off rounds, and the requests in them."""
    can_retry: bool


def state_of(webhook: Webhook) -> State:
    """ "Failing" is an enabled webhook whose latest attempt failed: it still looks enabled
    in the settings, but nothing reaches the receiver until it answers 2xx again."""
    failing = webhook.consecutive_failures > 0
    key = WebhookState.of(webhook.status, webhook.consecutive_failures)
    failures = (
        f"{plural(webhook.consecutive_failures, 'failed attempt')} "
        f"({plural(webhook.failed_requests, 'request')})"
    )
    return State(
        key=key,
        label=STATES[key],
        failing=failing,
        failures=failures if failing else "",
        can_retry=failing and webhook.status is not WebhookStatus.AUTO_DISABLED,
    )


def filters_in_words(stored: dict[str, Any]) -> str:
    """``received only, no group chats, 1 account``; empty when every message goes."""
    chosen = Filter.of(stored)
    if chosen is None:
        return ""
    words = []
    if len(chosen.directions) == 1:
        words.append(f"{next(iter(chosen.directions))} only")
    if not chosen.include_groups:
        words.append("no group chats")
    if chosen.account_phones:
        words.append(plural(len(chosen.account_phones), "account"))
    return ", ".join(words)


def activity(session: Session, webhook_id: int) -> list[dict[str, Any]]:
    """The latest 10 actions, newest first, each with its details as (text, link, class)."""
    rows = logs.latest_activity(session, webhook_id)
    contexts = messages.chat_contexts(session, {r.chat_id for r in rows if r.chat_id})
    return [
        {
            "row": row,
            "label": ACTIONS.get(row.action, row.action.replace("_", " ").capitalize()),
            "details": _details(
                row, contexts[row.chat_id][0].full_name if row.chat_id in contexts else ""
            ),
        }
        for row in rows
    ]


def _details(row: Activity, chat_name: str) -> list[tuple[str, str | None, str]]:
    details: list[tuple[str, str | None, str]] = []
    if row.chat_id:
        details.append((chat_name or f"chat {row.chat_id}", f"/chat/{row.chat_id}/messages/", ""))
    if row.action == "flushed":  # the service counts bundles here
        details.append((plural(row.message_count, "bundle"), None, ""))
    elif row.message_count:
        details.append((plural(row.message_count, "message"), None, ""))
    if row.status_code is not None:
        details.append((f"HTTP {row.status_code}", None, "code"))
    if row.error:
        details.append((row.error, None, "err"))
    if row.latency_ms is not None:
        details.append((f"{row.latency_ms:.0f} ms", None, ""))
    return details


def readable_body(body: str) -> str:
    """JSON indented for reading; anything else as it came."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer, ready to read in the page."""

    attempt: AttemptOut
    is_test: bool
    request_body: str
    response_body: str


def exchange(attempt: AttemptOut) -> Exchange:
    return Exchange(
        attempt,
        attempt.request_headers.get(TEST_HEADER) == "true",
        readable_body(attempt.request_body),
        readable_body(attempt.response_body),
    )
