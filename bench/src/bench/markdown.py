"""The Markdown report: one table per section, measured values next to their same-run baselines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from onegrid.topics import CASES

Section = Callable[[dict[str, Any], dict[str, Any]], list[str]]


def _n(v: Any, digits: int = 0) -> str:
    if v is None:
        return "—"
    if isinstance(v, int | float):
        return f"{v:,.{digits}f}"
    return str(v)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _pct(p: dict[str, Any]) -> str:
    return f"{_n(p['p50_ms'], 1)} / {_n(p['p99_ms'], 1)} / {_n(p['p99_9_ms'], 1)}"


def _goals(r: dict[str, Any], _s: dict[str, Any]) -> list[str]:
    return _table(
        ["goal", "measured", "baseline (same run)", "ratio", "target", ""],
        [
            [
                g["goal"],
                f"{_n(g['measured'], 1)} {g['unit']}",
                _n(g["baseline"], 1),
                _n(g["ratio"], 3),
                g["target"],
                "✓" if g["met"] else "✗",
            ]
            for g in r["goals"]
        ],
    )


def _kafka(_r: dict[str, Any], k: dict[str, Any]) -> list[str]:
    pp, cp, ak = k["producer_performance"], k["consumer_performance"], k["aiokafka_consume"]
    rows = [
        [
            "ProducerPerformance (acks=all, idempotent)",
            _n(pp["per_s"]),
            _n(pp["mb_per_s"], 1),
            f"p99 {pp['latency_p99_ms']:.0f} ms",
        ],
        [
            "ConsumerPerformance",
            _n(cp["per_s"]),
            _n(cp["mb_per_s"], 1),
            f"rebalance {cp['rebalance_ms']:.0f} ms excluded",
        ],
        [
            "aiokafka consume loop",
            _n(ak["per_s"]),
            "—",
            f"{k['aiokafka_vs_java_consumer']:.2f} × Java; {ak['cpu_us_per_record']:.1f} µs CPU/rec",
        ],
    ]
    note = f"One topic, {_n(k['topic_records'])} records of {k['record_bytes']} bytes (the feeds' mean size)."
    return [*_table(["client", "records/s", "MB/s", "note"], rows), note, ""]


def _intake(_r: dict[str, Any], i: dict[str, Any]) -> list[str]:
    rows = [
        [
            feed,
            f["mean_bytes"],
            _n(f["intake"]["per_s"]),
            _n(f["intake"]["cpu_us_per_record"]),
            _n(f["passthrough_tx"]["per_s"]),
            _n(f["passthrough_tx"]["cpu_us_per_record"]),
            _n(f["passthrough"]["per_s"]),
            _n(f["ratio_to_passthrough_tx"], 3),
            _n(f["ratio_to_passthrough"], 3),
        ]
        for feed, f in i["feeds"].items()
    ]
    head = [
        "feed",
        "bytes",
        "intake rec/s",
        "CPU µs/rec",
        "passthrough tx rec/s",
        "CPU µs/rec",
        "passthrough rec/s",
        "÷ tx",
        "÷ plain",
    ]
    n = next(iter(i["feeds"].values()))["records"]
    return [
        *_table(head, rows),
        f"{_n(n)} records per feed. The goal's ratio: {i['guarantee_of_ratio']}.",
        "",
        *_cap_schema(i.get("cap_schema")),
    ]


def _cap_schema(c: dict[str, Any] | None) -> list[str]:
    if c is None:
        return []
    return [
        f"CAP 1.2 schema validation: {_n(c['schema_us'], 1)} µs of the {_n(c['parse_us'], 1)} µs parse_alert "
        f"takes per alert ({c['schema_share']:.0%}; {_n(c['alerts'])} alerts of {_n(c['mean_bytes'])} bytes, "
        f"median of {c['rounds']} rounds, one process, no Kafka).",
        "",
    ]


def _telemetry(_r: dict[str, Any], t: dict[str, Any]) -> list[str]:
    rows = [
        [
            "on (SDK, sampler 1.0, spans dropped by the exporter)",
            _n(t["on"]["per_s"]),
            _n(t["on"]["cpu_us_per_record"], 1),
        ],
        ["off (no provider)", _n(t["off"]["per_s"]), _n(t["off"]["cpu_us_per_record"], 1)],
    ]
    note = (
        f"CPU cost {t['cpu_cost']:+.1%}, throughput cost {t['throughput_cost']:+.1%} ({t['rounds']} round(s) of "
        f"{_n(t['records_per_round'])} {t['feed']} records, medians)."
    )
    return [*_table(["tracing", "rec/s", "CPU µs/rec"], rows), note, ""]


def _growth(_r: dict[str, Any], g: dict[str, Any]) -> list[str]:
    rows = [[_n(x["open_cases_before"]), _n(x["per_s"])] for x in g["rows"]]
    note = (
        f"The intake core alone (no Kafka), {g['feed']} records in chunks of {_n(g['chunk'])}, incidents "
        f"{g.get('apart_s', '?')} s apart, so that many share a correlation window. The Kafka runs above each "
        "start with an empty case book."
    )
    return [*_table(["open cases in the book", "records/s"], rows), note, ""]


def _audit(_r: dict[str, Any], a: dict[str, Any]) -> list[str]:
    rows = [["TrailWriter.append", _n(a["sink_rows_per_s"]), _n(a["raw_copy_rows_per_s"]), _n(a["ratio"], 3)]]
    return [
        *_table(["audit sink", "rows/s", "raw asyncpg COPY rows/s", "ratio"], rows),
        f"{_n(a['rows'])} rows.",
        "",
    ]


def _lookups(_r: dict[str, Any], lk: dict[str, Any]) -> list[str]:
    ib = lk["intake_batches"]
    rows = [
        ["one call, every level's code", _n(lk["points"]), _n(lk["per_s"])],
        [
            f"as intake asks: batches of {ib['batch']}, a GridChain per point",
            _n(ib["points"]),
            _n(ib["per_s"]),
        ],
    ]
    note = (
        f"Uniform points in Hanjiang's bbox {lk['bbox']}; {lk['cells']} cells; index built in {lk['index_build_s']} s; "
        f"{lk['grid_share']:.0%} of points fall in a grid."
    )
    return [*_table(["GridIndex.lookup_many", "points", "points/s"], rows), note, ""]


def _dispatch(_r: dict[str, Any], d: dict[str, Any]) -> list[str]:
    rows = [
        ["register, route, orders to the outbox", _n(d["cases"]), _n(d["per_s"], 1), _n(d["cpu_us_per_case"])]
    ]
    note = f"{d['orders']} orders for {d['registered']} cases; PostgreSQL's CPU is not in the µs column."
    return [*_table(["dispatch desk", "cases", "cases/s", "CPU µs/case"], rows), note, ""]


def _latency(_r: dict[str, Any], lat: dict[str, Any]) -> list[str]:
    rows = [
        [
            _n(x["rate"]),
            _n(x["achieved_rate"]),
            _n(x["sent"]),
            x["missing"],
            _pct(x["cases"]),
            x["orders"]["n"],
            _pct(x["orders"]),
            "✓" if x["sustained"] else "✗",
        ]
        for x in lat["runs"]
    ]
    head = [
        "rate/s",
        "achieved",
        "sent",
        "missing",
        f"-> {CASES} p50/p99/p99.9 ms",
        "orders",
        "-> order p50/p99/p99.9 ms",
        "sustained",
    ]
    notes = []
    for s, key in ((lat.get("sustained_orders"), "sustained_orders"), (lat["sustained"], "sustained")):
        if not s:
            continue
        trials = ", ".join(f"{_n(t['rate'])}/s {'✓' if t[key] else '✗'}" for t in s["trials"])
        notes.append(
            f"Highest rate sustained for {s['window_s']:.0f} s ({s['stage']}): **{_n(s['highest_rate'])} records/s** "
            f"(trials {trials}; {s['rule']})."
        )
    lag_rows = [
        [_n(x["rate"]), name, _pct(p)] for x in lat["runs"] for name, p in x.get("event_loop_lag", {}).items()
    ]
    lag = _table(["rate/s", "process", "event-loop lag p50/p99/p99.9 ms"], lag_rows) if lag_rows else []
    feeds = f"Feeds: {', '.join(lat['feeds'])}, in turn; {lat.get('windows', '')}."
    if settle := lat.get("dispatch_settle_s"):
        feeds += (
            f" Before each window with dispatch running, dispatch caught up with what the windows before"
            f" it left (outbox empty, no new case for 2 s): {settle['total']} s over {settle['windows']}"
            f" windows, at most {settle['max']} s."
        )
    floor = []
    if lat.get("floor"):
        floor = [
            *_table(
                ["rate/s", "achieved", "sent", "missing", "-> last hop p50/p99/p99.9 ms"],
                [
                    [_n(x["rate"]), _n(x["achieved_rate"]), _n(x["sent"]), x["missing"], _pct(x["cases"])]
                    for x in lat["floor"]
                ],
            ),
            "The floor: the same records at the same rates through two exactly-once stages that only forward them "
            "(built as the intake's two stages, on the services' consumer loop), on topics of their own.\n",
        ]
    cpu_rows = [
        [
            _n(x["rate"]),
            what,
            *x[key]["ms_per_record"].values(),
            x[key].get("broker_jit_ms_per_record", "—"),
            x[key]["total_ms_per_record"],
            x[key]["cores_busy"],
            _n(x[key]["ceiling_per_s"]),
        ]
        for x in lat["runs"]
        for key, what in (("cpu_steady", "running"), ("cpu", "whole window"))
        if key in x
    ]
    cpu = []
    if cpu_rows:
        roles = list(next(x["cpu"]["ms_per_record"] for x in lat["runs"] if "cpu" in x))
        cpu = [
            *_table(
                [
                    "rate/s",
                    "span",
                    *(f"{r} ms/rec" for r in roles),
                    "of the broker's: its JIT compiler ms/rec",
                    "all ms/rec",
                    "cores busy",
                    "ceiling rec/s",
                ],
                cpu_rows,
            ),
            "CPU per record sent, by process, in each fixed-rate window: *running*, from the first quarter of "
            "its records sent to the last (the system's cost at that rate, where the window is sustained: an "
            "overloaded system leaves what it was sent for later); *whole window*, its set-up (a fresh "
            "intake run, dispatch catching up before it) and drain included. The ceiling: the machine's cores "
            "over all of it. The broker's JIT compiler: its share of the broker's CPU (a broker that started "
            "minutes before still compiles its hot paths, one that has run for days no longer does).\n",
        ]
    return [*_table(head, rows), feeds, *[n + "\n" for n in notes], *floor, *cpu, *lag]


def _open311(_r: dict[str, Any], o: dict[str, Any]) -> list[str]:
    def row(what: str, x: dict[str, Any]) -> list[Any]:
        return [what, _n(x["per_s"], 1), f"{x['p50']} / {x['p99']} / {x['max']}"]

    rows = [row("POST requests (201 after the broker's ack)", o["post"]), row("GET requests/{id}", o["get"])]
    st = o["status"]
    note = (
        f"{o['requests']} requests from {o['concurrency']} clients. Status: {st['events']} lifecycle events "
        f"applied at **{_n(st['per_s'], 1)}/s** ({st['seconds']} s until every request showed closed)."
    )
    return [*_table(["Open311 service", "per s", "p50 / p99 / max ms"], rows), note, ""]


def _memory(r: dict[str, Any], m: dict[str, Any]) -> list[str]:
    rows = [[name, v["rss_mb"], v["ready_after_s"]] for name, v in m["services"].items()]
    under = r.get("latency", {}).get("rss_under_load_mb", {})
    rows += [[f"{name}, after the latency runs", v, "—"] for name, v in under.items()]
    return _table(["process", "RSS MB", "ready after s"], rows)


def _scaling(_r: dict[str, Any], sc: dict[str, Any]) -> list[str]:
    if "rows" not in sc:
        return [sc.get("skipped", ""), ""]
    rows = [
        [
            x["partitions"],
            x["instances"],
            _n(x["passthrough_tx"]["per_s"]),
            _n(x["intake"]["per_s"]),
            f"{x['intake']['per_s'] / x['passthrough_tx']['per_s']:.2f}",
        ]
        for x in sc["rows"]
    ]
    heads = ["partitions", "instances", "passthrough tx rec/s", "intake rec/s", "intake / passthrough"]
    out = _table(heads, rows) if rows else []
    for name, svc in sc.get("services", {}).items():
        out += [f"### {name}: N instances over N partitions", ""]
        out += [f"Failed: `{svc['error']}`", ""] if "error" in svc else _scaled_service(name, svc)
    return out


def _scaled_service(name: str, svc: dict[str, Any]) -> list[str]:
    """Rates, the ratio to the passthrough, each against its own 1-instance rate (the shape), and
    where the CPU went (µs per record: the service's processes, PostgreSQL, the brokers)."""
    first = svc["rows"][0]
    rows = []
    for x in svc["rows"]:
        m, cpu = x[name], x[name]["cpu_us_per_record"]
        rows.append(
            [
                x["instances"],
                _n(x["passthrough_tx"]["per_s"]),
                f"{x['passthrough_tx']['per_s'] / first['passthrough_tx']['per_s']:.2f}",
                _n(m["per_s"]),
                f"{m['per_s'] / first[name]['per_s']:.2f}",
                _n(x["ratio_to_passthrough_tx"], 3),
                f"{_n(cpu.get('service'))} / {_n(cpu.get('postgres'))} / {_n(cpu.get('kafka'))}",
                _n(m.get("machine_cpu_busy"), 2),
            ]
        )
    heads = [
        "instances = partitions",
        "passthrough tx rec/s",
        "× 1 instance",
        f"{name} rec/s",
        "× 1 instance",
        f"{name} / passthrough",
        "CPU µs/rec service / PostgreSQL / brokers",
        "machine busy (of 1)",
    ]
    return [*_table(heads, rows), f"{svc['records']:,} records a run, counted at the service's output.", ""]


SECTIONS: tuple[tuple[str, str, Section], ...] = (
    ("goals", "Goals", _goals),
    ("kafka", "Kafka's ceiling (the broker's own tools, same jars)", _kafka),
    ("intake", "Intake per feed (exactly once) against the raw passthrough", _intake),
    ("telemetry", "Telemetry", _telemetry),
    ("growth", "Intake core as its case book fills", _growth),
    ("audit", "Audit sink", _audit),
    ("lookups", "Grid lookups", _lookups),
    ("dispatch", "Dispatch desk", _dispatch),
    ("latency", "End-to-end latency (open loop)", _latency),
    ("open311", "Open311 service (residents' requests)", _open311),
    ("memory", "Memory (RSS)", _memory),
    ("scaling", "Scaling", _scaling),
)


def markdown(r: dict[str, Any]) -> str:
    b, m = r["bench"], r["machine"]
    out = [f"# OneGrid benchmarks: {b['mode']} run, {b['started_at']}", ""]
    out += [f"`{b['command']}`, {b['duration_s']:.0f} s, commit {m.get('commit')}, run id {b['run']}.", ""]
    out += _table(["machine", ""], [[k.replace("_", " "), v] for k, v in m.items()])
    for key, title, render in SECTIONS:
        out += [f"## {title}", ""]
        section = r.get(key)
        if isinstance(section, dict) and "error" in section:
            out += [f"Failed: `{section['error']}`", ""]
            continue
        try:
            out += render(r, section if isinstance(section, dict) else {})
        except (KeyError, TypeError) as exc:
            out += [f"Not rendered: missing {exc!r}", ""]
    return "\n".join(out)
