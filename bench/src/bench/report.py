"""The run's results as JSON and as Markdown: every measured value next to its baseline, the ratio,
and the goal it is held to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.markdown import markdown
from onegrid.topics import CASES

SECTIONS = (
    "kafka",
    "intake",
    "telemetry",
    "growth",
    "audit",
    "lookups",
    "dispatch",
    "latency",
    "open311",
    "memory",
    "scaling",
)


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of the issue, measured: value, baseline, ratio, target and whether it is met. A goal
    whose section failed is listed as not measured (and not met); one whose section did not run
    (`--only`) is left out."""
    out: list[dict[str, Any]] = []
    for rule in (
        _intake_goals,
        _telemetry_goal,
        _audit_goal,
        _lookup_goal,
        _latency_goal,
        _desk_goal,
        _order_latency_goal,
        _sustained_orders_goal,
    ):
        try:
            out += rule(r)
        except (KeyError, TypeError, StopIteration) as exc:
            if isinstance(exc, KeyError) and exc.args and exc.args[0] in SECTIONS and exc.args[0] not in r:
                continue  # its section was not run
            out.append(
                _goal(
                    f"{rule.__name__[1:].replace('_', ' ')}: not measured ({exc!r})",
                    None,
                    "",
                    None,
                    None,
                    "—",
                    False,
                )
            )
    return out


# Each feed's share of the exactly-once passthrough the intake must reach: what the parse costs
# differs by format (a CAP alert is XML with polygons, an HJ 212 packet a short line), so the goals do.
INTAKE_RATIO_GOALS = {"hj212": 0.75, "open311": 0.75, "party": 0.5, "safety": 0.5, "cap": 0.35}


def _intake_goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for feed, f in r["intake"]["feeds"].items():
        ratio = f["ratio_to_passthrough_tx"]
        goal = INTAKE_RATIO_GOALS.get(feed, 0.75)
        out.append(
            _goal(
                f"intake {feed} ≥ {goal} × exactly-once passthrough",
                f["intake"]["per_s"],
                "rec/s",
                f["passthrough_tx"]["per_s"],
                ratio,
                f"≥ {goal}",
                ratio >= goal,
            )
        )
    return out


def _telemetry_goal(r: dict[str, Any]) -> list[dict[str, Any]]:
    t = r["telemetry"]
    return [
        _goal(
            "telemetry costs ≤ 10 % (CPU per record, tracing on vs off)",
            t["on"]["cpu_us_per_record"],
            "µs/rec",
            t["off"]["cpu_us_per_record"],
            round(1 + t["cpu_cost"], 3),
            "≤ 1.10",
            t["cpu_cost"] <= 0.10,
        )
    ]


def _audit_goal(r: dict[str, Any]) -> list[dict[str, Any]]:
    a = r["audit"]
    return [
        _goal(
            "audit sink ≥ 0.6 × raw COPY",
            a["sink_rows_per_s"],
            "rows/s",
            a["raw_copy_rows_per_s"],
            a["ratio"],
            "≥ 0.6",
            a["ratio"] >= 0.6,
        )
    ]


def _lookup_goal(r: dict[str, Any]) -> list[dict[str, Any]]:
    lk = r["lookups"]
    return [
        _goal(
            "grid lookups ≥ 300,000/s",
            lk["per_s"],
            "points/s",
            None,
            None,
            "≥ 300,000",
            lk["per_s"] >= 300_000,
        )
    ]


def _latency_goal(r: dict[str, Any]) -> list[dict[str, Any]]:
    at_1000 = next(run for run in r["latency"]["runs"] if run["rate"] == 1000)
    p99 = at_1000["cases"]["p99_ms"]
    # the baseline: two exactly-once stages that only forward, at the same rate (the floor)
    floor = next((f["cases"]["p99_ms"] for f in r["latency"].get("floor", []) if f["rate"] == 1000), None)
    return [
        _goal(
            f"end-to-end p99 ≤ 100 ms at 1,000 events/s (record -> {CASES})",
            p99,
            "ms",
            floor,
            round(p99 / floor, 2) if p99 is not None and floor else None,
            "≤ 100 ms",
            p99 is not None and at_1000["missing"] == 0 and p99 <= 100,
        )
    ]


def _desk_goal(r: dict[str, Any]) -> list[dict[str, Any]]:
    d = r["dispatch"]
    return [
        _goal(
            "dispatch desk ≥ 3,000 cases/s",
            round(d["per_s"], 1),
            "cases/s",
            None,
            None,
            "≥ 3,000",
            d["per_s"] >= 3000,
        )
    ]


def _order_latency_goal(r: dict[str, Any]) -> list[dict[str, Any]]:
    at_1000 = next(run for run in r["latency"]["runs"] if run["rate"] == 1000)
    p99 = at_1000["orders"]["p99_ms"]
    return [
        _goal(
            "end-to-end p99 ≤ 500 ms at 1,000 events/s (record -> department order)",
            p99,
            "ms",
            None,
            None,
            "≤ 500 ms",
            p99 is not None and at_1000.get("sustained_orders", False) and p99 <= 500,
        )
    ]


def _sustained_orders_goal(r: dict[str, Any]) -> list[dict[str, Any]]:
    best = r["latency"]["sustained_orders"]["highest_rate"]
    return [
        _goal(
            "highest rate sustained 60 s, record -> department order ≥ 2,000/s",
            best,
            "rec/s",
            None,
            None,
            "≥ 2,000",
            best is not None and best >= 2000,
        )
    ]


def _goal(
    name: str, value: Any, unit: str, baseline: Any, ratio: Any, target: str, met: bool
) -> dict[str, Any]:
    return {
        "goal": name,
        "measured": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "met": bool(met),
    }


def write(results: dict[str, Any], directory: Path, stamp: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    text_json = json.dumps(results, indent=2, ensure_ascii=False)
    text_md = markdown(results)
    paths = []
    for name in (stamp, "latest"):
        for ext, text in (("json", text_json), ("md", text_md)):
            p = directory / f"{name}.{ext}"
            p.write_text(text + "\n", encoding="utf-8")
            paths.append(p)
    return paths
