"""Aggregation periods, aligned to UTC: 1h on the hour, 6h at 00/06/12/18, 12h, 24h."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

Aggregation = Literal["none", "1h", "6h", "12h", "24h"]
PERIOD_HOURS: dict[str, int] = {"1h": 1, "6h": 6, "12h": 12, "24h": 24}


def period_of(aggregation: str, received_at: datetime) -> tuple[datetime, datetime]:
    """The (start, end) of the period that a message received at ``received_at`` joins."""
    hours = PERIOD_HOURS[aggregation]
    moment = received_at.astimezone(UTC)
    start = moment.replace(
        hour=moment.hour - moment.hour % hours, minute=0, second=0, microsecond=0
    )
    return start, start + timedelta(hours=hours)
