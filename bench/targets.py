"""Issue 16's targets 1 to 8, each with its figure from one run, met or not, and the
guarantees no change may weaken (memory, nothing lost). A figure from a run smaller than
the issue's sizes says so in its status ("met, small run"): only a full run answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report import scale_runs

MINIMAL_SHARE = 0.5
SOURCES_SPREAD = 0.10
NONE_SHARE, NONE_CPU_MS = 0.35, 0.3
BUSY_SHARE = 0.25
BUNDLE_LIMIT_S, FULL_BUNDLES = 5.0, 10_000
CLAIM_LIMIT_MS, FULL_WAITING = 1.0, 200_000
DRAIN_RATIO, FULL_DRAINS = 0.9, (1_000_000, 20_000)
TAKEOVER_LIMIT_S = 5.0
SCALE_COUNTS = (1, 2, 4)
RSS_LIMIT_MIB = 200.0


@dataclass(frozen=True)
class Goal:
    target: str
    figure: str
    ratio: str
    goal: str
    status: str
    """met, MISSED (either may add ", small run"), reported, not run, or error."""


def _verdict(ok: bool, full: bool = True) -> str:
    return ("met" if ok else "MISSED") + ("" if full else ", small run")


def _usable(result: Any) -> dict[str, Any] | None:
    """The phase's figures, or None if it did not run or failed."""
    return result if isinstance(result, dict) and "error" not in result else None


def _absent(target: str, goal: str, result: Any) -> Goal:
    return Goal(target, "-", "-", goal, "not run" if result is None else "error")


def targets(results: dict[str, Any]) -> list[Goal]:
    raw = results.get("raw", {}).get("requests_per_second")
    return [
        *_ingest_goals(results.get("ingest_alone"), results.get("sources_sqlite")),
        _none_goal(results.get("none_sqlite"), raw),
        _busy_goal(results.get("busy_chat"), raw),
        *(
            _bundle_goal(results.get(f"bundles_{key}"), label)
            for key, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL"))
        ),
        *_claim_goals(results.get("claims")),
        _recovery_goal(results.get("recovery")),
        *_scale_goals(results, raw),
        *_guarantees(results),
    ]


def _ingest_goals(alone: Any, single: Any) -> list[Goal]:
    """1 and 2: the ingest path alone (``chathooks api``) ÷ the minimal endpoint; 2 also
    reports the API under ``serve`` with a webhook (the worker shares the core)."""
    one, two = (
        "1 sources, ingest alone ÷ minimal",
        "2 POST /api/v1/messages, ingest alone ÷ minimal",
    )
    goal_one = f"≥ {MINIMAL_SHARE:.2f}, sources within {SOURCES_SPREAD:.0%}"
    goal_two = f"≥ {MINIMAL_SHARE:.2f}"
    if (done := _usable(alone)) is None:
        goals = [_absent(one, goal_one, alone), _absent(two, goal_two, alone)]
    else:
        minimal = done["minimal"]["msg_per_s"]
        rates = {k: done[k]["msg_per_s"] for k in ("whatsapp_cloud", "waha", "evolution")}
        cloud = rates["whatsapp_cloud"]
        spread = max(abs(rate / cloud - 1) for rate in rates.values())
        share = min(rates.values()) / minimal
        api = done["api"]
        goals = [
            Goal(
                one,
                f"Cloud API {cloud:,.0f}, WAHA {rates['waha']:,.0f}, Evolution "
                f"{rates['evolution']:,.0f} vs {minimal:,.0f} msg/s; spread {spread:.0%}",
                f"{share:.2f}",
                goal_one,
                _verdict(share >= MINIMAL_SHARE and spread <= SOURCES_SPREAD),
            ),
            Goal(
                two,
                f"{api['msg_per_s']:,.0f} vs {minimal:,.0f} msg/s; CPU "
                f"{api['cpu_ms_per_message']:.2f} ms",
                f"{api['ratio_to_minimal']:.2f}",
                goal_two,
                _verdict(api["ratio_to_minimal"] >= MINIMAL_SHARE),
            ),
        ]
    under = "2 the same under serve with a webhook ÷ minimal"
    if (done := _usable(single)) is None:
        return [*goals, _absent(under, "report", single)]
    api, minimal_run = done["api"], done["minimal"]
    return [
        *goals,
        Goal(
            under,
            f"{api['msg_per_s']:,.0f} vs {minimal_run['msg_per_s']:,.0f} msg/s; CPU "
            f"{api['cpu_ms_per_message']:.2f} ms",
            f"{api['msg_per_s'] / minimal_run['msg_per_s']:.2f}",
            "report",
            "reported",
        ),
    ]


def _none_goal(none: Any, raw: float | None) -> Goal:
    target = "3 none delivered, SQLite, serve ÷ raw"
    goal = f"≥ {NONE_SHARE:.2f}, ≤ {NONE_CPU_MS} ms CPU"
    if (done := _usable(none)) is None or not raw:
        return _absent(target, goal, none)
    rate, cpu = done["delivered_msg_per_s"], done["cpu_ms_per_message"]
    return Goal(
        target,
        f"{rate:,.0f} msg/s of {done['messages']:,}; CPU {cpu:.2f} ms",
        f"{rate / raw:.2f}",
        goal,
        _verdict(rate / raw >= NONE_SHARE and cpu <= NONE_CPU_MS),
    )


def _busy_goal(busy: Any, raw: float | None) -> Goal:
    target = "4 one busy chat ÷ raw, in order"
    goal = f"≥ {BUSY_SHARE:.2f}, in order"
    done = _usable(busy)
    if done is None or not raw or done["delivered_msg_per_s"] is None:
        return _absent(target, goal, busy)
    rate = done["delivered_msg_per_s"]
    in_order = done["complete"] and done["out_of_order"] == 0 and done["not_received"] == 0
    order = (
        "in order"
        if in_order
        else f"{done['out_of_order']} out of order, {done['not_received']} not received"
    )
    return Goal(
        target,
        f"{rate:,.0f} msg/s of {done['messages']:,}, {order}",
        f"{rate / raw:.2f}",
        goal,
        _verdict(rate / raw >= BUSY_SHARE and in_order),
    )


def _bundle_goal(bundle: Any, label: str) -> Goal:
    target = f"5 last of {FULL_BUNDLES:,} bundles after the period end, {label}"
    goal = f"≤ {BUNDLE_LIMIT_S:.0f} s"
    if (done := _usable(bundle)) is None:
        return _absent(target, goal, bundle)
    last = done["period_end_to_last_bundle_s"]
    return Goal(
        target,
        f"{last:.2f} s for {done['chats']:,}; CPU {done['bundle_cpu_ms_per_bundle']:.2f} "
        "ms per bundle",
        "-",
        goal,
        _verdict(last <= BUNDLE_LIMIT_S, done["chats"] >= FULL_BUNDLES),
    )


def _claim_goals(claims: Any) -> list[Goal]:
    """6: a claim costs the same whatever waits (``bench.claims``), per database."""
    behind = "6 healthy webhook's claim next to a backing-off one, p50"
    drain = "6 drain rate, large backlog ÷ small"
    behind_goal, drain_goal = f"< {CLAIM_LIMIT_MS:.0f} ms", f"≥ {DRAIN_RATIO:.2f}"
    if (done := _usable(claims)) is None:
        return [_absent(behind, behind_goal, claims), _absent(drain, drain_goal, claims)]
    goals = []
    for kind, figures in done.items():
        if not isinstance(figures, dict) or "drain_ratio" not in figures:
            continue
        b, large, small = (
            figures["behind_backing_off"],
            figures["drain_large"],
            figures["drain_small"],
        )
        waiting = b["waiting_behind_backing_off"]
        goals.append(
            Goal(
                f"{behind}, {kind}",
                f"p50 {b['claim_ms_p50']:.2f} / p99 {b['claim_ms_p99']:.2f} ms with "
                f"{waiting:,} waiting",
                "-",
                behind_goal,
                _verdict(b["claim_ms_p50"] < CLAIM_LIMIT_MS, waiting >= FULL_WAITING),
            )
        )
        sizes = (large["deliveries"], small["deliveries"])
        goals.append(
            Goal(
                f"{drain}, {kind}",
                f"{large['per_second']:,.0f} ({sizes[0]:,}) vs {small['per_second']:,.0f} "
                f"({sizes[1]:,}) deliveries/s; claim p50/p99 {large['claim_ms_p50']:.1f}/"
                f"{large['claim_ms_p99']:.1f} vs {small['claim_ms_p50']:.1f}/"
                f"{small['claim_ms_p99']:.1f} ms",
                f"{figures['drain_ratio']:.2f}",
                drain_goal,
                _verdict(figures["drain_ratio"] >= DRAIN_RATIO, sizes >= FULL_DRAINS),
            )
        )
    return goals


def _recovery_goal(recovery: Any) -> Goal:
    target = "7 PostgreSQL, kill -9 of a worker: its chats taken over"
    goal = f"≤ {TAKEOVER_LIMIT_S:.0f} s, in order, 0 lost"
    if (done := _usable(recovery)) is None:
        return _absent(target, goal, recovery)
    whole = done["not_received"] == 0 and done["out_of_order"] == 0
    return Goal(
        target,
        f"last of {done['chats']} chats after {done['takeover_s']:.2f} s (all delivered "
        f"{done['all_delivered_s']:.2f} s); {done['out_of_order']} out of order, "
        f"{done['not_received']} lost",
        "-",
        goal,
        _verdict(done["takeover_s"] <= TAKEOVER_LIMIT_S and whole),
    )


def _scale_goals(results: dict[str, Any], raw: float | None) -> list[Goal]:
    """8: msg/s and CPU per message for 1, 2 and 4 workers (a figure to report)."""
    runs = dict(scale_runs(results))
    goals = []
    for count in sorted(set(SCALE_COUNTS) | runs.keys()):
        target = f"8 PostgreSQL, api ingesting + {count} worker(s)"
        if (done := _usable(runs.get(count))) is None:
            goals.append(_absent(target, "report", runs.get(count)))
            continue
        rate, cpu = done["delivered_msg_per_s"], done["all_cpu_ms_per_message"]
        database, busy = done["database_cpu_ms_per_message"], done["machine_busy_share"]
        goals.append(
            Goal(
                target,
                f"{rate:,.0f} msg/s of {done['messages']:,}; CPU {cpu:.2f} ms (database "
                f"{database:.2f}); machine busy {busy:.0%}; workers alone "
                f"{done['drain_msg_per_s']:,.0f} msg/s",
                f"{rate / raw:.2f}" if raw else "-",
                "report",
                "reported",
            )
        )
    return goals


def _guarantees(results: dict[str, Any]) -> list[Goal]:
    """What no change may weaken: memory, and nothing lost in the backlog."""
    phases = [
        (key, result["peak_rss_mib"])
        for key, result in results.items()
        if _usable(result) and isinstance(result.get("peak_rss_mib"), float)
    ]
    goals = []
    target = "guarantee: peak RSS, every phase"
    if phases:
        name, peak = max(phases, key=lambda phase: phase[1])
        goals.append(
            Goal(
                f"{target} ({len(phases)})",
                f"{peak:.0f} MiB ({name})",
                "-",
                f"≤ {RSS_LIMIT_MIB:.0f} MiB",
                _verdict(peak <= RSS_LIMIT_MIB),
            )
        )
    else:
        goals.append(_absent(target, f"≤ {RSS_LIMIT_MIB:.0f} MiB", None))
    backlog = results.get("backlog")
    target = "guarantee: backlog, nothing lost"
    if (done := _usable(backlog)) is None:
        return [*goals, _absent(target, "0 lost", backlog)]
    return [
        *goals,
        Goal(
            f"guarantee: backlog of {done['messages']:,}, nothing lost, RSS flat",
            f"{done['not_received']:,} not received, {done['duplicates']:,} duplicates; "
            f"RSS end ÷ ¼ in {done['rss_growth']:.2f}",
            "-",
            "0 lost, ≤ 1.1",
            _verdict(done["complete"] and done["not_received"] == 0 and done["rss_flat"]),
        ),
    ]


def print_targets(goals: list[Goal]) -> None:
    print("\ntargets (issue 16)")
    widths = [max(len(str(getattr(g, f))) for g in goals) for f in ("target", "figure")]
    for g in goals:
        print(
            f"{g.target:<{widths[0]}}  {g.figure:<{widths[1]}}  {g.ratio:>5}  "
            f"{g.goal:<24}  {g.status}"
        )
