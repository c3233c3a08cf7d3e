"""Figures, facts and dimensions as files for BI tools: CSV (UTF-8, header row) and Parquet (typed).

Metric rows carry exactly the columns of `MetricRow`, in that order. CSV: an empty field is null;
version lists are joined with `;`; numbers print as Python's shortest round-trip repr, so a reader
gets the same float back. Parquet: counts int64, figures float64 (null when undefined),
period_start date32, instants timestamp[us, UTC], version lists list<string>.

Every export says what it reflects (`as_of`): when the figures were computed, up to which offset of
each partition of case.lifecycle.v1, under which definition, and that `at` and every `*_at` are UTC
while periods are Asia/Shanghai days. CSV states it in `#` lines before the header (DuckDB
`read_csv(..., comment = '#')`, pandas `comment="#"`); Parquet in the file's key-value metadata
(`onegrid.as_of`, JSON); JSON in an `as_of` object.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from evaluation.domain.case_facts import CaseFacts
from evaluation.domain.dimensions import BOOL_FIELDS, LIST_FIELDS, columns
from evaluation.domain.metrics import COLUMNS, LISTS, MetricRow
from evaluation.domain.periods import CITY_TIME, local_date
from evaluation.store import AsOf

TIMES = (
    "at and every *_at column are UTC instants; periods (period_start, day, registered_day) are "
    "Asia/Shanghai civil days (UTC+8, no daylight saving); *_local columns are Asia/Shanghai wall time"
)
_TEXT = ("dimension", "value", "granularity", "definition")
UTC_TS = pa.timestamp("us", tz="UTC")
LOCAL_TS = pa.timestamp("us")


def _arrow_type(column: str) -> pa.DataType:
    if column in _TEXT:
        return pa.string()
    if column in LISTS:
        return pa.list_(pa.string())
    if column == "period_start":
        return pa.date32()
    annotation = MetricRow.__annotations__[column]
    if annotation == "int":
        return pa.int64()
    if annotation == "bool":
        return pa.bool_()
    if "datetime" in annotation:
        return UTC_TS
    return pa.float64()


SCHEMA = pa.schema([pa.field(c, _arrow_type(c), nullable=c not in ("dimension", "value")) for c in COLUMNS])


def as_of_dict(as_of: AsOf | None, *, exported_at: datetime | None = None) -> dict[str, Any]:
    """The lineage block every export carries."""
    out: dict[str, Any] = {"exported_at": _iso(exported_at or datetime.now(UTC)), "times": TIMES}
    if as_of is not None:
        out |= {
            "computed_at": _iso(as_of.computed_at),
            "source": {
                "topic": as_of.topic,
                "next_offsets": {str(p): o for p, o in sorted(as_of.next_offsets.items())},
            },
            "definition": as_of.definition,
        }
    return out


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _preamble(meta: dict[str, Any] | None) -> str:
    if meta is None:
        return ""
    lines = [
        f"# {k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v}" for k, v in meta.items()
    ]
    return "\n".join(lines) + "\n"


def _metadata(meta: dict[str, Any] | None) -> dict[bytes, bytes] | None:
    if meta is None:
        return None
    return {b"onegrid.as_of": json.dumps(meta, ensure_ascii=False).encode(), b"onegrid.times": TIMES.encode()}


def to_csv(rows: Sequence[MetricRow], meta: dict[str, Any] | None = None) -> str:
    return table_csv([{c: getattr(r, c) for c in COLUMNS} for r in rows], COLUMNS, meta)


def table_csv(rows: Iterable[dict[str, Any]], cols: Sequence[str], meta: dict[str, Any] | None = None) -> str:
    buf = io.StringIO()
    buf.write(_preamble(meta))
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r[c]) for c in cols])
    return buf.getvalue()


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, tuple | list):
        return ";".join(map(str, v))
    if isinstance(v, datetime):
        return _iso(v) or ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def to_parquet(rows: Sequence[MetricRow], meta: dict[str, Any] | None = None) -> bytes:
    table = pa.table({c: [getattr(r, c) for r in rows] for c in COLUMNS}, schema=SCHEMA)
    return parquet_bytes(table, meta)


def parquet_bytes(table: pa.Table, meta: dict[str, Any] | None = None) -> bytes:
    md = _metadata(meta)
    if md is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **md})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


# -- case facts in bulk: one row per case, one per department stint -----------------------------------


def local_time(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(CITY_TIME).replace(tzinfo=None)


CASE_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("registered_at", UTC_TS),
        ("registered_at_local", LOCAL_TS),
        ("registered_day", pa.date32()),
        ("state", pa.string()),
        ("last_seq", pa.int64()),
        ("complete", pa.bool_()),
        ("first_dispatched_at", UTC_TS),
        ("first_answered_at", UTC_TS),
        ("resolved_at", UTC_TS),
        ("first_closed_at", UTC_TS),
        ("resolve_due_at", UTC_TS),
        ("paused_s", pa.float64()),
        ("acknowledge_s", pa.float64()),
        ("resolve_s", pa.float64()),
        ("on_time", pa.bool_()),
        ("hops", pa.int64()),
        ("returns", pa.int64()),
        ("reworks", pa.int64()),
        ("reopens", pa.int64()),
        ("reopens_in_window", pa.int64()),
        ("whistles", pa.int64()),
        ("self_handled", pa.bool_()),
        ("verifications", pa.int64()),
        ("verifications_in_time", pa.int64()),
        ("department", pa.string()),
        ("departments", pa.list_(pa.string())),
        ("grid", pa.string()),
        ("street", pa.string()),
        ("district", pa.string()),
        ("network", pa.string()),
        ("category", pa.string()),
        ("rule_version", pa.string()),
        ("taxonomy_version", pa.string()),
        ("grid_version", pa.string()),
        ("last_event_at", UTC_TS),
        ("definition", pa.string()),
    ]
)
STINT_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("stint", pa.int64()),
        ("department", pa.string()),
        ("order_action", pa.string()),
        ("ordered_at", UTC_TS),
        ("ordered_at_local", LOCAL_TS),
        ("answered_at", UTC_TS),
        ("acknowledge_s", pa.float64()),
        ("resolved_at", UTC_TS),
        ("resolve_s", pa.float64()),
        ("returns", pa.int64()),
        ("whistles", pa.int64()),
        ("resolutions", pa.int64()),
        ("reworks", pa.int64()),
        ("registered_at", UTC_TS),
        ("registered_day", pa.date32()),
        ("grid_version", pa.string()),
        ("definition", pa.string()),
    ]
)


def case_rows(facts: Iterable[CaseFacts], definition: str) -> list[dict[str, Any]]:
    out = []
    for f in facts:
        row = {c: getattr(f, c, None) for c in CASE_SCHEMA.names}
        row |= {
            "registered_at_local": local_time(f.registered_at),
            "registered_day": local_date(f.registered_at),
            "departments": list(f.departments),
            "definition": definition,
        }
        out.append(row)
    return out


def stint_rows(facts: Iterable[CaseFacts], definition: str) -> list[dict[str, Any]]:
    out = []
    for f in facts:
        for s in f.stints:
            row = {c: getattr(s, c, None) for c in STINT_SCHEMA.names}
            row |= {
                "case_id": f.case_id,
                "stint": s.index,
                "ordered_at_local": local_time(s.ordered_at),
                "registered_at": f.registered_at,
                "registered_day": local_date(f.registered_at),
                "grid_version": f.grid_version,
                "definition": definition,
            }
            out.append(row)
    return out


def facts_parquet(facts: Sequence[CaseFacts], definition: str, meta: dict[str, Any] | None = None) -> bytes:
    return parquet_bytes(pa.Table.from_pylist(case_rows(facts, definition), schema=CASE_SCHEMA), meta)


def stints_parquet(facts: Sequence[CaseFacts], definition: str, meta: dict[str, Any] | None = None) -> bytes:
    return parquet_bytes(pa.Table.from_pylist(stint_rows(facts, definition), schema=STINT_SCHEMA), meta)


# -- dimensions ---------------------------------------------------------------------------------------


def dimension_schema(kind: str) -> pa.Schema:
    def typ(c: str) -> pa.DataType:
        if c in ("valid_from", "valid_to"):
            return UTC_TS
        if c == "revision":
            return pa.int64()
        if c in BOOL_FIELDS or c == "current":
            return pa.bool_()
        if c in LIST_FIELDS:
            return pa.list_(pa.string())
        return pa.string()

    return pa.schema([(c, typ(c)) for c in columns(kind)])


def dimension_parquet(kind: str, rows: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> bytes:
    return parquet_bytes(pa.Table.from_pylist([dict(r) for r in rows], schema=dimension_schema(kind)), meta)
