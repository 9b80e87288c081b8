"""Outbound webhooks and their delivery state (status, failure counter, back-off)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from chathooks.states import WebhookStatus
from chathooks.store.dialect import table
from chathooks.store.ids import get_by_id
from chathooks.store.models import Webhook

QUEUEING_STATUSES = (WebhookStatus.ENABLED, WebhookStatus.AUTO_DISABLED)
"""Webhooks that new messages are queued for: an auto-disabled one keeps its backlog."""


def add(session: Session, **values: Any) -> Webhook:
    webhook = Webhook(**values)
    session.add(webhook)
    session.flush()
    return webhook


def get(session: Session, workspace_id: int, webhook_id: int) -> Webhook | None:
    webhook = get_by_id(session, Webhook, webhook_id)
    return webhook if webhook and webhook.workspace_id == workspace_id else None


def lock(session: Session, webhook_ids: Sequence[int]) -> dict[int, Webhook]:
    """The webhooks that still exist, locked in id order (no deadlocks between recorders).

    ``FOR NO KEY UPDATE`` (``key_share``): it serializes the webhook's writers, but not an
    ingest storing deliveries, whose foreign key only needs the webhook's key to stay: an
    ingest that had locked a chat's lane waited here for a recorder waiting for that lane
    (a deadlock on PostgreSQL)."""
    if not webhook_ids:
        return {}
    rows = session.scalars(
        select(Webhook)
        .where(Webhook.id.in_(webhook_ids))
        .order_by(Webhook.id)
        .with_for_update(key_share=True)
    )
    return {webhook.id: webhook for webhook in rows}


def list_for_workspace(session: Session, workspace_id: int) -> list[Webhook]:
    return list(
        session.scalars(
            select(Webhook).where(Webhook.workspace_id == workspace_id).order_by(Webhook.id)
        )
    )


_webhooks = table(Webhook)
_QUEUEING = (
    select(_webhooks.c.id, _webhooks.c.aggregation, _webhooks.c.filters)
    .where(
        _webhooks.c.workspace_id == bindparam("workspace"),
        _webhooks.c.status.in_(QUEUEING_STATUSES),
    )
    .order_by(_webhooks.c.id)
)


def queueing(session: Session, workspace_id: int) -> list[Any]:
    """The webhooks new messages are queued for, as plain rows (id, aggregation, filters):
    read on every ingest, so a webhook created or deleted in any process counts at once."""
    return list(session.connection().execute(_QUEUEING, {"workspace": workspace_id}))


def delete(session: Session, webhook: Webhook) -> None:
    session.delete(webhook)
