"""Aggregation periods, aligned to UTC: 1h on the hour, 6h at 00/06/12/18, 12h, 24h."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chathooks.states import Aggregation

PERIOD_HOURS: dict[str, int] = {
    Aggregation.HOUR: 1,
    Aggregation.SIX_HOURS: 6,
    Aggregation.TWELVE_HOURS: 12,
    Aggregation.DAY: 24,
}


def period_of(aggregation: str, received_at: datetime) -> tuple[datetime, datetime]:
    """The (start, end) of the period that a message received at ``received_at`` joins."""
    hours = PERIOD_HOURS[aggregation]
    moment = received_at.astimezone(UTC)
    start = moment.replace(
        hour=moment.hour - moment.hour % hours, minute=0, second=0, microsecond=0
    )
    return start, start + timedelta(hours=hours)
