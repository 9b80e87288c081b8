"""PostgreSQL's LISTEN/NOTIFY channel that wakes every worker when work is queued."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "chathooks_work"


def notify(session: Session) -> None:
    """Sent when the transaction commits (PostgreSQL holds it until then); nothing on
    SQLite, whose one process wakes its worker in memory."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


async def listen(conn: psycopg.AsyncConnection[Any]) -> None:
    """Subscribe ``conn`` (autocommit) to the channel; ``conn.notifies()`` then yields."""
    await conn.execute(f"LISTEN {CHANNEL}")
