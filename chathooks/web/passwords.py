"""Password hashing for page logins (argon2)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chathooks.store.models import Teammate

MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()


def set_password(teammate: Teammate, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    teammate.password_hash = _hasher.hash(password)


def password_matches(teammate: Teammate, password: str) -> bool:
    if not teammate.password_hash:
        return False
    try:
        return _hasher.verify(teammate.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
