"""Bench-only launcher: ``chathooks serve`` with a clock the benchmark can move.

Builds the runtime exactly as ``chathooks serve`` does (``migrate``, ``build_runtime``,
``create_app(rt, run_worker=True)``, uvicorn), but with an :class:`OffsetClock` that starts
just after the beginning of the current aggregation period (so a run never straddles a
period boundary by accident). ``SIGUSR1`` moves the clock to the end of the current
period and wakes the worker: that instant is "period end" for the benchmark. ``SIGUSR2``
moves the clock ``BENCH_ADVANCE_SECONDS`` (default 26 h) ahead, for the retention soak.

Run as ``python -m bench.service`` with the usual ``CHATHOOKS_*`` environment and
``BENCH_AGGREGATION`` (default ``1h``).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from types import FrameType

import uvicorn

from chathooks.admin import ensure_admin_token
from chathooks.app import create_app
from chathooks.memory import limit_malloc_arenas
from chathooks.runtime import Runtime, build_runtime
from chathooks.schedule import period_of
from chathooks.settings import Settings
from chathooks.store.database import migrate


class OffsetClock:
    """System time plus an offset in seconds (a float: reads and writes are atomic)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def start_of_period(self, aggregation: str, margin: float = 1.0) -> None:
        """Move to ``margin`` seconds after the current period's start."""
        start, _ = period_of(aggregation, self.now())
        self.offset += (start - self.now()).total_seconds() + margin

    def end_period(self, aggregation: str, margin: float = 0.001) -> None:
        """Move to just past the current period's end."""
        _, end = period_of(aggregation, self.now())
        self.offset += (end - self.now()).total_seconds() + margin


def _on_period_end(rt: Runtime, clock: OffsetClock, aggregation: str) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        clock.end_period(aggregation)
        rt.wake_local()
        print(f"bench: clock moved to {clock.now().isoformat()}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGUSR1, handler)


def _on_advance(clock: OffsetClock, seconds: float) -> None:
    """SIGUSR2 moves the clock ``seconds`` ahead (the retention soak's next "day")."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        clock.offset += seconds
        print(f"bench: clock moved to {clock.now().isoformat()}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGUSR2, handler)


def main() -> None:
    aggregation = os.environ.get("BENCH_AGGREGATION", "1h")
    settings = Settings()
    limit_malloc_arenas()
    migrate(settings.database_url)
    clock = OffsetClock()
    clock.start_of_period(aggregation)
    rt = build_runtime(settings, clock=clock)
    with rt.transaction() as session:
        ensure_admin_token(session, settings)
    _on_period_end(rt, clock, aggregation)
    _on_advance(clock, float(os.environ.get("BENCH_ADVANCE_SECONDS", str(26 * 3600))))
    print(f"bench: clock starts at {clock.now().isoformat()}", file=sys.stderr, flush=True)
    uvicorn.run(
        create_app(rt, run_worker=True),
        host=settings.host,
        port=settings.port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
