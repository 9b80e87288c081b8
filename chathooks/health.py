"""Liveness and readiness: is the process up, and can it do its work right now?"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import cache

from chathooks.runtime import Runtime
from chathooks.store import stats
from chathooks.store.database import head_revision

WORKER_LOOP_WITHIN_SECONDS = 30.0
DATABASE_ANSWER_SECONDS = 3.0


@dataclass
class Heartbeat:
    """The delivery loop beats on every turn; readiness wants a beat in the last 30 s."""

    last: float = 0.0

    def beat(self) -> None:
        self.last = time.monotonic()

    def recent(self) -> bool:
        return time.monotonic() - self.last < WORKER_LOOP_WITHIN_SECONDS


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]


@cache
def _head() -> str | None:
    return head_revision()


def _schema(rt: Runtime) -> str:
    with rt.transaction() as session:
        current = stats.schema_revision(session)
    head = _head()
    return "ok" if current == head else f"schema is at {current}, this code needs {head}"


async def readiness(rt: Runtime, heartbeat: Heartbeat | None) -> Readiness:
    """The database answers (within 3 s) with the current schema, and the worker (if this
    process runs one) has turned its loop in the last 30 s."""
    checks: dict[str, str] = {}
    try:
        checks["database"] = await asyncio.wait_for(
            asyncio.to_thread(_schema, rt), DATABASE_ANSWER_SECONDS
        )
    except TimeoutError:
        checks["database"] = f"no answer within {DATABASE_ANSWER_SECONDS:g} s"
    except Exception as error:
        checks["database"] = f"unavailable: {type(error).__name__}"
    if heartbeat is not None:
        checks["worker"] = (
            "ok"
            if heartbeat.recent()
            else f"delivery loop idle for over {WORKER_LOOP_WITHIN_SECONDS:g} s"
        )
    return Readiness(all(v == "ok" for v in checks.values()), checks)
