"""The shared request schedules (PostgreSQL): one row per paced target (a rate-limited
webhook, a WhatsApp account that sends), its next free start time on the database
server's clock, so every worker on every machine reads the same timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from chathooks.store.models import SendSlot

_RESERVE = text(
    """
    INSERT INTO send_slots AS s (target, next_at)
    VALUES (:target, extract(epoch from clock_timestamp()) + :spacing)
    ON CONFLICT (target) DO UPDATE
      SET next_at = greatest(s.next_at, extract(epoch from clock_timestamp())) + :spacing
      WHERE s.next_at < extract(epoch from clock_timestamp()) + :ahead
    RETURNING next_at - :spacing - extract(epoch from clock_timestamp())
    """
)


def reserve(session: Session, target: str, spacing: float, ahead: float) -> float | None:
    """Take the target's next start time if it is at most ``ahead`` seconds away; returns
    the seconds to wait for it, or None when the schedule is full that far ahead."""
    pause = session.scalar(_RESERVE, {"target": target, "spacing": spacing, "ahead": ahead})
    return None if pause is None else max(0.0, float(pause))


def delete_stale(session: Session, before: datetime) -> int:
    """Schedules unused since ``before`` (their targets are idle, changed or deleted)."""
    result = session.execute(delete(SendSlot).where(SendSlot.next_at < before.timestamp()))
    return int(result.rowcount)  # type: ignore[attr-defined]
