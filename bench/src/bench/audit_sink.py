"""Throughput of the audit trail, for ``make bench``: the real append path beside a raw asyncpg COPY.

``bench_sink_beside_raw(database_url, n)`` appends ``n`` synthetic records (a mix of legacy packets,
case events and lifecycle events, like the system at peak) through ``TrailWriter.append`` in batches
of ``batch`` (the consumer loop's default 500): dedupe by position, describing each record, leaf
hashing, the Merkle frontier and subtree roots, COPY, positions and state, one transaction per
batch. Beside it, batch by batch, a bare COPY of the very same rows (prepared beforehand, untimed)
into the same table of another schema, one transaction per batch: the floor the sink is measured
against. The two take turns (which goes first alternates), so a machine that gets busier or quieter
during the run weighs on both alike. Returns both in rows per second and drops the scratch schemas.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from audit.database import Database
from audit.domain.capture import describe, entry_of
from audit.trail_writer import TRAIL_COLUMNS, TrailWriter, trail_row
from bench.feeds import support_module
from onegrid import heap
from onegrid.topics import CASE_LIFECYCLE, CASES, LEGACY_ENV_HJ212

# The audit tests' fakes (tests/support/audit_trail.py): a migrated scratch schema, Kafka-like records.
_support = support_module("audit_trail")
FakeRecord = _support.FakeRecord
case_event = _support.case_event
fresh_schema = _support.fresh_schema


def synthetic_records(n: int) -> list[Any]:
    out: list[Any] = []
    for i in range(n):
        kind = i % 10
        if kind < 6:
            packet = (
                f"##0101QN=20260301083000{i:03d};ST=22;CN=2011;MN=321003A{i:07d};CP=&&a34004-Rtd=43.1&&1C80"
            )
            out.append(FakeRecord(LEGACY_ENV_HJ212, i % 6, i, packet.encode(), f"321003A{i % 97}".encode()))
        elif kind < 9:
            out.append(
                case_event(
                    CASES,
                    i,
                    f"case-{i % 5000}",
                    partition=i % 6,
                    title="文昌西路下穿通道积水橙色预警",
                    description="短时强降雨，下穿通道积水深约 40 厘米，建议封闭通行。" * 4,
                    source={"network": "env", "topic": LEGACY_ENV_HJ212, "partition": 0, "offset": i},
                )
            )
        else:
            event_id = str(uuid.uuid4())
            body = {
                "event_id": event_id,
                "case_id": f"case-{i % 5000}",
                "actor": {"kind": "staff", "id": "hj/0042"},
            }
            headers = [("ce_id", event_id.encode()), ("ce_type", b"cn.onegrid.case.acknowledged.v1")]
            out.append(FakeRecord(CASE_LIFECYCLE, i % 6, i, json.dumps(body).encode(), None, headers))
    return out


async def _drop(db: Database) -> None:
    async with db.acquire() as conn:
        await conn.execute(f'DROP SCHEMA "{db.schema}" CASCADE')
    await db.close()


def raw_rows(records: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The trail rows the sink writes for ``records`` (same leaves, one recording instant)."""
    now = datetime.now(UTC)
    rows = []
    for seq, r in enumerate(records):
        cap = describe(
            topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value, headers=r.headers
        )
        leaf = entry_of(cap, seq=seq, recorded_at=now).leaf_hash()
        rows.append(trail_row(cap, seq, now, leaf, r.timestamp))
    return rows


async def bench_sink_beside_raw(database_url: str, n: int, batch: int = 500) -> tuple[float, float]:
    """(rows per second through the audit sink, rows per second of a bare COPY of the same rows)."""
    records = synthetic_records(n)
    rows = raw_rows(records)
    sink_db = await fresh_schema(database_url)
    raw_db = await fresh_schema(database_url)
    writer = TrailWriter(sink_db)
    # The service settles its heap once started (`onegrid.heap`); here the prepared records and rows
    # (which a service never holds: it gets one batch at a time) would otherwise be traversed by every
    # full collection, in the sink's timed steps alone, since the bare COPY allocates next to nothing.
    heap.settle()

    async def sink(i: int) -> None:
        await writer.append(records[i : i + batch])

    async def raw(i: int) -> None:
        async with raw_db.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table("trail", records=rows[i : i + batch], columns=TRAIL_COLUMNS)

    spent = {sink: 0.0, raw: 0.0}
    try:
        for k, i in enumerate(range(0, n, batch)):
            for step in (sink, raw) if k % 2 == 0 else (raw, sink):
                started = time.perf_counter()
                await step(i)
                spent[step] += time.perf_counter() - started
    finally:
        await _drop(sink_db)
        await _drop(raw_db)
    return n / spent[sink], n / spent[raw]


if __name__ == "__main__":
    import asyncio
    import sys

    url, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    sink, raw = asyncio.run(bench_sink_beside_raw(url, count))
    print(f"audit sink {sink:,.0f} rows/s; raw asyncpg COPY {raw:,.0f} rows/s ({sink / raw:.0%}); n={count}")
