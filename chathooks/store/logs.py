"""The request log (latest 100 attempts) and activity log (latest 10 actions) per webhook."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from chathooks.store.dialect import table
from chathooks.store.models import Activity, Attempt

REQUESTS_KEPT = 100
ACTIVITY_KEPT = 10


def _prune(session: Session, model: Any, webhook_id: int, keep: int) -> None:
    """Delete all but the newest ``keep`` rows of one webhook, using (webhook_id, id)."""
    cutoff = session.scalar(
        select(model.id)
        .where(model.webhook_id == webhook_id)
        .order_by(model.id.desc())
        .offset(keep)
        .limit(1)
    )
    if cutoff is not None:
        session.execute(delete(model).where(model.webhook_id == webhook_id, model.id <= cutoff))


def _add_newest(session: Session, model: Any, rows: Sequence[dict[str, Any]], keep: int) -> None:
    """Insert rows (oldest first), skipping those the prune would delete at once."""
    newest: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        newest.setdefault(row["webhook_id"], []).append(row)
    for webhook_id, webhook_rows in newest.items():
        session.execute(insert(table(model)), webhook_rows[-keep:])
        _prune(session, model, webhook_id, keep)


def add_attempts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    _add_newest(session, Attempt, rows, REQUESTS_KEPT)


def add_activity(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    _add_newest(session, Activity, rows, ACTIVITY_KEPT)


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
