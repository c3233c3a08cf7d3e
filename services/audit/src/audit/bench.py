"""Throughput of the trail, for ``make bench``: the real append path against a raw asyncpg COPY.

``bench_sink(database_url, n)`` appends ``n`` synthetic records (a mix of legacy packets, case events
and lifecycle events, like the system at peak) through ``TrailWriter.append`` in batches of
``batch`` (the consumer loop's default 500): dedupe by position and event id, leaf hashing, the Merkle
frontier and subtree roots, COPY, positions and state, one transaction per batch. ``bench_raw_copy``
COPYs the very same rows (prepared beforehand, untimed) into the same table in the same batches:
the floor the sink is measured against. Both return rows per second and drop their scratch schema.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from audit.database import Database
from audit.domain.capture import describe, entry_of
from audit.testing import FakeRecord, case_event, fresh_schema
from audit.trail_writer import TRAIL_COLUMNS, TrailWriter, trail_row
from onegrid.topics import CASE_LIFECYCLE, CASES, LEGACY_ENV_HJ212


def synthetic_records(n: int) -> list[FakeRecord]:
    out: list[FakeRecord] = []
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
            body = {
                "event_id": str(uuid.uuid4()),
                "case_id": f"case-{i % 5000}",
                "actor": {"kind": "staff", "id": "hj/0042"},
            }
            headers = [("ce_id", body["event_id"].encode()), ("ce_type", b"cn.onegrid.case.acknowledged.v1")]
            out.append(FakeRecord(CASE_LIFECYCLE, i % 6, i, json.dumps(body).encode(), None, headers))
    return out


def _batches(items: Sequence[FakeRecord], size: int) -> list[Sequence[FakeRecord]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def _drop(db: Database) -> None:
    async with db.acquire() as conn:
        await conn.execute(f'DROP SCHEMA "{db.schema}" CASCADE')
    await db.close()


async def bench_sink(database_url: str, n: int, batch: int = 500) -> float:
    """Rows per second through the audit sink (``TrailWriter.append``)."""
    records = synthetic_records(n)
    db = await fresh_schema(database_url)
    try:
        writer = TrailWriter(db)
        started = time.perf_counter()
        for chunk in _batches(records, batch):
            await writer.append(chunk)
        elapsed = time.perf_counter() - started
    finally:
        await _drop(db)
    return n / elapsed


async def bench_raw_copy(database_url: str, n: int, batch: int = 500) -> float:
    """Rows per second of a bare asyncpg COPY of the same rows into the same (indexed, partitioned) table."""
    records = synthetic_records(n)
    now = datetime.now(UTC)
    rows = []
    for seq, r in enumerate(records):
        cap = describe(
            topic=r.topic, partition=r.partition, offset=r.offset, key=r.key, value=r.value, headers=r.headers
        )
        entry = entry_of(cap, seq=seq, recorded_at=now)
        rows.append(trail_row(entry, cap, r.timestamp, entry.leaf_hash()))
    db = await fresh_schema(database_url)
    try:
        started = time.perf_counter()
        for i in range(0, n, batch):
            async with db.acquire() as conn, conn.transaction():
                await conn.copy_records_to_table("trail", records=rows[i : i + batch], columns=TRAIL_COLUMNS)
        elapsed = time.perf_counter() - started
    finally:
        await _drop(db)
    return n / elapsed


if __name__ == "__main__":
    import asyncio
    import sys

    url, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    sink = asyncio.run(bench_sink(url, count))
    raw = asyncio.run(bench_raw_copy(url, count))
    print(f"audit sink {sink:,.0f} rows/s; raw asyncpg COPY {raw:,.0f} rows/s ({sink / raw:.0%}); n={count}")
