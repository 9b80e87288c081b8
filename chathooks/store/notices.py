"""Waking every worker when a transaction that queued work commits: other processes by
PostgreSQL's LISTEN/NOTIFY channel, this process' own in memory (``Runtime``)."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "chathooks_work"
_QUEUED = "chathooks_work_queued"


def notify(session: Session) -> None:
    """Work was queued in this transaction: when it commits, every worker wakes. PostgreSQL
    holds the NOTIFY until then; this process' workers are woken after the commit (see
    ``queued``). Nothing wakes if the transaction rolls back."""
    if session.info.get(_QUEUED):
        return
    session.info[_QUEUED] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


def queued(session: Session) -> bool:
    """Whether the transaction now ending queued work (asked once, after its commit)."""
    return bool(session.info.pop(_QUEUED, False))


async def listen(conn: psycopg.AsyncConnection[Any]) -> None:
    """Subscribe ``conn`` (autocommit) to the channel; ``conn.notifies()`` then yields."""
    await conn.execute(f"LISTEN {CHANNEL}")
