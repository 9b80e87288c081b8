"""The operator's admin token: from configuration, or generated once and stored hashed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from chathooks.security import hash_token, new_token, token_matches
from chathooks.settings import Settings
from chathooks.store import tenants

ADMIN_TOKEN_KEY = "admin_token_hash"


def ensure_admin_token(session: Session, settings: Settings) -> str | None:
    """A newly generated admin token to print once, or None if one is configured or stored."""
    if settings.admin_token or tenants.get_meta(session, ADMIN_TOKEN_KEY):
        return None
    token = new_token("chka_")
    tenants.set_meta(session, ADMIN_TOKEN_KEY, hash_token(token))
    return token


def rotate_admin_token(session: Session) -> str:
    token = new_token("chka_")
    tenants.set_meta(session, ADMIN_TOKEN_KEY, hash_token(token))
    return token


def admin_token_matches(session: Session, settings: Settings, token: str) -> bool:
    if settings.admin_token:
        return token_matches(token, hash_token(settings.admin_token))
    stored = tenants.get_meta(session, ADMIN_TOKEN_KEY)
    return stored is not None and token_matches(token, stored)
