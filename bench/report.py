"""The printed table (every figure, with its ratio to the raw limit and the CPU per message
next to each rate) from one run's results; the targets are ``bench.targets``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = tuple[str, str, str, str]
"""metric, value, ÷ raw, CPU ms per message (every chathooks process)."""


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
        ("sends", _sends_rows),
    ]
    for key, make in sections:
        if key in results:
            rows += (
                _error_row(key, results[key])
                if "error" in results[key]
                else make(results[key], ratio)
            )
    rows += _operations_rows(results)
    rows += _scale_rows(results, ratio)
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


SENDERS = {
    "whatsapp_cloud": "Cloud API",
    "waha": "WAHA",
    "evolution": "Evolution",
    "twilio": "Twilio",
}


def _sends_rows(sends: dict[str, Any], _ratio: Callable[[Any], str]) -> list[Row]:
    """Issue 18: each kind's sends through the API to the fake sender; "÷ raw" here is the
    raw client against the same fake, as many in flight as chathooks sends."""
    rows: list[Row] = []
    runs = [(SENDERS[k], sends[k]) for k in SENDERS if k in sends]
    if "one_chat" in sends:
        runs.append(("Cloud API, one chat", sends["one_chat"]))
    raws = {label: run["raw"] for label, run in runs if "raw" in run}
    for label, run in runs:
        chats = f"{run['chats']} chat{'' if run['chats'] == 1 else 's'}"
        name = f"sends/{label} ({run['queued']:,} to {chats})"
        lat, tail = run["latency_ms_from_202"], run["after_last_202"]
        failed = run["outcomes"]["failed"]
        rows += [
            (
                f"{name}: sent (sends/s; ÷ raw to the fake; CPU ms/send serve)",
                _fmt(run["sends_per_s"]),
                f"{run['ratio_to_raw']:.2f}" if "ratio_to_raw" in run else "",
                _cpu(run, "serve_cpu_ms_per_send"),
            ),
            (
                f"{name}: 202 → sent p50 / p99 (ms); queued (sends/s)",
                f"{_fmt(lat['p50'], 0)} / {_fmt(lat['p99'], 0)}; {_fmt(run['queue_per_s'], 0)}",
                "",
                "",
            ),
            (
                f"{name}: after the last 202, worker alone (sends/s; CPU ms/send serve)",
                _fmt(tail["sends_per_s"]),
                "",
                _cpu(tail, "serve_cpu_ms_per_send"),
            ),
            (
                f"{name}: not sent / failed / retried / duplicates / out of order",
                f"{run['not_received']} / {failed:.0f} / {run['outcomes']['retry']:.0f} / "
                f"{run['duplicates']} / {run['out_of_order']}",
                "",
                "",
            ),
        ]
    for label, raw in raws.items():
        rows.append(
            (
                f"sends/{label}: raw client → fake (req/s, c={sends['send_concurrency']}); "
                "CPU ms/req client / fake",
                _fmt(raw["requests_per_second"]),
                "1.00",
                f"{raw['client_cpu_ms_per_request']:.2f} / {raw['fake_cpu_ms_per_request']:.2f}",
            )
        )
    labels = ", ".join(label for label, _ in runs)
    fake = " / ".join(f"{run['fake_cpu_ms_per_send']:.2f}" for _, run in runs)
    rows.append((f"sends: the fake's CPU ms per send ({labels})", fake, "", ""))
    return rows


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


def scale_runs(results: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The scale-out runs (``bench.scale``) by worker count, failed ones included."""
    runs = [(int(k.split("_")[1]), v) for k, v in results.items() if k.startswith("scale_")]
    return sorted(runs, key=lambda run: run[0])


def _scale_rows(results: dict[str, Any], ratio: Callable[[Any], str]) -> list[Row]:
    """Issue 16's eighth target, and the seventh (``recovery``)."""
    out: list[Row] = []
    runs = scale_runs(results)
    first = next((r for n, r in runs if n == 1 and "error" not in r), None)

    def speedup(key: str, value: float) -> str:
        return f", ÷ 1 worker {value / first[key]:.2f}" if first else ""

    for workers, run in runs:
        name = f"PostgreSQL, api + {workers} worker(s)"
        if "error" in run:
            out += _error_row(name, run)
            continue
        rate, drain = run["delivered_msg_per_s"], run["drain_msg_per_s"]

        cpu = " / ".join(
            _fmt(run[f"{k}_cpu_ms_per_message"], 2) for k in ("api", "workers", "database", "all")
        )
        out += [
            (
                f"{name}, workers alone: backlog drained (msg/s"
                f"{speedup('drain_msg_per_s', drain)})",
                _fmt(drain),
                ratio(drain),
                _fmt(
                    run["drain_workers_cpu_ms_per_message"]
                    + run["drain_database_cpu_ms_per_message"],
                    2,
                ),
            ),
            (
                f"{name}, workers alone: CPU ms/msg workers / database; machine busy share",
                f"{_fmt(run['drain_workers_cpu_ms_per_message'], 2)} / "
                f"{_fmt(run['drain_database_cpu_ms_per_message'], 2)}; "
                f"{run['drain_machine_busy_share']:.2f}",
                "",
                "",
            ),
            (
                f"{name}, api ingesting: delivered (msg/s{speedup('delivered_msg_per_s', rate)})",
                _fmt(rate),
                ratio(rate),
                _cpu(run),
            ),
            (f"{name}, api ingesting: CPU ms/msg api / workers / database / all", cpu, "", ""),
            (
                f"{name}, api ingesting: ingest (msg/s); left at its end; drain after (msg/s)",
                f"{_fmt(run['ingest_msg_per_s'], 0)}; {run['left_at_ingest_end']:,}; "
                f"{_fmt(run['drain_msg_per_s_after_ingest'], 0)}",
                "",
                "",
            ),
            (
                f"{name}, api ingesting: machine busy share; load (1 min) at the end",
                f"{run['machine_busy_share']:.2f}; {run['loadavg_at_end']:.1f}",
                "",
                "",
            ),
            (
                f"{name}, one per request: answered / delivered (msg/s)",
                f"{_fmt(run['single_msg_per_s'], 0)} / "
                f"{_fmt(run['single_delivered_msg_per_s'], 0)}",
                ratio(run["single_delivered_msg_per_s"]),
                "",
            ),
            (
                f"{name}, one per request: CPU ms/msg api / workers / database; machine busy",
                " / ".join(
                    _fmt(run[f"single_{k}_cpu_ms_per_message"], 2)
                    for k in ("api", "workers", "database")
                )
                + f"; {run['single_machine_busy_share']:.2f}",
                "",
                "",
            ),
            (f"{name} peak RSS (MiB)", _fmt(run["peak_rss_mib"]), "", ""),
            (
                f"{name} database after the run (MiB; KiB per message)",
                f"{_fmt(run['database_mib'])}; {_fmt(run['database_kib_per_message'], 2)}",
                "",
                "",
            ),
        ]
    recovery = results.get("recovery")
    if recovery is not None and "error" in recovery:
        out += _error_row("recovery after kill -9", recovery)
    elif recovery is not None:
        out += [
            (
                "recovery after kill -9: last / first chat taken over; all delivered (s)",
                f"{recovery['takeover_s']:.2f} / {recovery['first_chat_s']:.2f}; "
                f"{recovery['all_delivered_s']:.2f}",
                "",
                "",
            ),
            (
                "recovery after kill -9: not received / out of order / duplicates",
                f"{recovery['not_received']} / {recovery['out_of_order']} / "
                f"{recovery['duplicates']}",
                "",
                "",
            ),
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


def print_report(rows: list[Row]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>18}  {'÷ raw':>6}  {'CPU ms/msg':>10}")
    for name, value, ratio, cpu in rows:
        print(f"{name:<{width}}  {value:>18}  {ratio:>6}  {cpu:>10}")
