"""Row ids as the database holds them: INTEGER, 32 bits on PostgreSQL (64 on SQLite).

An id from a path can be any number; one outside that range names no row, and binding it
would make the database raise, so it is looked up as nothing.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

ID_MIN, ID_MAX = -(2**31), 2**31 - 1
Row = TypeVar("Row")


def get_by_id(session: Session, model: type[Row], row_id: int) -> Row | None:
    """The row with this primary key, or None (also for an id no row can have)."""
    if not ID_MIN <= row_id <= ID_MAX:
        return None
    return session.get(model, row_id)
