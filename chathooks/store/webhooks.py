"""Outbound webhooks and their delivery state (status, failure counter, back-off)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chathooks.store.ids import get_by_id
from chathooks.store.models import Webhook

QUEUEING_STATUSES = ("enabled", "auto_disabled")
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
    """The webhooks that still exist, locked in id order (no deadlocks between recorders)."""
    if not webhook_ids:
        return {}
    rows = session.scalars(
        select(Webhook).where(Webhook.id.in_(webhook_ids)).order_by(Webhook.id).with_for_update()
    )
    return {webhook.id: webhook for webhook in rows}


def list_for_workspace(session: Session, workspace_id: int) -> list[Webhook]:
    return list(
        session.scalars(
            select(Webhook).where(Webhook.workspace_id == workspace_id).order_by(Webhook.id)
        )
    )


def queueing(session: Session, workspace_id: int) -> list[Webhook]:
    return list(
        session.scalars(
            select(Webhook)
            .where(Webhook.workspace_id == workspace_id, Webhook.status.in_(QUEUEING_STATUSES))
            .order_by(Webhook.id)
        )
    )


def delete(session: Session, webhook: Webhook) -> None:
    session.delete(webhook)
