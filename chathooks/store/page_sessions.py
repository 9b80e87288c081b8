"""Logged-in browsers, by the hash of their cookie's token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from chathooks.store.models import PageSession, Teammate, Workspace


def add(
    session: Session, token_hash: str, teammate_id: int, now: datetime, expires_at: datetime
) -> None:
    session.execute(
        insert(PageSession).values(
            id=token_hash, teammate_id=teammate_id, created_at=now, expires_at=expires_at
        )
    )


def find(session: Session, token_hash: str, now: datetime) -> tuple[Teammate, Workspace] | None:
    """The teammate and workspace of an unexpired session, in one query."""
    row = session.execute(
        select(Teammate, Workspace)
        .join(PageSession, PageSession.teammate_id == Teammate.id)
        .join(Workspace, Workspace.id == Teammate.workspace_id)
        .where(PageSession.id == token_hash, PageSession.expires_at > now)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def delete_one(session: Session, token_hash: str) -> None:
    session.execute(delete(PageSession).where(PageSession.id == token_hash))


def delete_for_teammate(session: Session, teammate_id: int) -> None:
    session.execute(delete(PageSession).where(PageSession.teammate_id == teammate_id))


def prune(session: Session, now: datetime) -> None:
    session.execute(delete(PageSession).where(PageSession.expires_at <= now))
