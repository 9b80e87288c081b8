"""WhatsApp sources, their counters, and the log of the requests they received."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from chathooks.store.dialect import table
from chathooks.store.ids import get_by_id
from chathooks.store.models import InboundRequest, Source

REQUESTS_KEPT = 50


def add(session: Session, **values: Any) -> Source:
    source = Source(**values)
    session.add(source)
    session.flush()
    return source


def by_key(session: Session, key: str) -> Source | None:
    return session.scalars(select(Source).where(Source.key == key)).one_or_none()


_SCREENING = select(Source.id, Source.workspace_id, Source.kind, Source.secrets, Source.name).where(
    Source.key == bindparam("key")
)


def screening(
    connection: Connection, key: str
) -> tuple[int, int, str, Mapping[str, Any], str] | None:
    """(id, workspace id, kind, secrets, name) of the source with this key: what a request
    to its URL is screened with, before any write."""
    row = connection.execute(_SCREENING, {"key": key}).one_or_none()
    return None if row is None else (row.id, row.workspace_id, row.kind, row.secrets, row.name)


@dataclass(frozen=True, slots=True)
class Feeding:
    """A source as the requests it received are stored: read once for a group of them."""

    id: int
    workspace_id: int
    kind: str
    secrets: dict[str, Any]
    teammate_id: int | None


def feeding(session: Session, ids: Iterable[int]) -> dict[int, Feeding]:
    """(A group's requests are nearly always to one source: an ``IN`` list's expansion,
    rendered again on every execution, is then spared.)"""
    wanted = sorted(set(ids))
    if len(wanted) == 1:
        rows = session.connection().execute(_FEEDING_ONE, {"id": wanted[0]})
    else:
        rows = session.connection().execute(_FEEDING, {"ids": wanted})
    return {row.id: Feeding(*row) for row in rows}


def get(session: Session, workspace_id: int, source_id: int) -> Source | None:
    source = get_by_id(session, Source, source_id)
    return source if source and source.workspace_id == workspace_id else None


def list_for_workspace(session: Session, workspace_id: int) -> list[Source]:
    return list(
        session.scalars(
            select(Source).where(Source.workspace_id == workspace_id).order_by(Source.id)
        )
    )


def delete_source(session: Session, source: Source) -> None:
    session.execute(delete(InboundRequest).where(InboundRequest.source_id == source.id))
    session.delete(source)


_SOURCES = table(Source)
_REQUESTS = table(InboundRequest)
_FEEDING_COLUMNS = select(
    _SOURCES.c.id,
    _SOURCES.c.workspace_id,
    _SOURCES.c.kind,
    _SOURCES.c.secrets,
    _SOURCES.c.teammate_id,
)
_FEEDING = _FEEDING_COLUMNS.where(_SOURCES.c.id.in_(bindparam("ids", expanding=True)))
_FEEDING_ONE = _FEEDING_COLUMNS.where(_SOURCES.c.id == bindparam("id"))
_COUNT = (
    update(_SOURCES)
    .where(_SOURCES.c.id == bindparam("source"))
    .values(
        stored=_SOURCES.c.stored + bindparam("add_stored"),
        duplicates=_SOURCES.c.duplicates + bindparam("add_duplicates"),
        ignored=_SOURCES.c.ignored + bindparam("add_ignored"),
        rejected=_SOURCES.c.rejected + bindparam("add_rejected"),
        last_event_at=bindparam("now"),
    )
)


def count(
    session: Session,
    source_id: int,
    *,
    stored: int,
    duplicates: int,
    ignored: int,
    rejected: int,
    now: datetime,
) -> None:
    """Add requests' counts: a single UPDATE, so concurrent requests never lose one. (Core,
    compiled once: it runs for every group of requests.)"""
    session.connection().execute(
        _COUNT,
        {
            "source": source_id,
            "add_stored": stored,
            "add_duplicates": duplicates,
            "add_ignored": ignored,
            "add_rejected": rejected,
            "now": now,
        },
    )


def log_requests(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert requests' entries, then cut each of their sources back to its newest 50 (one
    statement per source: a group of requests pays it once)."""
    if not rows:
        return
    connection = session.connection()
    connection.execute(_LOG, list(rows))
    for source in sorted({r["source_id"] for r in rows}):
        connection.execute(_KEEP_NEWEST, {"source": source})


_LOG = insert(_REQUESTS)
_NEWEST_DROPPED = (
    select(_REQUESTS.c.id)
    .where(_REQUESTS.c.source_id == bindparam("source"))
    .order_by(_REQUESTS.c.id.desc())
    .offset(REQUESTS_KEPT)
    .limit(1)
    .scalar_subquery()
)
_KEEP_NEWEST = delete(_REQUESTS).where(
    _REQUESTS.c.source_id == bindparam("source"), _REQUESTS.c.id <= _NEWEST_DROPPED
)


def latest_requests(session: Session, source_id: int) -> list[InboundRequest]:
    return list(
        session.scalars(
            select(InboundRequest)
            .where(InboundRequest.source_id == source_id)
            .order_by(InboundRequest.id.desc())
            .limit(REQUESTS_KEPT)
        )
    )


def release_teammate(session: Session, teammate_id: int) -> None:
    """Sources a removed teammate owned create accounts for the workspace owner from now on."""
    session.execute(
        update(Source).where(Source.teammate_id == teammate_id).values(teammate_id=None)
    )
