"""Alert e-mails waiting to go out, kept until a mailer confirms them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from chathooks.store.models import Alert


def add(
    session: Session, *, workspace_id: int, recipient: str, subject: str, body: str, now: datetime
) -> None:
    session.add(
        Alert(
            workspace_id=workspace_id,
            recipient=recipient,
            subject=subject,
            body=body,
            created_at=now,
        )
    )


def claim_unsent(session: Session, now: datetime, lease: timedelta, limit: int = 20) -> list[Alert]:
    """Unsent alerts nobody is sending, leased to the caller so two workers never both send."""
    alerts = list(
        session.scalars(
            select(Alert)
            .where(
                Alert.sent_at.is_(None), or_(Alert.lease_until.is_(None), Alert.lease_until < now)
            )
            .order_by(Alert.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for alert in alerts:
        alert.lease_until = now + lease
    return alerts


def mark_sent(session: Session, alert_id: int, now: datetime) -> None:
    session.execute(update(Alert).where(Alert.id == alert_id).values(sent_at=now))


def mark_failed(session: Session, alert_id: int, error: str, retry_at: datetime) -> None:
    session.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .values(tries=Alert.tries + 1, last_error=error, lease_until=retry_at)
    )
