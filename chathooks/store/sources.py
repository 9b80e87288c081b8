"""WhatsApp sources, their counters, and the log of the requests they received."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from chathooks.store.dialect import table
from chathooks.store.ids import get_by_id
from chathooks.store.models import InboundRequest, Source

REQUESTS_KEPT = 50
PRUNE_EVERY = 10
"""The log is pruned on every 10th request: a busy source costs two fewer statements on the
other nine, and never holds more than 59 rows."""


def add(session: Session, **values: Any) -> Source:
    source = Source(**values)
    session.add(source)
    session.flush()
    return source


def by_key(session: Session, key: str) -> Source | None:
    return session.scalars(select(Source).where(Source.key == key)).one_or_none()


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
    """Add one request's counts: a single UPDATE, so concurrent requests never lose one."""
    session.execute(
        update(Source)
        .where(Source.id == source_id)
        .values(
            stored=Source.stored + stored,
            duplicates=Source.duplicates + duplicates,
            ignored=Source.ignored + ignored,
            rejected=Source.rejected + rejected,
            last_event_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def log_request(session: Session, row: dict[str, Any]) -> None:
    """Insert one request's entry; every ``PRUNE_EVERY``-th drops all but the newest 50."""
    new_id = session.execute(
        insert(table(InboundRequest)).returning(table(InboundRequest).c.id), row
    ).scalar_one()
    if new_id % PRUNE_EVERY:
        return
    cutoff = session.scalar(
        select(InboundRequest.id)
        .where(InboundRequest.source_id == row["source_id"])
        .order_by(InboundRequest.id.desc())
        .offset(REQUESTS_KEPT)
        .limit(1)
    )
    if cutoff is not None:
        session.execute(
            delete(InboundRequest).where(
                InboundRequest.source_id == row["source_id"], InboundRequest.id <= cutoff
            )
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
