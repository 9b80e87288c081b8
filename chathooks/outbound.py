"""Outbound webhook settings and actions: create, change, re-enable, retry, flush, test,
replay, and the request log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from chathooks import filters, ingest, payloads, record
from chathooks.deliver.signing import (
    ROTATION_OVERLAP,
    signed_headers,
    signing_secrets,
    webhook_id,
)
from chathooks.deliver.transport import Transport
from chathooks.errors import BadField, Conflict, NotFound
from chathooks.payloads import TEST_HEADER, TEST_ID_PREFIX
from chathooks.record import Sent, activity_row, attempt_row
from chathooks.runtime import Runtime
from chathooks.schemas import AttemptOut, WebhookIn, WebhookPatch
from chathooks.security import UnsafeTarget, check_url, new_webhook_secret
from chathooks.settings import Settings
from chathooks.states import Aggregation, WebhookStatus
from chathooks.storable import text_problem
from chathooks.store import deliveries, logs, messages, notices, tenants, webhooks
from chathooks.store.models import Attempt, Chat, Message, Teammate, Webhook, WhatsappAccount


def checked_url(url: str, settings: Settings) -> str:
    if problem := text_problem(url):
        raise BadField("url", f"URL {problem}")
    try:
        return check_url(url, settings.allow_private_targets)
    except UnsafeTarget as error:
        raise BadField("url", f"URL {error}") from None


def checked_filters(session: Session, workspace_id: int, wanted: dict[str, Any]) -> dict[str, Any]:
    """The filters with every key present; each account named must be one of the
    workspace's (a typo would otherwise filter out every message, silently)."""
    values = {**filters.default_filters(), **wanted}
    phones = list(dict.fromkeys(values["account_phones"]))
    known = tenants.accounts_by_phone(session, workspace_id, phones)
    unknown = [phone for phone in phones if phone not in known]
    if unknown:
        raise BadField("filters", f"no WhatsApp account with phone {unknown[0]} in this workspace")
    directions = [d for d in filters.DIRECTIONS if d in values["directions"]]
    return {**values, "directions": directions, "account_phones": phones}


def create(
    session: Session, workspace_id: int, body: WebhookIn, settings: Settings, now: datetime
) -> Webhook:
    return webhooks.add(
        session,
        workspace_id=workspace_id,
        url=checked_url(body.url, settings),
        name=body.name,
        aggregation=body.aggregation,
        filters=checked_filters(session, workspace_id, body.filters.model_dump()),
        status=WebhookStatus.ENABLED if body.enabled else WebhookStatus.DISABLED,
        secret=new_webhook_secret(),
        consecutive_failures=0,
        failed_requests=0,
        max_requests_per_second=body.max_requests_per_second,
        last_error="",
        status_changed_at=now,
        created_at=now,
    )


def get(session: Session, workspace_id: int, webhook_id_: int) -> Webhook:
    webhook = webhooks.get(session, workspace_id, webhook_id_)
    if webhook is None:
        raise NotFound("webhook")
    return webhook


def update(
    session: Session,
    webhook: Webhook,
    changes: WebhookPatch,
    settings: Settings,
    now: datetime,
) -> None:
    """Apply the fields given; changing aggregation or disabling first sends what was
    gathered. A new secret leaves the previous one signing too for 24 h
    (``ROTATION_OVERLAP``). Re-enabling queues the backlog: every worker wakes on commit."""
    if changes.url is not None:
        webhook.url = checked_url(changes.url, settings)
    if changes.name is not None:
        webhook.name = changes.name
    if changes.filters is not None:
        webhook.filters = checked_filters(
            session, webhook.workspace_id, changes.filters.model_dump()
        )
    if "max_requests_per_second" in changes.model_fields_set:
        webhook.max_requests_per_second = changes.max_requests_per_second
    if changes.rotate_secret:
        webhook.previous_secret = webhook.secret
        webhook.previous_secret_until = now + ROTATION_OVERLAP
        webhook.secret = new_webhook_secret()
    aggregation, enabled = changes.aggregation, changes.enabled
    if (aggregation is not None and aggregation != webhook.aggregation) or enabled is False:
        flush(session, webhook, now)
    if aggregation is not None:
        webhook.aggregation = aggregation
    if enabled is True and webhook.status is not WebhookStatus.ENABLED:
        if webhook.status is WebhookStatus.AUTO_DISABLED:
            _set_status(session, webhook, WebhookStatus.ENABLED, "re_enabled", now)
            record.announce(session, webhook, record.Change.RE_ENABLED)
        else:
            _set_status(session, webhook, WebhookStatus.ENABLED, "enabled", now)
        webhook.consecutive_failures = 0
        webhook.failed_requests = 0
        webhook.retry_at = None
        notices.notify(session)
    elif enabled is False and webhook.status is not WebhookStatus.DISABLED:
        _set_status(session, webhook, WebhookStatus.DISABLED, "disabled", now)


def _set_status(
    session: Session, webhook: Webhook, status: WebhookStatus, action: str, now: datetime
) -> None:
    webhook.status = status
    webhook.status_changed_at = now
    logs.add_activity(session, [{"webhook_id": webhook.id, "at": now, "action": action}])


def retry(session: Session, webhook: Webhook, now: datetime) -> None:
    """Try again now: the back-off's waiting time is cleared; the failure count stays
    until a success. An auto-disabled webhook is re-enabled instead (that resets it)."""
    if webhook.status is WebhookStatus.AUTO_DISABLED:
        raise Conflict("the webhook is auto-disabled: re-enable it to send its backlog")
    webhook.retry_at = None
    logs.add_activity(session, [{"webhook_id": webhook.id, "at": now, "action": "retried"}])
    notices.notify(session)


def flush(session: Session, webhook: Webhook, now: datetime) -> int:
    """Make every open bundle of the webhook due now; returns how many."""
    count = deliveries.close_bundles_now(session, webhook.id, now)
    if count:
        logs.add_activity(
            session,
            [{"webhook_id": webhook.id, "at": now, "action": "flushed", "message_count": count}],
        )
        notices.notify(session)
    return count


def delete(session: Session, webhook: Webhook) -> None:
    logs.delete_for_webhook(session, webhook.id)
    deliveries.delete_for_webhook(session, webhook.id)
    webhooks.delete(session, webhook)


def replay(
    session: Session,
    webhook: Webhook,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    base_url: str,
    kept_since: datetime,
) -> tuple[int, int]:
    """Queue again the messages received in [since, until) that the webhook's filters
    want: (messages, deliveries). ``kept_since`` is the retention horizon: older messages
    may be gone, so a range that starts before it is refused rather than half-sent."""
    if until <= since:
        raise BadField("until", "must be later than since")
    if since < kept_since:
        raise BadField(
            "since",
            f"is before the retention horizon {kept_since:%Y-%m-%dT%H:%M:%SZ}: messages "
            "received before it are removed (CHATHOOKS_RETENTION_DAYS); start there or later",
        )
    found = messages.received_between(session, webhook.workspace_id, since, until)
    chats = {
        chat_id: filters.ChatFacts(*facts)
        for chat_id, facts in messages.chat_facts(session, {m.chat_id for m in found}).items()
    }
    wanted = filters.wanted(webhook.filters, found, chats)
    queued = ingest.queue(session, webhook, wanted, now, base_url, due_now=True)
    if queued:
        notices.notify(session)
    return len(wanted), queued


def _sample(now: datetime) -> tuple[payloads.ChatContext, Message]:
    """A made-up message for a workspace that has none yet."""
    owner = Teammate(id=0, full_name="Sample Owner", email="owner@example.com")
    account = WhatsappAccount(id=0, phone="+10000000000", teammate_id=0)
    chat = Chat(id=0, full_name="Sample Chat", is_group=False, phone="+10000000001")
    message = Message(
        id=0,
        chat_id=0,
        external_id="sample-" + uuid.uuid4().hex,
        direction="received",
        timestamp=now,
        sender_name="Sample Chat",
        sender_phone="+10000000001",
        recipient_name="Sample Owner",
        recipient_phone="+10000000000",
        text="This is a test message 👋",
        is_first_in_chat=True,
    )
    return payloads.ChatContext(chat, account, owner, None), message


def test_payload(
    session: Session, webhook: Webhook, now: datetime, base_url: str
) -> tuple[str, int | None, str]:
    """(body, chat id, delivery uuid) for a test send of the workspace's latest message."""
    latest = messages.latest_message(session, webhook.workspace_id)
    if latest is None:
        ctx, message = _sample(now)
        chat_id = None
    else:
        ctx = payloads.ChatContext(
            *messages.chat_contexts(session, [latest.chat_id])[latest.chat_id]
        )
        message, chat_id = latest, latest.chat_id
    delivery_uuid = ingest.new_delivery_uuid()
    if webhook.aggregation is Aggregation.NONE:
        body = payloads.single_body(ctx, _as_test(message), base_url)
    else:
        if latest is not None:
            deliveries.add_test_bundle(session, delivery_uuid, webhook, latest, now)
        body = payloads.bundle_body(ctx, [_as_test(message)], base_url, delivery_uuid)
    return body, chat_id, delivery_uuid


def _as_test(message: Message) -> Message:
    """The message as a test send shows it: its id ``test_``-prefixed (SPEC §5), in a copy
    that is never added to the session."""
    fields = {name: getattr(message, name) for name in messages.PAYLOAD_FIELDS}
    return Message(**{**fields, "external_id": TEST_ID_PREFIX + message.external_id})


async def _post_test(
    transport: Transport,
    webhook: Webhook,
    *,
    body: str,
    chat_id: int | None,
    delivery_uuid: str,
    now: datetime,
) -> Sent:
    secrets = signing_secrets(
        webhook.secret, webhook.previous_secret, webhook.previous_secret_until, now
    )
    headers = signed_headers(secrets, webhook_id(delivery_uuid), now, body)
    headers[TEST_HEADER] = "true"
    outcome = await transport.post(webhook.url, headers, body.encode())
    return Sent(webhook.id, None, chat_id, 1, webhook.url, headers, body, outcome, now)


def record_test(session: Session, sent: Sent) -> Attempt:
    """A test is logged (request log and activity) but never counts toward auto-disable.
    Its webhook is locked first, as by every writer of a request log."""
    if sent.webhook_id not in webhooks.lock(session, [sent.webhook_id]):
        raise NotFound("webhook")
    attempt = logs.add_attempt(session, attempt_row(sent))
    logs.add_activity(session, [activity_row(sent, "test", attempt.id)])
    return attempt


def list_for(session: Session, workspace_id: int) -> list[Webhook]:
    return webhooks.list_for_workspace(session, workspace_id)


def backlogs(session: Session, listed: list[Webhook]) -> dict[int, int]:
    """Deliveries waiting per webhook (0 included), in one query for a whole list."""
    counts = deliveries.pending_counts(session, [w.id for w in listed])
    return {w.id: counts.get(w.id, 0) for w in listed}


async def send_test(rt: Runtime, workspace_id: int, webhook_id_: int) -> AttemptOut:
    """Read (one transaction), POST (none held open while waiting), record (another)."""

    def prepare() -> tuple[Webhook, str, int | None, str]:
        with rt.transaction() as session:
            webhook = get(session, workspace_id, webhook_id_)
            return webhook, *test_payload(session, webhook, rt.clock.now(), rt.settings.base_url)

    webhook, body, chat_id, delivery_uuid = await asyncio.to_thread(prepare)
    sent = await _post_test(
        rt.transport,
        webhook,
        body=body,
        chat_id=chat_id,
        delivery_uuid=delivery_uuid,
        now=rt.clock.now(),
    )

    def record() -> AttemptOut:
        with rt.transaction() as session:
            return AttemptOut.of(record_test(session, sent))

    return await asyncio.to_thread(record)


def request_log(session: Session, workspace_id: int, webhook_id_: int) -> list[dict[str, Any]]:
    """The latest 100 requests, newest first, as JSON-ready objects: the API's answer and
    the downloadable file have this one shape."""
    get(session, workspace_id, webhook_id_)
    return [
        AttemptOut.of(a).model_dump(mode="json") for a in logs.latest_attempts(session, webhook_id_)
    ]


def request(session: Session, workspace_id: int, webhook_id_: int, request_id: int) -> Attempt:
    """One logged request in full; only the latest 100 of a webhook are kept."""
    attempt = logs.get_attempt(session, get(session, workspace_id, webhook_id_).id, request_id)
    if attempt is None:
        raise NotFound("request")
    return attempt


def request_log_filename(webhook_id_: int, now: datetime) -> str:
    return f"chathooks-webhook-{webhook_id_}-requests-{now:%Y%m%dT%H%M%SZ}.json"
