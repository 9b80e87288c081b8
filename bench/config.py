"""The benchmark's options: one frozen :class:`Config` for every phase."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    raw_requests: int
    concurrency: int
    messages: int
    chats: int
    bundle_chats: int
    per_chat: int
    batch_size: int
    phase_timeout: float
    postgres: bool
    profile: bool
    ingest_concurrency: int
    source_messages: int
    source_concurrency: int
    busy_messages: int
    hot_path: bool
    operations: bool
    backlog: bool
    backlog_messages: int
    backlog_chats: int
    backlog_timeout: float
    steady_seconds: float
    soak_cycles: int
    soak_messages: int
    flood_requests: int
    flood_bytes: int
    flood_probes: int
    claims: bool
    claim_waiting: int
    drain_large: int
    drain_small: int
    drain_chats: int
    scale: bool
    scale_messages: int
    scale_workers: tuple[int, ...]
    sends: bool
    send_messages: int
    send_chats: int
    send_concurrency: int

    @property
    def run_timeout(self) -> float:
        """The whole run's hard limit: every phase's own, with room to spare."""
        return self.phase_timeout * 19 + self.backlog_timeout + 300


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="chathooks against the machine's raw limit and issue 16's targets.",
    )
    parser.add_argument("--quick", action="store_true", help="small N: a sanity run (~3 min)")
    parser.add_argument("--raw-requests", type=int, help="requests in the raw phase")
    parser.add_argument("--messages", type=int, help="messages in the none phase")
    parser.add_argument("--bundle-chats", type=int, help="chats in the bundle phases")
    parser.add_argument("--concurrency", type=int, default=64, help="raw client in flight")
    parser.add_argument(
        "--ingest-concurrency", type=int, default=2, help="batch POSTs in flight during ingest"
    )
    parser.add_argument(
        "--source-messages", type=int, help="messages per single-message run (minimal, API, source)"
    )
    parser.add_argument(
        "--source-concurrency", type=int, default=16, help="requests in flight, one message each"
    )
    parser.add_argument(
        "--flood-requests", type=int, default=16, help="forged requests in flight in the flood"
    )
    parser.add_argument(
        "--flood-bytes", type=int, help="size of each forged request (8 MiB; 64 KiB quick)"
    )
    parser.add_argument("--flood-probes", type=int, help="API requests timed per flood run")
    parser.add_argument("--busy-messages", type=int, help="messages in the one busy chat")
    parser.add_argument("--backlog-messages", type=int, help="messages in the backlog phase")
    parser.add_argument(
        "--backlog-chats", type=int, default=10_000, help="chats the backlog is spread over"
    )
    parser.add_argument(
        "--backlog-timeout", type=float, default=3_600.0, help="the backlog phase's limit (s)"
    )
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="every other phase's")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL phases")
    parser.add_argument("--no-backlog", action="store_true", help="skip the backlog phase")
    parser.add_argument(
        "--only",
        choices=("hot-path", "operations", "backlog", "claims", "scale", "sends"),
        help="run only the throughput phases, the operations phases, the backlog phase, "
        "the scale-out and recovery phases on PostgreSQL, the sends through each kind of "
        "source (each with the raw limit), or the claim measurements (bench.claims)",
    )
    parser.add_argument("--no-sends", action="store_true", help="skip the sends phase")
    parser.add_argument(
        "--send-messages", type=int, help="sends per kind in the sends phase (2,000; quick 300)"
    )
    parser.add_argument(
        "--send-chats", type=int, default=32, help="chats (phone numbers) the sends go to"
    )
    parser.add_argument(
        "--send-concurrency",
        type=int,
        default=16,
        help="CHATHOOKS_SEND_CONCURRENCY in the sends phase, and the raw client's in flight",
    )
    parser.add_argument(
        "--no-scale", action="store_true", help="skip the scale-out and recovery phases"
    )
    parser.add_argument(
        "--scale-messages", type=int, help="messages per scale-out run (20,000; quick 3,000)"
    )
    parser.add_argument(
        "--scale-workers",
        default="1,2,4",
        help="worker counts of the scale-out runs, comma-separated (default 1,2,4)",
    )
    parser.add_argument("--no-claims", action="store_true", help="skip the claim measurements")
    parser.add_argument(
        "--claim-waiting", type=int, help="deliveries behind the backing-off webhook (claims)"
    )
    parser.add_argument("--drain-large", type=int, help="the large backlog drained (claims)")
    parser.add_argument("--drain-small", type=int, help="the small backlog drained (claims)")
    parser.add_argument(
        "--drain-chats", type=int, default=10_000, help="chats the drained backlogs span"
    )
    parser.add_argument("--steady-seconds", type=float, help="length of each steady phase")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each chathooks process with py-spy (if installed) into bench/results/",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    messages = args.messages or (3_000 if quick else 20_000)
    backlog_messages = args.backlog_messages or (20_000 if quick else 1_000_000)
    return Config(
        raw_requests=args.raw_requests or (5_000 if quick else 30_000),
        concurrency=args.concurrency,
        messages=messages,
        chats=max(1, messages // 10),
        bundle_chats=args.bundle_chats or (1_000 if quick else 10_000),
        per_chat=10,
        batch_size=1_000,
        phase_timeout=args.phase_timeout,
        postgres=not args.no_postgres,
        profile=args.profile,
        ingest_concurrency=args.ingest_concurrency,
        source_messages=args.source_messages or (1_000 if quick else 5_000),
        source_concurrency=args.source_concurrency,
        busy_messages=args.busy_messages or (1_000 if quick else 5_000),
        hot_path=args.only in (None, "hot-path"),
        operations=args.only in (None, "operations"),
        backlog=args.only == "backlog" or (args.only is None and not args.no_backlog),
        backlog_messages=backlog_messages,
        backlog_chats=max(1, min(args.backlog_chats, backlog_messages // 10)),
        backlog_timeout=args.backlog_timeout,
        steady_seconds=args.steady_seconds or (10.0 if quick else 30.0),
        soak_cycles=4 if quick else 6,
        soak_messages=2_000 if quick else 10_000,
        flood_requests=args.flood_requests,
        flood_bytes=args.flood_bytes or (64 * 1024 if quick else 8 * 1024 * 1024),
        flood_probes=args.flood_probes or (50 if quick else 300),
        claims=args.only == "claims" or (args.only is None and not args.no_claims),
        claim_waiting=args.claim_waiting or (20_000 if quick else 200_000),
        drain_large=args.drain_large or (100_000 if quick else 1_000_000),
        drain_small=args.drain_small or 20_000,
        drain_chats=args.drain_chats,
        scale=_scale_wanted(args),
        scale_messages=args.scale_messages or (3_000 if quick else 20_000),
        scale_workers=_counts(parser, args.scale_workers),
        sends=args.only == "sends" or (args.only is None and not args.no_sends),
        send_messages=args.send_messages or (300 if quick else 2_000),
        send_chats=max(1, args.send_chats),
        send_concurrency=max(1, args.send_concurrency),
    )


def _scale_wanted(args: argparse.Namespace) -> bool:
    """The scale-out phases need PostgreSQL."""
    wanted = args.only == "scale" or (args.only is None and not args.no_scale)
    return wanted and not args.no_postgres


def _counts(parser: argparse.ArgumentParser, text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1 or max(counts) > 16:
        parser.error(f"--scale-workers: {text!r} is not a list of counts from 1 to 16 (1,2,4)")
    return counts
