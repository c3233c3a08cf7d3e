"""CSV and Parquet exports carry every column of every row and read back to the same values."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq

from evaluation import export
from evaluation.domain.case_facts import Policy
from evaluation.domain.metrics import COLUMNS, LISTS, MetricRow, aggregate_all
from evaluation.store import AsOf

from .test_scripted_figures import facts_by_name


def rows() -> list[MetricRow]:
    return sorted(
        aggregate_all(facts_by_name().values(), Policy().definition()).values(),
        key=lambda r: (r.dimension, r.granularity, r.period_start, r.value),
    )


def as_dict(r: MetricRow) -> dict[str, Any]:
    return {c: getattr(r, c) for c in COLUMNS}


def test_parquet_round_trip_is_exact_and_typed() -> None:
    table = pq.read_table(io.BytesIO(export.to_parquet(rows())))
    assert table.schema == export.SCHEMA
    back = [{**r, **{c: tuple(r[c]) for c in LISTS}} for r in table.to_pylist()]
    assert back == [as_dict(r) for r in rows()]


def test_csv_round_trip_gives_the_same_values() -> None:
    parsed = list(csv.DictReader(io.StringIO(export.to_csv(rows()))))
    assert list(parsed[0]) == list(COLUMNS)
    for text, row in zip(parsed, rows(), strict=True):
        for c in COLUMNS:
            v = getattr(row, c)
            if isinstance(v, tuple):
                assert text[c] == ";".join(v)
            elif v is None:
                assert text[c] == ""
            elif isinstance(v, float):
                assert float(text[c]) == v  # shortest repr: the same double back
            elif isinstance(v, bool):
                assert text[c] == ("true" if v else "false")
            elif isinstance(v, datetime):
                assert datetime.fromisoformat(text[c].replace("Z", "+00:00")) == v and text[c].endswith("Z")
            else:
                assert text[c] == str(v)


def test_an_empty_export_still_has_its_columns() -> None:
    assert export.to_csv([]).splitlines() == [",".join(COLUMNS)]
    assert pq.read_table(io.BytesIO(export.to_parquet([]))).schema == export.SCHEMA


def test_every_export_states_its_as_of_and_times() -> None:
    as_of = AsOf(
        topic="case.lifecycle.v1",
        next_offsets={1: 7, 0: 12},
        computed_at=datetime(2026, 3, 6, 1, 2, 3, tzinfo=UTC),
        definition=Policy().definition(),
    )
    meta = export.as_of_dict(as_of, exported_at=datetime(2026, 3, 6, 2, tzinfo=UTC))
    assert meta["computed_at"] == "2026-03-06T01:02:03Z"
    assert meta["source"] == {"topic": "case.lifecycle.v1", "next_offsets": {"0": 12, "1": 7}}
    assert "UTC" in meta["times"] and "Asia/Shanghai" in meta["times"]
    text = export.to_csv(rows(), meta)
    preamble = [line for line in text.splitlines() if line.startswith("#")]
    assert preamble[0] == "# exported_at: 2026-03-06T02:00:00Z"
    assert any('"next_offsets": {"0": 12, "1": 7}' in line for line in preamble)
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body[0] == ",".join(COLUMNS) and len(body) == len(rows()) + 1
    parquet = pq.read_table(io.BytesIO(export.to_parquet(rows(), meta)))
    assert parquet.schema.metadata is not None
    assert json.loads(parquet.schema.metadata[b"onegrid.as_of"]) == meta


def test_case_and_stint_facts_give_utc_and_local_times() -> None:
    facts = sorted(facts_by_name().values(), key=lambda f: f.registered_at)
    cases = pq.read_table(io.BytesIO(export.facts_parquet(facts, Policy().definition()))).to_pylist()
    assert len(cases) == len(facts)
    a = next(c for c in cases if c["case_id"] == facts[0].case_id)  # A: registered 01:00Z = 09:00 local
    assert a["registered_at"] == datetime(2026, 3, 2, 1, tzinfo=UTC)
    assert a["registered_at_local"] == datetime(2026, 3, 2, 9)
    assert a["registered_day"].isoformat() == "2026-03-02"
    stints = pq.read_table(io.BytesIO(export.stints_parquet(facts, Policy().definition()))).to_pylist()
    assert len(stints) == sum(len(f.stints) for f in facts)
    c = [(s["department"], s["returns"]) for s in stints if s["case_id"] == facts_by_name()["C"].case_id]
    assert c == [("shengtai", 1), ("chengguan", 0)]
