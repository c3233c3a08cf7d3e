"""`make bench ARGS=--scaling` keeps running: its code path (intake, dispatch and audit scaled out over
1 and 2 instances and partitions, each next to the passthrough) on a tiny load, against the session's
broker and database. Every run must finish and count every record at the service's output; how fast
is for people to read (`make bench ARGS=--scaling` on its own 3-broker cluster), not asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.bench_run import run_bench


# About two minutes on two cores (service processes start for each shape); the margin is for a loaded
# machine, not a goal.
@pytest.mark.timeout(420)
def test_scaling_smoke_measures_every_service_and_shape(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    run_bench(
        ["--scaling", "--quick"],
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        out=tmp_path,
        timeout_s=400,
    )

    report = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert report["bench"]["mode"] == "scaling-smoke"
    sc = report["scaling"]
    assert "error" not in sc, sc
    n = sc["records"]
    assert [(r["partitions"], r["instances"]) for r in sc["rows"]] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for row in sc["rows"]:
        for mode in ("passthrough_tx", "intake"):
            assert row[mode]["records"] >= n and row[mode]["per_s"] > 0, row
    assert set(sc["services"]) == {"dispatch", "audit"}
    for name, svc in sc["services"].items():
        assert "error" not in svc, (name, svc)
        # the shared load, repeated for a fast service (audit) so its runs last seconds
        assert svc["records"] % n == 0, (name, svc["records"], n)
        assert [(r["partitions"], r["instances"]) for r in svc["rows"]] == [(1, 1), (2, 2)], name
        for row in svc["rows"]:
            assert row["passthrough_tx"]["records"] >= n and row["passthrough_tx"]["per_s"] > 0, row
            assert row[name]["records"] == svc["records"], row
            assert row[name]["per_s"] > 0 and row[name]["cpu_us_per_record"]["service"] > 0, row
    # The other sections were not run (only scaling): their headings are empty.
    scaling = (tmp_path / "latest.md").read_text(encoding="utf-8").split("## Scaling", 1)[1]
    assert "### dispatch: N instances over N partitions" in scaling, scaling
    assert "### audit: N instances over N partitions" in scaling, scaling
    assert "Failed:" not in scaling and "Not rendered" not in scaling, scaling
