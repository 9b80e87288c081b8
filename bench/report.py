"""The printed table (every figure, with its ratio to the raw limit and the CPU per message
next to each rate) and issue 9's targets, met or missed, from one run's results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = tuple[str, str, str, str]
"""metric, value, ÷ raw, CPU ms per message (every chathooks process)."""

RSS_LIMIT_MIB = 200.0
BUNDLE_LIMIT_S = 5.0


def _fmt(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _cpu(result: dict[str, Any], key: str = "cpu_ms_per_message") -> str:
    return _fmt(result.get(key), 2)


def _error_row(name: str, result: dict[str, Any]) -> list[Row]:
    return [(name, str(result["error"])[:70], "", "")]


def table(results: dict[str, Any]) -> list[Row]:
    raw = results["raw"].get("requests_per_second")

    def ratio(value: Any) -> str:
        return "-" if value is None or not raw else f"{value / raw:.2f}"

    runs = " / ".join(_fmt(r, 0) for r in results["raw"].get("runs_requests_per_second", []))
    rows: list[Row] = [
        ("raw limit (req/s, aiohttp client, c=64)", _fmt(raw), "1.00", ""),
        ("raw runs before / after (req/s)", runs, "", ""),
    ]
    sections: list[tuple[str, Callable[[dict[str, Any], Callable[[Any], str]], list[Row]]]] = [
        ("none_sqlite", _none_rows),
        ("busy_chat", _busy_rows),
        ("bundles_sqlite", _bundle_rows),
        ("bundles_postgres", _bundle_rows),
        ("sources_sqlite", _single_rows),
        ("ingest_alone", _alone_rows),
        ("flood", _flood_rows),
    ]
    for key, make in sections:
        if key in results:
            rows += (
                _error_row(key, results[key])
                if "error" in results[key]
                else make(results[key], ratio)
            )
    rows += _operations_rows(results)
    if "backlog" in results:
        backlog = results["backlog"]
        rows += _error_row("backlog", backlog) if "error" in backlog else _backlog_rows(backlog)
    return rows


def _none_rows(none: dict[str, Any], ratio: Callable[[Any], str]) -> list[Row]:
    lat = none["latency_ms_from_accept"]
    return [
        (
            "none/SQLite ingest (msg/s)",
            _fmt(none["ingest_msg_per_s"]),
            ratio(none["ingest_msg_per_s"]),
            "",
        ),
        (
            "none/SQLite delivered (msg/s)",
            _fmt(none["delivered_msg_per_s"]),
            ratio(none["delivered_msg_per_s"]),
            _cpu(none),
        ),
        (
            "none/SQLite latency p50 / p99 (ms)",
            f"{_fmt(lat['p50'], 0)} / {_fmt(lat['p99'], 0)}",
            "",
            "",
        ),
        ("none/SQLite peak RSS (MiB)", _fmt(none["peak_rss_mib"]), "", ""),
    ]


def _busy_rows(busy: dict[str, Any], ratio: Callable[[Any], str]) -> list[Row]:
    name = f"one chat of {busy['messages']:,}"
    done = "" if busy["complete"] else f" (only {busy['received']:,} by the deadline)"
    return [
        (
            f"{name} delivered (msg/s){done}",
            _fmt(busy["delivered_msg_per_s"]),
            ratio(busy["delivered_msg_per_s"]),
            _cpu(busy),
        ),
        (
            f"{name}: not received / duplicates / out of order",
            f"{busy['not_received']} / {busy['duplicates']} / {busy['out_of_order']}",
            "",
            "",
        ),
        (f"{name} peak RSS (MiB)", _fmt(busy["peak_rss_mib"]), "", ""),
    ]


def _bundle_rows(bundle: dict[str, Any], ratio: Callable[[Any], str]) -> list[Row]:
    label = "PostgreSQL" if bundle["database"] == "postgres" else "SQLite"
    return [
        (
            f"bundles/{label} ingest (msg/s)",
            _fmt(bundle["ingest_msg_per_s"]),
            "",
            _cpu(bundle, "ingest_cpu_ms_per_message"),
        ),
        (
            f"bundles/{label} delivered (bundles/s; CPU per bundle)",
            _fmt(bundle["bundles_per_s"]),
            ratio(bundle["bundles_per_s"]),
            _cpu(bundle, "bundle_cpu_ms_per_bundle"),
        ),
        (
            f"bundles/{label} period end → first / last bundle (s)",
            f"{_fmt(bundle['period_end_to_first_bundle_s'], 2)} / "
            f"{_fmt(bundle['period_end_to_last_bundle_s'], 2)}",
            "",
            "",
        ),
        (f"bundles/{label} CPU per message, all (ms)", "", "", _cpu(bundle)),
        (f"bundles/{label} peak RSS (MiB)", _fmt(bundle["peak_rss_mib"]), "", ""),
    ]


def _single_rows(single: dict[str, Any], _ratio: Callable[[Any], str]) -> list[Row]:
    minimal = single["minimal"]
    rows: list[Row] = [
        (
            "one per request, minimal FastAPI + SQLite (msg/s)",
            _fmt(minimal["msg_per_s"]),
            "",
            _cpu(minimal),
        )
    ]
    for label, name in (("api", "POST /api/v1/messages"), ("source", "Cloud API source")):
        half = single[label]
        lat = half["latency_ms_from_answer"]
        rows += [
            (f"one per request, {name} (msg/s)", _fmt(half["msg_per_s"]), "", _cpu(half)),
            (
                f"one per request, {name}: CPU until the answers (ms/msg)",
                "",
                "",
                _cpu(half, "cpu_ms_per_message_to_answer"),
            ),
            (
                f"one per request, {name}: answer → receipt p50 / p99 (ms)",
                f"{_fmt(lat['p50'], 0)} / {_fmt(lat['p99'], 0)}",
                "",
                "",
            ),
        ]
    api, source = single["api"], single["source"]
    rows += [
        ("single-message API ÷ minimal FastAPI (msg/s)", _ratio_of(api, minimal), "", ""),
        ("Cloud API source ÷ single-message API (msg/s)", _ratio_of(source, api), "", ""),
        (
            "one per request peak RSS (MiB)",
            _fmt(max(api["peak_rss_mib"], source["peak_rss_mib"])),
            "",
            "",
        ),
    ]
    return rows


ALONE = {
    "api": "POST /api/v1/messages",
    "whatsapp_cloud": "Cloud API source",
    "waha": "WAHA source",
    "evolution": "Evolution source",
}


def _alone_rows(alone: dict[str, Any], _ratio: Callable[[Any], str]) -> list[Row]:
    """Issue 16's targets 1 and 2: the ingest path alone (``chathooks api``) ÷ minimal."""
    minimal = alone["minimal"]
    rows: list[Row] = [
        ("ingest alone: minimal FastAPI + SQLite (msg/s)", _fmt(minimal["msg_per_s"]), "", "")
    ]
    for key, name in ALONE.items():
        run = alone[key]
        rows.append(
            (
                f"ingest alone: {name} (msg/s, ÷ minimal {run['ratio_to_minimal']:.2f})",
                _fmt(run["msg_per_s"]),
                "",
                _cpu(run),
            )
        )
    return rows


def _flood_rows(flood: dict[str, Any], _ratio: Callable[[Any], str]) -> list[Row]:
    """Issue 15: the API's median answer and serve's memory, flood ÷ idle (≤ 1.2)."""
    idle, flooded = flood["idle"], flood["flood"]
    what = f"{flood['flood_requests']} × {flood['flood_bytes'] / 2**20:.2f} MiB forged"
    return [
        (
            f"API median answer, idle → {what} (ms, ÷ {flood['median_ratio']:.2f})",
            f"{_fmt(idle['median_ms'])} → {_fmt(flooded['median_ms'])}",
            "",
            "",
        ),
        (
            f"serve RSS, idle → {what} (MiB, ÷ {flood['rss_ratio']:.2f})",
            f"{_fmt(idle['rss_mib'])} → {_fmt(flooded['rss_mib'])}",
            "",
            "",
        ),
    ]


def _ratio_of(a: dict[str, Any], b: dict[str, Any]) -> str:
    return f"{a['msg_per_s'] / b['msg_per_s']:.2f}"


def _operations_rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for key, result in results.items():
        if not key.startswith("steady_"):
            continue
        name = f"steady {result.get('setup', key)} @ {result.get('rate_msg_per_s', 0):.0f}/s"
        if "error" in result:
            out += _error_row(name, result)
            continue
        lat = result["latency_ms_from_post_start"]
        answer, after = result["post_answer_ms"], result["latency_ms_from_answer"]
        out += [
            (
                f"{name} p50 / p99 / max (ms)",
                f"{_fmt(lat['p50'], 0)} / {_fmt(lat['p99'], 0)} / {_fmt(lat['max'], 0)}",
                "",
                _cpu(result),
            ),
            (
                f"{name} POST answer p50 / p99 (ms)",
                f"{_fmt(answer['p50'], 0)} / {_fmt(answer['p99'], 0)}",
                "",
                "",
            ),
            (
                f"{name} answer → receipt p50 / p99 (ms)",
                f"{_fmt(after['p50'], 0)} / {_fmt(after['p99'], 0)}",
                "",
                "",
            ),
            (f"{name} lost / duplicates", f"{result['lost']} / {result['duplicates']}", "", ""),
            (f"{name} peak RSS (MiB)", _fmt(result["peak_rss_mib"]), "", ""),
        ]
    serve = results.get("steady_serve_100", {})
    for setup in ("api+worker", "2 api+worker"):
        scaled = results.get(f"steady_{setup}_100", {})
        if "latency_ms_from_post_start" in serve and "latency_ms_from_post_start" in scaled:
            p99 = scaled["latency_ms_from_post_start"]["p99"]
            ratio = p99 / serve["latency_ms_from_post_start"]["p99"]
            out.append((f"p99 at 100/s: {setup}/PostgreSQL ÷ serve/SQLite", f"{ratio:.2f}", "", ""))
    for key in ("workers_1", "workers_2"):
        result = results.get(key)
        if result is None:
            continue
        name = f"PostgreSQL, {key[-1]} worker(s)"
        if "error" in result:
            out += _error_row(name, result)
            continue
        out += [
            (
                f"{name} delivered (msg/s; CPU: the workers)",
                _fmt(result["delivered_msg_per_s"], 0),
                "",
                _cpu(result),
            ),
            (f"{name} peak RSS, the workers (MiB)", _fmt(result["peak_rss_mib"]), "", ""),
        ]
    soak = results.get("retention_soak")
    if soak is not None:
        if "error" in soak:
            out += _error_row("retention soak", soak)
        else:
            sizes = " → ".join(f"{s['file_bytes'] / 2**20:.1f}" for s in soak["steps"])
            rss = " → ".join(f"{s['rss_mib']:.0f}" for s in soak["steps"])
            out += [
                ("retention soak: database MiB per cycle", sizes, "", _cpu(soak)),
                ("retention soak: RSS MiB per cycle", rss, "", ""),
                ("retention soak peak RSS (MiB)", _fmt(soak["peak_rss_mib"]), "", ""),
            ]
    return out


def _window(rss: dict[str, Any]) -> str:
    return " → ".join(_fmt(rss[k], 0) for k in ("start", "mid", "end"))


def _backlog_rows(backlog: dict[str, Any]) -> list[Row]:
    name = f"backlog of {backlog['messages']:,}"
    done = "" if backlog["complete"] else f" (only {backlog['received']:,} by the deadline)"
    return [
        (
            f"{name}, receiver down: ingest (msg/s)",
            _fmt(backlog["ingest_msg_per_s"]),
            "",
            _cpu(backlog, "ingest_cpu_ms_per_message"),
        ),
        (
            f"{name}: drain after the outage (msg/s){done}",
            _fmt(backlog["drain_msg_per_s"]),
            "",
            _cpu(backlog, "drain_cpu_ms_per_message"),
        ),
        (
            f"{name}: not received / duplicates",
            f"{backlog['not_received']:,} / {backlog['duplicates']:,}",
            "",
            _cpu(backlog),
        ),
        (
            f"{name}: RSS during ingest, start → mid → end (MiB)",
            _window(backlog["rss_mib_ingest"]),
            "",
            "",
        ),
        (
            f"{name}: RSS during drain, start → mid → end (MiB)",
            _window(backlog["rss_mib_drain"]),
            "",
            "",
        ),
        (
            f"{name}: RSS at the end ÷ a quarter into the ingest",
            _fmt(backlog["rss_growth"], 2),
            "",
            "",
        ),
        (f"{name} peak RSS (MiB)", _fmt(backlog["peak_rss_mib"]), "", ""),
        (
            f"{name}: 503s answered; webhook status at resume",
            f"{backlog['refused_during_outage']}; {backlog['webhook_status_at_resume']}",
            "",
            "",
        ),
        (
            f"{name}: database after ingest (MiB)",
            _fmt(backlog["database_mib_after_ingest"], 0),
            "",
            "",
        ),
    ]


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Goal:
    target: str
    figure: str
    ratio: str
    goal: str
    status: str
    """met, MISSED, not run, or error."""


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _usable(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The phase's figures, or None if it did not run or failed."""
    return result if result is not None and "error" not in result else None


def _absent(target: str, goal: str, result: dict[str, Any] | None) -> Goal:
    return Goal(target, "-", "-", goal, "not run" if result is None else "error")


def chathooks_phases(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every phase's figures for chathooks' own processes (not the raw client's or the
    minimal endpoint's), by phase name; a phase that failed is left out."""
    found = []
    for key, result in results.items():
        if not isinstance(result, dict) or not _usable(result):
            continue
        if key == "sources_sqlite":
            found += [(f"{key}/{half}", result[half]) for half in ("api", "source")]
        elif "peak_rss_mib" in result:
            found.append((key, result))
    return found


def targets(results: dict[str, Any]) -> list[Goal]:
    raw = results["raw"].get("requests_per_second")
    goals = [_single_goal(results.get("sources_sqlite"))]
    none = results.get("none_sqlite")
    if (done := _usable(none)) and raw:
        rate = done["delivered_msg_per_s"]
        goals.append(
            Goal(
                "2 none delivered, SQLite, serve ÷ raw",
                f"{rate:,.0f} msg/s",
                f"{rate / raw:.2f}",
                "≥ 0.50",
                _verdict(rate / raw >= 0.5),
            )
        )
    else:
        goals.append(_absent("2 none delivered ÷ raw", "≥ 0.50", none))
    goals.append(_busy_goal(results.get("busy_chat"), raw))
    for key, label in (("bundles_sqlite", "SQLite"), ("bundles_postgres", "PostgreSQL")):
        bundle = results.get(key)
        target = f"4 bundles, {label}: last bundle after period end"
        if done := _usable(bundle):
            last = done["period_end_to_last_bundle_s"]
            goals.append(
                Goal(
                    target,
                    f"{last:.2f} s ({done['chats']:,} chats)",
                    f"{done['bundles_per_s'] / raw:.2f}" if raw else "-",
                    f"≤ {BUNDLE_LIMIT_S:.0f} s",
                    _verdict(last <= BUNDLE_LIMIT_S),
                )
            )
        else:
            goals.append(_absent(target, f"≤ {BUNDLE_LIMIT_S:.0f} s", bundle))
    goals += _memory_goals(results)
    goals.append(_cpu_goal(results))
    goals += _claim_goals(results.get("claims"))
    return goals


CLAIM_LIMIT_MS = 1.0
DRAIN_RATIO = 0.9


def _claim_goals(claims: dict[str, Any] | None) -> list[Goal]:
    """Issue 16's sixth: a claim costs the same whatever waits (``bench.claims``)."""
    behind = "claim of a healthy webhook next to a backing-off one, p50"
    drain = "drain rate, large backlog ÷ small"
    done = _usable(claims)
    if done is None:
        return [
            _absent(behind, f"< {CLAIM_LIMIT_MS:.0f} ms", claims),
            _absent(drain, f"≥ {DRAIN_RATIO:.2f}", claims),
        ]
    goals = []
    for kind, figures in done.items():
        if not isinstance(figures, dict) or "drain_ratio" not in figures:
            continue
        b, large, small = (
            figures["behind_backing_off"],
            figures["drain_large"],
            figures["drain_small"],
        )
        goals.append(
            Goal(
                f"{behind}, {kind}",
                f"{b['claim_ms_p50']:.2f} ms (p99 {b['claim_ms_p99']:.2f}) with "
                f"{b['waiting_behind_backing_off']:,} waiting",
                "-",
                f"< {CLAIM_LIMIT_MS:.0f} ms",
                _verdict(b["claim_ms_p50"] < CLAIM_LIMIT_MS),
            )
        )
        goals.append(
            Goal(
                f"{drain}, {kind}",
                f"{large['per_second']:,.0f} ({large['deliveries']:,}) vs "
                f"{small['per_second']:,.0f} ({small['deliveries']:,}) deliveries/s; claim "
                f"p50/p99 {large['claim_ms_p50']:.1f}/{large['claim_ms_p99']:.1f} ms",
                f"{figures['drain_ratio']:.2f}",
                f"≥ {DRAIN_RATIO:.2f}",
                _verdict(figures["drain_ratio"] >= DRAIN_RATIO),
            )
        )
    return goals


def _single_goal(single: dict[str, Any] | None) -> Goal:
    target = "1 single-message ingest ÷ minimal FastAPI"
    done = _usable(single)
    if done is None:
        return _absent(target, "≥ 0.50", single)
    api, minimal = done["api"], done["minimal"]
    ratio = api["msg_per_s"] / minimal["msg_per_s"]
    return Goal(
        target,
        f"{api['msg_per_s']:,.0f} vs {minimal['msg_per_s']:,.0f} msg/s; CPU "
        f"{api['cpu_ms_per_message']:.2f} vs {minimal['cpu_ms_per_message']:.2f} ms",
        f"{ratio:.2f}",
        "≥ 0.50",
        _verdict(ratio >= 0.5),
    )


def _busy_goal(busy: dict[str, Any] | None, raw: float | None) -> Goal:
    target = "3 one busy chat ÷ raw, in order"
    done = _usable(busy)
    if done is None or not raw or done["delivered_msg_per_s"] is None:
        return _absent(target, "≥ 0.25, in order", busy)
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
        "≥ 0.25, in order",
        _verdict(rate / raw >= 0.25 and in_order),
    )


def _memory_goals(results: dict[str, Any]) -> list[Goal]:
    phases = chathooks_phases(results)
    goals = []
    if phases:
        name, worst = max(phases, key=lambda p: p[1]["peak_rss_mib"] or 0.0)
        peak = worst["peak_rss_mib"]
        goals.append(
            Goal(
                f"5 peak RSS, every phase ({len(phases)})",
                f"{peak:.0f} MiB ({name})",
                "-",
                f"≤ {RSS_LIMIT_MIB:.0f} MiB",
                _verdict(peak <= RSS_LIMIT_MIB),
            )
        )
    else:
        goals.append(_absent("5 peak RSS, every phase", f"≤ {RSS_LIMIT_MIB:.0f} MiB", None))
    backlog = _usable(results.get("backlog"))
    if backlog is None:
        target = "5 backlog: nothing lost, RSS flat"
        return [*goals, _absent(target, "0 lost, flat", results.get("backlog"))]
    ingest, drain = backlog["rss_mib_ingest"], backlog["rss_mib_drain"]
    if backlog["complete"]:
        lost = f"{backlog['not_received']:,} not received"
    else:
        lost = f"incomplete: {backlog['not_received']:,} not received by the deadline"
    return [
        *goals,
        Goal(
            f"5 backlog of {backlog['messages']:,}: nothing lost",
            f"{lost}, {backlog['duplicates']:,} duplicates",
            "-",
            "0 lost",
            _verdict(backlog["complete"] and backlog["not_received"] == 0),
        ),
        Goal(
            f"5 backlog of {backlog['messages']:,}: RSS flat",
            f"ingest {_window(ingest)}, drain {_window(drain)} MiB",
            f"{backlog['rss_growth']:.2f}",
            "end ≤ 1.1 × ¼ in",
            _verdict(backlog["rss_flat"]),
        ),
    ]


def _cpu_goal(results: dict[str, Any]) -> Goal:
    phases = chathooks_phases(results)
    measured = [n for n, p in phases if p.get("cpu_ms_per_message")]
    none = _usable(results.get("none_sqlite"))
    example = f"; none/SQLite {none['cpu_ms_per_message']:.2f} ms" if none else ""
    return Goal(
        "6 CPU per delivered message, every phase",
        f"{len(measured)} of {len(phases)} phases{example}",
        "-",
        "in every phase",
        _verdict(bool(phases) and len(measured) == len(phases)),
    )


def print_report(rows: list[Row], goals: list[Goal]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>18}  {'÷ raw':>6}  {'CPU ms/msg':>10}")
    for name, value, ratio, cpu in rows:
        print(f"{name:<{width}}  {value:>18}  {ratio:>6}  {cpu:>10}")
    print("\ntargets (issue 9)")
    widths = [max(len(str(getattr(g, f))) for g in goals) for f in ("target", "figure")]
    for g in goals:
        print(
            f"{g.target:<{widths[0]}}  {g.figure:<{widths[1]}}  {g.ratio:>5}  "
            f"{g.goal:<16}  {g.status}"
        )
