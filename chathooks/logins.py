"""Page logins, below the HTTP layers: logging in (limited, argon2 off the event loop),
password hashes, the session-signing secret, and one-time set-password links (printed by
the CLI, returned by the API, opened in a page)."""

from __future__ import annotations

import asyncio
import functools
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from chathooks import login_limits, page_sessions
from chathooks.runtime import Runtime
from chathooks.security import new_token
from chathooks.storable import text_problem
from chathooks.store import tenants
from chathooks.store.models import Teammate

MIN_PASSWORD_LENGTH = 8
SESSION_SECRET_KEY = "session_secret"
PASSWORD_LINK_MAX_AGE = 7 * 24 * 3600
HASHING_THREADS = 1
"""argon2 runs one hash at a time per process (each already uses several lanes), so logins
never take the CPU the API needs, however many arrive."""
HASHING_QUEUE = 32
"""Logins that may wait for the hashing thread; more are told to come back (429)."""
_hasher = PasswordHasher()
T = TypeVar("T")


class HashingBusy(Exception):
    """More logins wait for the hashing thread than ``HASHING_QUEUE``."""


class Hashing:
    """argon2's own thread: never the event loop, never the threads the API's routes use."""

    def __init__(self, threads: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="chathooks-argon2")
        self._queue = queue
        self._waiting = 0
        self._lock = threading.Lock()

    def run(self, work: Callable[[], T]) -> T:
        """From a worker thread or the CLI: waits for its turn."""
        return self._executor.submit(work).result()

    async def run_async(self, work: Callable[[], T]) -> T:
        """From the event loop; raises ``HashingBusy`` if too many are waiting already."""
        with self._lock:
            if self._waiting >= self._queue:
                raise HashingBusy()
            self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            with self._lock:
                self._waiting -= 1


hashing = Hashing(HASHING_THREADS, HASHING_QUEUE)


def set_password(session: Session, teammate: Teammate, password: str) -> None:
    """A new password, which ends every page session the teammate has."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    teammate.password_hash = hashing.run(functools.partial(_hasher.hash, password))
    page_sessions.end_all(session, teammate.id)


@functools.cache
def _dummy_hash() -> str:
    """Verified when an e-mail has no password to check, so that it takes as long."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def first_match(candidates: Sequence[tuple[int, str | None]], password: str) -> int | None:
    """The teammate (of those with this e-mail) whose password this is. Every candidate is
    verified, one without a password against a dummy hash, and at least one hash always
    is: the time taken does not tell whether the e-mail is known or has a password."""
    found = None
    for teammate_id, password_hash in candidates or [(0, None)]:
        matches = _matches(password_hash or _dummy_hash(), password)
        if matches and password_hash and found is None:
            found = teammate_id
    return found


@dataclass(frozen=True, slots=True)
class LoginResult:
    """``session_token`` when logged in; ``retry_after`` (seconds) when refused by a limit."""

    session_token: str | None = None
    retry_after: int | None = None


async def log_in(rt: Runtime, email: str, password: str, address: str) -> LoginResult:
    """Count the attempt against the e-mail's and the address's limits, then (if allowed)
    verify the password on the hashing thread and start a page session."""
    email = email.strip().lower()
    limit = login_limits.keys(email, address)

    def admit() -> tuple[int | None, list[tuple[int, str | None]]]:
        with rt.transaction() as session:
            wait = login_limits.admit(session, limit, rt.clock.now(), rt.settings)
            if wait is not None or text_problem(email):
                return wait, []
            found = tenants.teammates_by_email_anywhere(session, email)
            return None, [(t.id, t.password_hash) for t in found]

    wait, candidates = await asyncio.to_thread(admit)
    if wait is not None:
        return LoginResult(retry_after=wait)
    try:
        teammate_id = await hashing.run_async(functools.partial(first_match, candidates, password))
    except HashingBusy:
        return LoginResult(retry_after=1)
    if teammate_id is None:
        return LoginResult()

    def start(teammate_id: int) -> str:
        with rt.transaction() as session:
            login_limits.succeeded(session, limit)
            return page_sessions.start(session, teammate_id, rt.clock.now())

    return LoginResult(session_token=await asyncio.to_thread(start, teammate_id))


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
