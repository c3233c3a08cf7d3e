"""The DuckDB example of the BI guide, run on a lake of the scripted cases' facts and the registry's
dimensions, gives exactly the rows the pure domain computes (figures and zero rows, every column)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from support import scripted_stream as script

from evaluation import export
from evaluation.domain.case_facts import CaseFacts, Policy, fold
from evaluation.domain.dimensions import intervals, rows, version_of
from evaluation.domain.metrics import COLUMNS, aggregate_all, zero_rows
from evaluation.domain.periods import local_date
from evaluation.lake import LocalStore
from onegrid_contracts.lifecycle import decode_lifecycle

from .duckdb_guide import run_guide

POLICY = Policy()


def versions(kind: str) -> list[Any]:
    by_code: dict[str, list[Any]] = {}
    for r in script.registry_records():
        if r["kind"] == kind:
            by_code.setdefault(r["code"], []).append(version_of(r))
    return [x for vs in by_code.values() for x in intervals(vs)]


def all_facts() -> list[CaseFacts]:
    cases = {**script.cases(), **script.charged_cases()}
    return [
        fold([decode_lifecycle(json.dumps(e).encode()) for e in s.events], POLICY) for s in cases.values()
    ]


def write_lake(lake: Path, facts: list[CaseFacts]) -> None:
    store = LocalStore(lake)
    by_day: dict[date, list[CaseFacts]] = {}
    for f in facts:
        by_day.setdefault(local_date(f.registered_at), []).append(f)
    for day, fs in by_day.items():
        store.put(f"facts/cases/day={day}/cases.parquet", export.facts_parquet(fs, POLICY.definition()))
        store.put(f"facts/stints/day={day}/stints.parquet", export.stints_parquet(fs, POLICY.definition()))
    for name, kind in (("departments", "department"), ("grids", "grid")):
        table = rows(kind, versions(kind), personal_data=False)
        store.put(f"dimensions/{name}.parquet", export.dimension_parquet(kind, table))


def test_the_guides_duckdb_example_reproduces_every_row(tmp_path: Path) -> None:
    facts = all_facts()
    write_lake(tmp_path / "lake", facts)
    figures = aggregate_all(facts, POLICY.definition())
    units = {
        kind: [(v.code, v.valid_from, to) for v, to in versions(kind) if v.record["active"]]
        for kind in ("department", "grid")
    }
    periods = sorted({(k.granularity, k.period_start) for k in figures if k.dimension == "all"})
    zeros = zero_rows(units, periods, set(figures), POLICY.definition())
    assert {(z.value, z.granularity) for z in zeros} >= {("minzheng", "month"), ("wenlv", "month")}
    expected = {
        (r.dimension, r.value, r.granularity, r.period_start): {c: getattr(r, c) for c in COLUMNS}
        for r in [*figures.values(), *zeros]
    }

    got = run_guide(tmp_path / "lake")

    assert set(got) == set(expected)
    for k, row in expected.items():
        assert {c: got[k][c] for c in COLUMNS} == row, k
