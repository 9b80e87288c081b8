"""The request log (latest 100 attempts) and activity log (latest 10 actions) per webhook."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from chathooks.store.dialect import table
from chathooks.store.ids import get_by_id
from chathooks.store.models import Activity, Attempt

REQUESTS_KEPT = 100
ACTIVITY_KEPT = 10


def _prune(session: Session, model: Any, webhook_id: int, keep: int) -> None:
    """Delete all but the newest ``keep`` rows of one webhook, using (webhook_id, id): one
    statement (no cutoff, no row: ``id <= NULL`` holds for none)."""
    rows = table(model)
    cutoff = (
        select(rows.c.id)
        .where(rows.c.webhook_id == webhook_id)
        .order_by(rows.c.id.desc())
        .offset(keep)
        .limit(1)
        .scalar_subquery()
    )
    session.execute(delete(rows).where(rows.c.webhook_id == webhook_id, rows.c.id <= cutoff))


def _newest(rows: Sequence[dict[str, Any]], keep: int) -> dict[int, list[int]]:
    """Per webhook, the positions of its newest ``keep`` rows (rows come oldest first):
    older ones would be pruned at once, so they are never written."""
    positions: dict[int, list[int]] = {}
    for position, row in enumerate(rows):
        positions.setdefault(row["webhook_id"], []).append(position)
    return {webhook_id: kept[-keep:] for webhook_id, kept in positions.items()}


def add_attempts(session: Session, rows: Sequence[dict[str, Any]]) -> list[int | None]:
    """Insert attempts (oldest first); returns each row's id, None for one not kept.

    Every writer of a webhook's attempts holds that webhook's row lock (SQLite: the one
    writer), so right after the insert its newest ids are the ones just written, in
    order: one indexed query, where RETURNING in order would cost a statement per row."""
    ids: list[int | None] = [None] * len(rows)
    for webhook_id, positions in _newest(rows, REQUESTS_KEPT).items():
        session.execute(insert(table(Attempt)), [rows[p] for p in positions])
        written = session.scalars(
            select(Attempt.id)
            .where(Attempt.webhook_id == webhook_id)
            .order_by(Attempt.id.desc())
            .limit(len(positions))
        )
        for position, attempt_id in zip(positions, reversed(list(written)), strict=True):
            ids[position] = attempt_id
        _prune(session, Attempt, webhook_id, REQUESTS_KEPT)
    return ids


def add_activity(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    for webhook_id, positions in _newest(rows, ACTIVITY_KEPT).items():
        session.execute(insert(table(Activity)), [rows[p] for p in positions])
        _prune(session, Activity, webhook_id, ACTIVITY_KEPT)


def add_attempt(session: Session, row: dict[str, Any]) -> Attempt:
    """Insert one attempt and return it with its id (for the test endpoint's answer)."""
    attempt = Attempt(**row)
    session.add(attempt)
    session.flush()
    _prune(session, Attempt, row["webhook_id"], REQUESTS_KEPT)
    return attempt


def latest_attempts(session: Session, webhook_id: int) -> list[Attempt]:
    return list(
        session.scalars(
            select(Attempt)
            .where(Attempt.webhook_id == webhook_id)
            .order_by(Attempt.id.desc())
            .limit(REQUESTS_KEPT)
        )
    )


def get_attempt(session: Session, webhook_id: int, attempt_id: int) -> Attempt | None:
    attempt = get_by_id(session, Attempt, attempt_id)
    return attempt if attempt and attempt.webhook_id == webhook_id else None


def latest_activity(session: Session, webhook_id: int) -> list[Activity]:
    return list(
        session.scalars(
            select(Activity)
            .where(Activity.webhook_id == webhook_id)
            .order_by(Activity.id.desc())
            .limit(ACTIVITY_KEPT)
        )
    )


def delete_for_webhook(session: Session, webhook_id: int) -> None:
    session.execute(delete(Attempt).where(Attempt.webhook_id == webhook_id))
    session.execute(delete(Activity).where(Activity.webhook_id == webhook_id))
