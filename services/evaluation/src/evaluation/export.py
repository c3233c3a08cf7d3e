"""Metric rows as files for BI tools: CSV (UTF-8, header row) and Parquet (typed columns).

Both carry exactly the columns of `MetricRow`, in that order. CSV: an empty field is null; version
lists are joined with `;`; numbers print as Python's shortest round-trip repr, so a reader gets the
same float back. Parquet: counts int64, figures float64 (null when undefined), period_start date32,
version lists list<string>.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from evaluation.domain.metrics import COLUMNS, MetricRow

_TEXT = ("dimension", "value", "granularity", "definition")
_LISTS = ("rule_versions", "taxonomy_versions")


def _arrow_type(column: str) -> pa.DataType:
    if column in _TEXT:
        return pa.string()
    if column in _LISTS:
        return pa.list_(pa.string())
    if column == "period_start":
        return pa.date32()
    if MetricRow.__annotations__[column] == "int":
        return pa.int64()
    return pa.float64()


SCHEMA = pa.schema([pa.field(c, _arrow_type(c), nullable=c not in ("dimension", "value")) for c in COLUMNS])


def to_csv(rows: Sequence[MetricRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([_cell(getattr(r, c)) for c in COLUMNS])
    return buf.getvalue()


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, tuple):
        return ";".join(v)
    return repr(v) if isinstance(v, float) else str(v)


def to_parquet(rows: Sequence[MetricRow]) -> bytes:
    table = pa.table({c: [getattr(r, c) for r in rows] for c in COLUMNS}, schema=SCHEMA)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()
