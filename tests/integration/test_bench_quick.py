"""`make bench ARGS=--quick` still runs: against the session's broker and database it exits 0 and
writes a JSON and a Markdown report with every section measured and every goal evaluated. Nothing
here asserts how fast anything is: benchmarks are read by people, not by the test suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.bench_run import run_bench

from bench.markdown import SECTIONS as MARKDOWN_SECTIONS
from bench.report import SECTIONS


# The quick run takes about 90 s on two cores; the margin is for a loaded machine, not a goal.
@pytest.mark.timeout(300)
def test_quick_bench_writes_every_section(kafka_bootstrap: str, database_url: str, tmp_path: Path) -> None:
    run_bench(
        ["--quick"], kafka_bootstrap=kafka_bootstrap, database_url=database_url, out=tmp_path, timeout_s=280
    )

    stamped = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("latest"))
    assert len(stamped) == 2 and {Path(p).suffix for p in stamped} == {".json", ".md"}, stamped
    report = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert report == json.loads((tmp_path / stamped[0]).read_text(encoding="utf-8"))
    assert report["bench"]["mode"] == "quick"
    for key in ("cpu_model", "logical_cores", "ram_gb", "python", "java", "kafka", "postgresql"):
        assert report["machine"][key], key
    for section in SECTIONS:
        assert section in report and "error" not in report[section], (section, report.get(section))

    feeds = report["intake"]["feeds"]
    assert set(feeds) == {"hj212", "cap", "safety", "party", "open311"}
    for f in feeds.values():
        for run in ("intake", "passthrough", "passthrough_tx"):
            assert f[run]["records"] == f["records"] and f[run]["per_s"] > 0
    cap_schema = report["intake"]["cap_schema"]
    assert cap_schema["alerts"] > 0 and cap_schema["schema_us"] > 0 and cap_schema["parse_us"] > 0
    assert report["kafka"]["producer_performance"]["records"] == report["kafka"]["topic_records"]
    assert report["kafka"]["consumer_performance"]["records"] == report["kafka"]["topic_records"]
    assert [r["rate"] for r in report["latency"]["runs"]] == [200, 1000]
    assert all(r["sent"] > 0 and r["cases"]["n"] > 0 for r in report["latency"]["runs"])
    for r in report["latency"]["runs"]:
        assert {"intake (worker)", "dispatch"} == set(r["event_loop_lag"])
        assert all(lag["n"] > 0 for lag in r["event_loop_lag"].values()), r["event_loop_lag"]
        # CPU per record by process: the broker, the intake and dispatch all worked in the window,
        # and while it ran (from its first quarter of records sent to its last)
        for span in ("cpu", "cpu_steady"):
            ms = r[span]["ms_per_record"]
            assert all(ms[role] > 0 for role in ("kafka broker", "intake (worker)", "dispatch")), r[span]
            assert r[span]["total_ms_per_record"] > 0 and r[span]["ceiling_per_s"] > 0
    assert report["latency"]["sustained_orders"]["trials"]
    # the floor: two exactly-once stages that only forward, at each fixed rate, every record through
    floor = report["latency"]["floor"]
    assert [f["rate"] for f in floor] == [200, 1000]
    assert all(f["missing"] == 0 and f["cases"]["n"] == f["sent"] > 0 for f in floor), floor
    to_cases = next(g for g in report["goals"] if g["goal"].startswith("end-to-end p99 ≤ 100 ms"))
    assert to_cases["baseline"] == floor[1]["cases"]["p99_ms"]
    # every window with dispatch running (warm-up, fixed rates, the search to the order) began settled
    settle = report["latency"]["dispatch_settle_s"]
    assert settle["windows"] == 1 + 2 + len(report["latency"]["sustained_orders"]["trials"]), settle
    assert set(report["memory"]["services"]) == {"grid-registry", "intake", "dispatch", "audit", "open311"}
    o311 = report["open311"]
    assert o311["requests"] > 0 and o311["status"]["events"] == 3 * o311["requests"]
    assert o311["post"]["per_s"] > 0 and o311["get"]["per_s"] > 0 and o311["status"]["per_s"] > 0
    assert all(v["rss_mb"] > 0 for v in report["memory"]["services"].values())
    assert "skipped" in report["scaling"]
    # five intake feeds; telemetry, audit, lookups, cases.v1 latency; the desk, order latency, and the
    # highest rate sustained to the order
    assert len(report["goals"]) == 5 + 7 and all("not measured" not in g["goal"] for g in report["goals"])

    markdown = (tmp_path / "latest.md").read_text(encoding="utf-8")
    for _key, title, _render in MARKDOWN_SECTIONS:
        assert f"## {title}" in markdown
    assert "Failed:" not in markdown and "Not rendered" not in markdown
    assert markdown.count("✓") + markdown.count("✗") >= len(report["goals"])
