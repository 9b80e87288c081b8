"""Login attempts counted per key (an e-mail's or an address's hash) in fixed windows."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, update
from sqlalchemy.orm import Session

from chathooks.store.dialect import insert_for, table
from chathooks.store.models import LoginCounter, UtcDateTime

_counters = table(LoginCounter)


def count_attempt(
    session: Session, key: str, now: datetime, window: timedelta
) -> tuple[int, datetime]:
    """One more attempt for ``key``, in one statement (concurrent logins count exactly);
    a window older than ``window`` starts again. Returns (attempts, window start)."""
    stale = _counters.c.window_started_at <= literal(now - window, UtcDateTime())
    started = literal(now, UtcDateTime())
    insert = insert_for(session, LoginCounter)
    statement = (
        insert.values(key=key, attempts=1, window_started_at=started)
        .on_conflict_do_update(
            index_elements=[_counters.c.key],
            set_={
                "attempts": case((stale, 1), else_=_counters.c.attempts + 1),
                "window_started_at": case((stale, started), else_=_counters.c.window_started_at),
            },
        )
        .returning(_counters.c.attempts, _counters.c.window_started_at)
    )
    attempts, window_started_at = session.execute(statement).one()
    return int(attempts), window_started_at


def forget(session: Session, key: str) -> None:
    session.execute(delete(_counters).where(_counters.c.key == key))


def uncount(session: Session, key: str) -> None:
    """Take back one attempt (a successful login does not count against its address)."""
    session.execute(
        update(_counters)
        .where(_counters.c.key == key, _counters.c.attempts > 0)
        .values(attempts=_counters.c.attempts - 1)
    )


def prune(session: Session, before: datetime) -> None:
    """Counters whose window ended: they would start again anyway."""
    session.execute(delete(_counters).where(_counters.c.window_started_at < before))
