"""CSV and Parquet exports carry every column of every row and read back to the same values."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow.parquet as pq

from evaluation import export
from evaluation.domain.case_facts import Policy
from evaluation.domain.metrics import COLUMNS, MetricRow, aggregate_all

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
    back = [
        {**r, "rule_versions": tuple(r["rule_versions"]), "taxonomy_versions": tuple(r["taxonomy_versions"])}
        for r in table.to_pylist()
    ]
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
            else:
                assert text[c] == str(v)


def test_an_empty_export_still_has_its_columns() -> None:
    assert export.to_csv([]).splitlines() == [",".join(COLUMNS)]
    assert pq.read_table(io.BytesIO(export.to_parquet([]))).schema == export.SCHEMA
