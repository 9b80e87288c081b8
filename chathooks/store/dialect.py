"""The one dialect-specific statement the hot path needs: insert, skipping conflicts."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def table(model: Any) -> Table:
    """A model's Core table: bulk statements on it skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


def insert_ignoring_conflicts(session: Session, model: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's backend."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table(model)).on_conflict_do_nothing()
