"""How many login attempts an e-mail and a client address may make: counted in the
database, so the limits hold across every ``chathooks api`` process, and checked before any
password is hashed, so refused attempts cost no argon2 work."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from chathooks.settings import Settings
from chathooks.store import login_counters

WINDOW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class LimitKeys:
    account: str
    address: str


def keys(email: str, address: str) -> LimitKeys:
    """Hashed, so any text fits the key column and no e-mail or address is stored."""
    return LimitKeys(_key("account", email), _key("address", address))


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode("utf-8", "backslashreplace")).hexdigest()


def admit(session: Session, limit: LimitKeys, now: datetime, settings: Settings) -> int | None:
    """Count this attempt; None if it may go on, else the seconds until it may be retried."""
    login_counters.prune(session, now - WINDOW)
    waits = []
    for key, allowed in (
        (limit.account, settings.login_attempts_per_account),
        (limit.address, settings.login_attempts_per_address),
    ):
        attempts, started = login_counters.count_attempt(session, key, now, WINDOW)
        if attempts > allowed:
            waits.append(max(1, math.ceil((started + WINDOW - now).total_seconds())))
    return max(waits, default=None)


def succeeded(session: Session, limit: LimitKeys) -> None:
    """The account starts afresh; the address gets this attempt back (an office behind one
    address logs in all day), but keeps counting the failed ones."""
    login_counters.forget(session, limit.account)
    login_counters.uncount(session, limit.address)
