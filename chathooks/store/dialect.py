"""The dialect-specific statements: inserts that skip or merge into a conflicting row."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def table(model: Any) -> Table:
    """A model's Core table: bulk statements on it skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


def insert_for(session: Session, model: Any) -> Any:
    """``INSERT`` of the session's backend, which knows ``ON CONFLICT``."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table(model))


def insert_ignoring_conflicts(session: Session, model: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's backend."""
    return insert_for(session, model).on_conflict_do_nothing()
