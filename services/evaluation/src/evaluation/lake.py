"""The lake: the lifecycle stream, the case facts and the dimensions as Parquet files partitioned by
local day, in a local directory (default) or S3-compatible object storage (any fsspec URL, e.g.
`s3://bucket/onegrid` with `onegrid-evaluation[s3]` installed). DuckDB reads them on a laptop,
Spark or Trino on a cluster, with the same hive layout:

    lifecycle/day=YYYY-MM-DD/p<partition:03>-<first offset:020>-<last offset:020>.parquet
    facts/cases/day=YYYY-MM-DD/cases.parquet       one row per case registered that day
    facts/stints/day=YYYY-MM-DD/stints.parquet     one row per department stint of those cases
    dimensions/<departments|divisions|grids|staff>.parquet   every version, valid_from/valid_to

`day` is the Asia/Shanghai civil day (of `at` for events, of registration for facts).

Exactly once for the stream (`LakeSink`, its own consumer group): each batch of a partition becomes
one file per day it touches, named by the batch's first and last offset; a file is written whole and
durable before the handler returns (local: temporary name, fsync, rename, fsync of the directory;
object storage: one PUT, visible whole or not at all), and the loop commits the offsets only after.
After a crash the batch is consumed again from the committed offset: files of that partition from
that offset on are leftovers of the uncommitted attempt and are deleted before it is written again,
so every record lands in exactly one file. A duplicate *published* (dispatch's outbox publishes once,
but a database restored from a backup may publish again) is a distinct record (another offset) and
stays, as in the topic: deduplicate on `event_id`.

Facts and dimensions are snapshots rebuilt from the read models: the day files of the cases of every
projector batch are rewritten (one PUT each) before that batch is committed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import msgspec
import pyarrow as pa

from evaluation import export
from evaluation.dimensions import Dimensions
from evaluation.domain.dimensions import KINDS, rows
from evaluation.domain.periods import local_date
from evaluation.store import ReadModels
from onegrid.kafka import BatchResult, Record
from onegrid.objectstore import FsspecStore, LocalStore, ObjectStore, open_store
from onegrid_contracts.lifecycle import decode_lifecycle

__all__ = ["FsspecStore", "LakeFacts", "LakeSink", "LocalStore", "ObjectStore", "open_store"]

log = logging.getLogger(__name__)


# -- the lifecycle stream -------------------------------------------------------------------------------

LIFECYCLE_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("event_id", pa.string()),
        ("case_id", pa.string()),
        ("seq", pa.int64()),
        ("at", export.UTC_TS),
        ("at_local", export.LOCAL_TS),
        ("from_state", pa.string()),
        ("to_state", pa.string()),
        ("action", pa.string()),
        ("actor_kind", pa.string()),
        ("actor_id", pa.string()),
        ("reason", pa.string()),
        ("network", pa.string()),
        ("category_code", pa.string()),
        ("severity_level", pa.int64()),
        ("district", pa.string()),
        ("street", pa.string()),
        ("community", pa.string()),
        ("grid", pa.string()),
        ("department", pa.string()),
        ("hops", pa.int64()),
        ("acknowledge_by", export.UTC_TS),
        ("resolve_by", export.UTC_TS),
        ("rule_version", pa.string()),
        ("taxonomy_version", pa.string()),
        ("grid_version", pa.string()),
        ("body", pa.string()),
    ]
)
_FILE = re.compile(r"^lifecycle/day=[0-9-]+/p(?P<p>[0-9]+)-(?P<first>[0-9]+)-(?P<last>[0-9]+)\.parquet$")


def lifecycle_row(r: Record) -> tuple[date, dict[str, Any]] | None:
    """The record as a row and the local day it belongs to; None when it is no lifecycle event (the
    projector dead-letters those)."""
    try:
        e = decode_lifecycle(r.value or b"")
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    d = e.dimensions
    return local_date(e.at), {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "event_id": str(e.event_id),
        "case_id": str(e.case_id),
        "seq": e.seq,
        "at": e.at,
        "at_local": export.local_time(e.at),
        "from_state": e.from_state,
        "to_state": e.to_state,
        "action": e.action,
        "actor_kind": e.actor.kind,
        "actor_id": e.actor.id,
        "reason": e.reason,
        "network": d.network,
        "category_code": d.category_code,
        "severity_level": d.severity_level,
        "district": d.district,
        "street": d.street,
        "community": d.community,
        "grid": d.grid,
        "department": d.department,
        "hops": d.hops,
        "acknowledge_by": e.deadlines.acknowledge_by,
        "resolve_by": e.deadlines.resolve_by,
        "rule_version": e.versions.rule_version,
        "taxonomy_version": e.versions.taxonomy_version,
        "grid_version": e.versions.grid_version,
        "body": (r.value or b"").decode("utf-8", "replace"),
    }


class LakeSink:
    """Consumer-loop handler writing `case.lifecycle.v1` to the lake, exactly once (module doc)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._next: dict[tuple[str, int], int] = {}  # the offset the next batch should start at
        self.written = 0
        self.skipped = 0

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        by_partition: dict[tuple[str, int], list[Record]] = {}
        for r in records:
            by_partition.setdefault((r.topic, r.partition), []).append(r)
        for (topic, partition), recs in sorted(by_partition.items()):
            await asyncio.to_thread(self._write, topic, partition, recs)
        return BatchResult()

    def _write(self, topic: str, partition: int, recs: list[Record]) -> None:
        first, last = min(r.offset for r in recs), max(r.offset for r in recs)
        if self._next.get((topic, partition)) != first:
            self._clear_from(partition, first)
        days: dict[date, list[dict[str, Any]]] = {}
        for r in sorted(recs, key=lambda r: r.offset):
            row = lifecycle_row(r)
            if row is None:
                self.skipped += 1
                continue
            days.setdefault(row[0], []).append(row[1])
        for day, day_rows in sorted(days.items()):
            meta = export.as_of_dict(None) | {
                "source": {"topic": topic, "partition": partition, "first_offset": first, "last_offset": last}
            }
            table = pa.Table.from_pylist(day_rows, schema=LIFECYCLE_SCHEMA)
            path = f"lifecycle/day={day.isoformat()}/p{partition:03d}-{first:020d}-{last:020d}.parquet"
            self.store.put(path, export.parquet_bytes(table, meta))
            self.written += len(day_rows)
        self._next[(topic, partition)] = last + 1

    def _clear_from(self, partition: int, first: int) -> None:
        """Delete this partition's files from `first` on: written by an attempt that was never committed."""
        for path in self.store.list("lifecycle"):
            m = _FILE.match(path)
            if m and int(m["p"]) == partition and int(m["first"]) >= first:
                log.info("lake: removing %s, left by an uncommitted batch", path)
                self.store.delete(path)


# -- facts and dimensions ------------------------------------------------------------------------------


class LakeFacts:
    """Rewrites the lake's fact files of the days the given cases were registered on."""

    def __init__(self, store: ObjectStore, models: ReadModels, topic: str) -> None:
        self.store, self.models, self.topic = store, models, topic

    async def refresh(self, case_ids: set[str]) -> None:
        days = await self.models.registration_days(case_ids)
        await self.write_days(days)

    async def write_days(self, days: Iterable[date]) -> None:
        by_day = await self.models.facts_registered_on(sorted(set(days)))
        meta = export.as_of_dict(await self.models.as_of(self.topic))
        definition = self.models.definition
        for day, facts in sorted(by_day.items()):
            cases = export.facts_parquet(facts, definition, meta)
            stints = export.stints_parquet(facts, definition, meta)
            await asyncio.to_thread(self.store.put, f"facts/cases/day={day.isoformat()}/cases.parquet", cases)
            await asyncio.to_thread(
                self.store.put, f"facts/stints/day={day.isoformat()}/stints.parquet", stints
            )


class LakeDimensions:
    """Rewrites the lake's dimension files (personal fields masked: lake readers hold no such rights)."""

    def __init__(self, store: ObjectStore, dimensions: Dimensions) -> None:
        self.store, self.dimensions = store, dimensions

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        result = await self.dimensions.handle(records)
        kinds = {(r.key or b"").decode("utf-8", "replace").partition(":")[0] for r in records}
        for name, kind in KINDS.items():
            if kind in kinds:
                await self.write(name)
        return result

    async def write(self, name: str) -> None:
        kind = KINDS[name]
        table = rows(kind, await self.dimensions.versions(kind), personal_data=False)
        data = export.dimension_parquet(kind, table, export.as_of_dict(None) | {"dimension": name})
        await asyncio.to_thread(self.store.put, f"dimensions/{name}.parquet", data)
