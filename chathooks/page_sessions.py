"""Server-side page sessions. The cookie carries a random token; the database says whether
it still opens a session, so logging out (or a new password) ends it for every copy."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from chathooks.security import hash_token, new_token
from chathooks.store import page_sessions
from chathooks.store.models import Teammate, Workspace

SESSION_DAYS = 14


def start(session: Session, teammate_id: int, now: datetime) -> str:
    """A new session for the teammate; returns the token for the cookie (stored hashed)."""
    page_sessions.prune(session, now)
    token = new_token("")
    page_sessions.add(
        session, hash_token(token), teammate_id, now, now + timedelta(days=SESSION_DAYS)
    )
    return token


def find(session: Session, token: str, now: datetime) -> tuple[Teammate, Workspace] | None:
    return page_sessions.find(session, hash_token(token), now)


def end(session: Session, token: str) -> None:
    page_sessions.delete_one(session, hash_token(token))


def end_all(session: Session, teammate_id: int) -> None:
    page_sessions.delete_for_teammate(session, teammate_id)
