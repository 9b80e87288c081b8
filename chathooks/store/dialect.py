"""Core helpers the store modules share, and the dialect-specific statements: inserts
that skip or merge into a conflicting row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, Update, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute, Session


def table(model: Any) -> Table:
    """A model's Core table: bulk statements on it skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


def insert_for(session: Session, model: Any) -> Any:
    """``INSERT`` of the session's backend, which knows ``ON CONFLICT``."""
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table(model))


_built: dict[tuple[Callable[[Session], Any], str], Any] = {}


def built(session: Session, build: Callable[[Session], Any]) -> Any:
    """``build``'s statement for the session's dialect, built once rather than per request
    (building one and computing its cache key cost more than running it)."""
    key = (build, session.get_bind().dialect.name)
    statement = _built.get(key)
    if statement is None:
        statement = _built[key] = build(session)
    return statement


def insert_ignoring_conflicts(session: Session, model: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's backend."""
    return insert_for(session, model).on_conflict_do_nothing()


def count_by(
    session: Session, key: InstrumentedAttribute[Any], *conditions: ColumnElement[bool]
) -> dict[int, int]:
    """How many rows there are per value of ``key`` (a null key is not counted)."""
    rows = session.execute(select(key, func.count()).where(*conditions).group_by(key))
    return {value: int(count) for value, count in rows if value is not None}


def changed(session: Session, statement: Update) -> int:
    """Run a bulk UPDATE; how many rows it changed."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]
