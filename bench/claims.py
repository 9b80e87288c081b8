"""What a claim costs, whatever waits: the store's own claim and record, on a backlog
written straight into the database (no HTTP), on SQLite and PostgreSQL.

    .venv/bin/python -m bench.claims                      # 200,000 waiting; 1,000,000 vs 20,000
    .venv/bin/python -m bench.claims --waiting 20000 --drain-large 100000 --drain-small 10000

Two measurements, each on a fresh database:

- **behind a backing-off webhook**: ``--waiting`` pending deliveries of a webhook whose
  back-off has not ended, over 2,000 chats; next to it a healthy webhook gets a few new
  deliveries (``insert_singles``, as ingest queues them), and is claimed (``claim``, as
  the worker does) and recorded delivered (``mark_delivered``), ``--rounds`` times. The
  figure is the healthy webhook's claim time, p50 and p99.
- **drain**: a backlog over ``--chats`` chats (messages dealt to the chats in turn, like
  the backlog phase's ingest) claimed 500 at a time (the worker's batch and run length)
  and recorded delivered until none is left, for ``--drain-large`` and ``--drain-small``
  deliveries. The figures are deliveries/s and the claim time's p50/p99; the target is
  the large backlog's rate ÷ the small one's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text

from bench.common import percentile
from bench.config import Config
from bench.harness import create_database, drop_database
from chathooks.settings import Settings
from chathooks.store import deliveries
from chathooks.store.database import make_engine, make_sessionmaker, migrate, unit_of_work
from chathooks.store.dialect import table
from chathooks.store.models import Chat, Delivery, Teammate, Webhook, WhatsappAccount, Workspace

CLAIM_SIZE = 500
"""The worker's default claim batch and run length."""
LEASE = timedelta(seconds=60)
FILL_BATCH = 10_000


def _seed(engine: Engine, chats: int, webhooks: int) -> None:
    """A workspace, an account, ``chats`` chats and ``webhooks`` healthy webhooks."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(table(Workspace)),
            [
                dict(
                    id=1,
                    name="W",
                    owner_name="O",
                    owner_email="o@x.test",
                    api_token_hash="t",
                    created_at=now,
                )
            ],
        )
        conn.execute(
            insert(table(Teammate)),
            [dict(id=1, workspace_id=1, full_name="O", email="o@x.test", created_at=now)],
        )
        conn.execute(
            insert(table(WhatsappAccount)),
            [dict(id=1, workspace_id=1, phone="+1", teammate_id=1, created_at=now)],
        )
        conn.execute(
            insert(table(Chat)),
            [
                dict(
                    id=c,
                    workspace_id=1,
                    account_id=1,
                    external_id=f"c{c}",
                    full_name="C",
                    is_group=False,
                    phone="+2",
                    created_at=now,
                )
                for c in range(1, chats + 1)
            ],
        )
        conn.execute(
            insert(table(Webhook)),
            [
                dict(
                    id=w,
                    workspace_id=1,
                    url="http://127.0.0.1:9/",
                    aggregation="none",
                    filters={},
                    status="enabled",
                    secret="whsec_x",
                    status_changed_at=now,
                    created_at=now,
                )
                for w in range(1, webhooks + 1)
            ],
        )


def _fill(engine: Engine, webhook_id: int, count: int, chats: int) -> None:
    """``count`` pending deliveries dealt to the chats in turn, then their lanes' heads."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    with engine.begin() as conn:
        for start in range(0, count, FILL_BATCH):
            conn.execute(
                insert(table(Delivery)),
                [
                    dict(
                        uuid=f"{webhook_id}-{i}",
                        webhook_id=webhook_id,
                        chat_id=i % chats + 1,
                        message_id=i,
                        status="pending",
                        due_at=now,
                        aggregation="none",
                        created_at=now,
                    )
                    for i in range(start, min(start + FILL_BATCH, count))
                ],
            )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
        conn.execute(
            text(
                "INSERT INTO lanes (webhook_id, chat_id, head_id, due_at) "
                "SELECT webhook_id, chat_id, min(id), min(due_at) FROM deliveries "
                "WHERE status = 'pending' AND webhook_id = :w GROUP BY webhook_id, chat_id"
            ),
            {"w": webhook_id},
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, (time.perf_counter() - started) * 1000


def _claim_and_record(engine: Engine) -> tuple[int, float]:
    """One claim (timed: its statements, not the commit, which is the disk's cost), then
    the claimed recorded delivered."""
    sessions = make_sessionmaker(engine)
    with unit_of_work(sessions) as session:
        now = datetime.now(UTC)
        claimed, ms = _timed(
            lambda: deliveries.claim(session, now, lease=LEASE, limit=CLAIM_SIZE, run=CLAIM_SIZE)
        )
    ids = [c.id for c in claimed]
    with unit_of_work(sessions) as session:
        deliveries.mark_delivered(session, ids, datetime.now(UTC))
    return len(ids), ms


def behind_backing_off(url: str, waiting: int, rounds: int) -> dict[str, Any]:
    engine = make_engine(url)
    _seed(engine, chats=2_000, webhooks=2)
    _fill(engine, 1, waiting, 2_000)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE webhooks SET retry_at = :at WHERE id = 1"),
            {"at": (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None)},
        )
    sessions = make_sessionmaker(engine)
    times: list[float] = []
    claimed = 0
    for round_ in range(rounds):
        now = datetime.now(UTC)
        with unit_of_work(sessions) as session:
            deliveries.insert_singles(
                session,
                [
                    dict(
                        uuid=f"h-{round_}-{i}",
                        webhook_id=2,
                        chat_id=(round_ * 5 + i) % 2_000 + 1,
                        message_id=i,
                        status="pending",
                        due_at=now,
                        aggregation="none",
                        created_at=now,
                    )
                    for i in range(5)
                ],
            )
        count, ms = _claim_and_record(engine)
        claimed += count
        times.append(ms)
    engine.dispose()
    return {
        "waiting_behind_backing_off": waiting,
        "rounds": rounds,
        "healthy_claimed": claimed,
        "claim_ms_p50": round(percentile(times, 50) or 0.0, 3),
        "claim_ms_p99": round(percentile(times, 99) or 0.0, 3),
    }


def drain(url: str, count: int, chats: int) -> dict[str, Any]:
    engine = make_engine(url)
    _seed(engine, chats=chats, webhooks=1)
    _fill(engine, 1, count, chats)
    times: list[float] = []
    done = 0
    started = time.perf_counter()
    while True:
        claimed, ms = _claim_and_record(engine)
        if not claimed:
            break
        done += claimed
        times.append(ms)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "deliveries": count,
        "chats": chats,
        "drained": done,
        "seconds": round(seconds, 2),
        "per_second": round(done / seconds, 1),
        "claims": len(times),
        "claim_ms_p50": round(percentile(times, 50) or 0.0, 3),
        "claim_ms_p99": round(percentile(times, 99) or 0.0, 3),
    }


def _database(kind: str, tmp: Path, name: str) -> tuple[str, Callable[[], None]]:
    """A fresh, migrated database and how to remove it."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / name}.db"
        migrate(url)
        return url, lambda: None
    db = f"chathooks_bench_claims_{os.getpid()}_{name}"
    url = Settings(database_url=create_database(db)).database_url
    migrate(url)
    return url, lambda: drop_database(db)


def run_claims(
    tmp: Path,
    *,
    waiting: int,
    rounds: int,
    drain_large: int,
    drain_small: int,
    chats: int,
    kinds: tuple[str, ...],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in kinds:
        figures: dict[str, Any] = {}
        for name, measure in (
            ("behind_backing_off", lambda url: behind_backing_off(url, waiting, rounds)),
            ("drain_small", lambda url: drain(url, drain_small, chats)),
            ("drain_large", lambda url: drain(url, drain_large, chats)),
        ):
            print(f"   claims / {kind}: {name} ...", file=sys.stderr, flush=True)
            url, remove = _database(kind, tmp, name)
            try:
                figures[name] = measure(url)
            finally:
                remove()
        large, small = figures["drain_large"], figures["drain_small"]
        figures["drain_ratio"] = round(large["per_second"] / small["per_second"], 3)
        results[kind] = figures
    return results


async def phase_claims(tmp: Path, cfg: Config) -> dict[str, Any]:
    """For ``bench.run``: the measurements above, in a thread (they block)."""
    return await asyncio.to_thread(
        run_claims,
        tmp,
        waiting=cfg.claim_waiting,
        rounds=200,
        drain_large=cfg.drain_large,
        drain_small=cfg.drain_small,
        chats=cfg.drain_chats,
        kinds=("sqlite", "postgres") if cfg.postgres else ("sqlite",),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.claims", description=__doc__)
    parser.add_argument("--waiting", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--drain-large", type=int, default=1_000_000)
    parser.add_argument("--drain-small", type=int, default=20_000)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="chathooks-claims-"))
    try:
        results = run_claims(
            tmp,
            waiting=args.waiting,
            rounds=args.rounds,
            drain_large=args.drain_large,
            drain_small=args.drain_small,
            chats=args.chats,
            kinds=("sqlite",) if args.no_postgres else ("sqlite", "postgres"),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
