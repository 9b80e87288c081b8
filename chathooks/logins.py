"""Page logins, below the HTTP layers: password hashes, the session-signing secret, and
one-time set-password links (printed by the CLI, returned by the API, opened in a page)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from chathooks.runtime import Runtime
from chathooks.security import new_token
from chathooks.store import tenants
from chathooks.store.models import Teammate

MIN_PASSWORD_LENGTH = 8
SESSION_SECRET_KEY = "session_secret"
PASSWORD_LINK_MAX_AGE = 7 * 24 * 3600
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


def session_secret(rt: Runtime) -> str:
    """From configuration, else generated once and kept in the database across restarts."""
    if rt.settings.session_secret:
        return rt.settings.session_secret
    if not rt.session_secret:
        with rt.transaction() as session:
            secret = tenants.get_meta(session, SESSION_SECRET_KEY)
            if secret is None:
                secret = new_token("")
                tenants.set_meta(session, SESSION_SECRET_KEY, secret)
        rt.session_secret = secret
    return rt.session_secret


def _password_serializer(rt: Runtime) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(session_secret(rt), salt="set-password")


def password_link(rt: Runtime, teammate: Teammate) -> str:
    """A link that sets this teammate's password once: it dies when the password changes."""
    token = _password_serializer(rt).dumps([teammate.id, teammate.password_hash or ""])
    return f"{rt.settings.base_url}/set-password/{token}"


PasswordClaims = tuple[int, str]
"""What a set-password link says: the teammate, and the password hash it was made for."""


def password_token_claims(rt: Runtime, token: str) -> PasswordClaims | None:
    """Read a link's claims before any transaction (the secret may need one of its own)."""
    try:
        teammate_id, old_hash = _password_serializer(rt).loads(token, max_age=PASSWORD_LINK_MAX_AGE)
    except BadSignature:
        return None
    return int(teammate_id), str(old_hash)


def teammate_for_claims(session: Session, claims: PasswordClaims | None) -> Teammate | None:
    """The link's teammate, while their password is still the one the link was made for."""
    if claims is None:
        return None
    teammate = tenants.teammate_by_id(session, claims[0])
    if teammate is None or (teammate.password_hash or "") != claims[1]:
        return None
    return teammate
