"""Appends batches of Kafka records to the trail: gapless ``seq``, exactly once, in one transaction.

Contract of ``TrailWriter.append(records)``:
- Records already in the trail are skipped, by position (offset below the partition's
  ``tap_position.next_offset``) and by event (same topic and event id recorded within
  ``dedupe_window_s``, or earlier in the same batch). Calling it again with the same records, or any
  subset of them, after a crash or a retry, appends nothing twice: it is idempotent.
- The new entries get ``seq`` = the log's size onwards, in position order (topic, partition, offset),
  all with one ``recorded_at`` later than any before, so seq order and recording order agree. Rows,
  completed subtree roots, positions and the log's new size and Merkle frontier are committed in ONE
  transaction, under the ``log_state`` row lock: a SIGKILL at any point leaves either all of a batch
  or none of it, never a gap or a duplicate, and several writers (instances) are serialized rather
  than interleaved.
- Writes run as role ``audit_writer`` (SELECT and INSERT only on the trail).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from audit.database import Database
from audit.domain.capture import DEFAULT_TRUST, Capture, TopicTrust, describe, entry_of
from audit.domain.entry import AuditEntry
from audit.domain.merkle import MerkleFrontier
from audit.domain.subtrees import append_recording
from onegrid.kafka import Record

# Subtree roots of at least this height are stored: ~1 row per 128 leaves, proofs read < 256 leaves.
NODE_MIN_HEIGHT = 8

TRAIL_COLUMNS = (
    "seq",
    "recorded_at",
    "topic",
    "partition",
    "offset",
    "kafka_ts",
    "source",
    "event_id",
    "event_type",
    "key",
    "case_id",
    "actor",
    "trace_id",
    "related_cases",
    "refs",
    "origin",
    "headers",
    "payload_sha256",
    "payload",
    "leaf_hash",
    "leaf_version",
)


@dataclass(frozen=True, slots=True)
class Appended:
    """What one ``append`` did: entries added, records skipped as already recorded, the log's size."""

    appended: int
    duplicates: int
    tree_size: int


def month_of(t: datetime) -> date:
    return date(t.year, t.month, 1)


def months_from(first: date, count: int) -> list[date]:
    out, y, m = [], first.year, first.month
    for _ in range(count):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


async def ensure_partitions(conn: asyncpg.Connection, now: datetime, ahead: int) -> list[str]:
    """Create the trail partitions of ``now``'s month and ``ahead`` months after (idempotent; as owner)."""
    names = []
    for month in months_from(month_of(now), ahead + 1):
        names.append(await conn.fetchval("SELECT ensure_trail_partition($1)", month))
    return names


class TrailWriter:
    def __init__(
        self,
        db: Database,
        *,
        dedupe_window_s: float = 7 * 24 * 3600.0,
        partitions_ahead: int = 2,
        clock: Any = None,
        trust: TopicTrust = DEFAULT_TRUST,
    ) -> None:
        self._db = db
        self._trust = trust
        self._window = timedelta(seconds=dedupe_window_s)
        self._ahead = partitions_ahead
        self._clock = clock or (lambda: datetime.now(UTC))
        self._ensured: set[date] = set()

    async def append(self, records: Sequence[Record]) -> Appended:
        now = self._clock()
        async with self._db.acquire() as conn:
            if month_of(now) not in self._ensured:
                await ensure_partitions(conn, now, self._ahead)
                self._ensured.update(months_from(month_of(now), self._ahead + 1))
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE audit_writer")
                return await self._append(conn, records, now)

    async def _append(self, conn: asyncpg.Connection, records: Sequence[Record], now: datetime) -> Appended:
        state = await conn.fetchrow("SELECT size, frontier, last_recorded_at FROM log_state FOR UPDATE")
        frontier = MerkleFrontier.from_bytes(state["frontier"])
        fresh = await self._unrecorded(conn, records)
        captures = [
            describe(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                headers=r.headers,
                trust=self._trust,
            )
            for r in fresh
        ]
        keep = await self._new_events(conn, captures, now)
        # The log's order has two independent encodings, both in every leaf: seq, and the recording
        # order (recorded_at, topic, partition, offset). recorded_at strictly increases per batch and
        # a batch is appended in position order (which keeps each partition's offset order), so the
        # export can list entries in recording order and the verifier catches a seq that disagrees.
        keep.sort(key=lambda j: (captures[j].topic, captures[j].partition, captures[j].offset))
        last = state["last_recorded_at"]
        recorded_at = now if last is None or now > last else last + timedelta(microseconds=1)
        size = state["size"]
        rows, leaves = [], []
        for i, (record, cap) in enumerate((fresh[j], captures[j]) for j in keep):
            entry = entry_of(cap, seq=size + i, recorded_at=recorded_at)
            leaf = entry.leaf_hash()
            leaves.append(leaf)
            rows.append(trail_row(entry, cap, record.timestamp, leaf))
        frontier, nodes = append_recording(frontier, leaves, min_height=NODE_MIN_HEIGHT)
        if rows:
            await conn.copy_records_to_table("trail", records=rows, columns=TRAIL_COLUMNS)
        if nodes:
            await conn.copy_records_to_table(
                "tree_node",
                records=[(n.height, n.position, n.hash) for n in nodes],
                columns=("height", "position", "hash"),
            )
        await self._advance_positions(conn, records)
        if rows:
            await conn.execute(
                "UPDATE log_state SET size = $1, frontier = $2, last_recorded_at = $3",
                frontier.size,
                frontier.to_bytes(),
                recorded_at,
            )
        return Appended(len(rows), len(records) - len(rows), frontier.size)

    async def _unrecorded(self, conn: asyncpg.Connection, records: Sequence[Record]) -> list[Record]:
        parts = sorted({(r.topic, r.partition) for r in records})
        found = await conn.fetch(
            "SELECT p.topic, p.partition, p.next_offset FROM tap_position p "
            "JOIN unnest($1::text[], $2::int[]) AS b(topic, partition) USING (topic, partition)",
            [t for t, _ in parts],
            [p for _, p in parts],
        )
        next_offset = {(r["topic"], r["partition"]): r["next_offset"] for r in found}
        out, seen = [], set()
        for r in records:
            pos = (r.topic, r.partition, r.offset)
            if r.offset >= next_offset.get((r.topic, r.partition), 0) and pos not in seen:
                seen.add(pos)
                out.append(r)
        return out

    async def _new_events(self, conn: asyncpg.Connection, caps: list[Capture], now: datetime) -> list[int]:
        """Indexes of the captures whose event was not recorded yet (a producer's retry or an
        at-least-once replay re-publishes one event at a new offset)."""
        named = [(c.topic, c.event_id) for c in caps if not c.event_id.startswith("kafka:")]
        known: set[tuple[str, str]] = set()
        if named:
            rows = await conn.fetch(
                "SELECT DISTINCT t.topic, t.event_id FROM trail t "
                "JOIN unnest($1::text[], $2::text[]) AS b(topic, event_id) USING (topic, event_id) "
                "WHERE t.recorded_at >= $3",
                [t for t, _ in named],
                [e for _, e in named],
                now - self._window,
            )
            known = {(r["topic"], r["event_id"]) for r in rows}
        keep = []
        for i, c in enumerate(caps):
            ident = (c.topic, c.event_id)
            if ident in known:
                continue
            known.add(ident)
            keep.append(i)
        return keep

    async def _advance_positions(self, conn: asyncpg.Connection, records: Sequence[Record]) -> None:
        upto: dict[tuple[str, int], int] = {}
        for r in records:
            key = (r.topic, r.partition)
            upto[key] = max(upto.get(key, 0), r.offset + 1)
        await conn.execute(
            "INSERT INTO tap_position (topic, partition, next_offset) "
            "SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = "
            "greatest(tap_position.next_offset, excluded.next_offset)",
            [k[0] for k in upto],
            [k[1] for k in upto],
            list(upto.values()),
        )


def trail_row(entry: AuditEntry, cap: Capture, kafka_ts_ms: int | None, leaf: bytes) -> tuple[Any, ...]:
    kafka_ts = datetime.fromtimestamp(kafka_ts_ms / 1000, UTC) if kafka_ts_ms and kafka_ts_ms > 0 else None
    return (
        entry.seq,
        entry.recorded_at,
        cap.topic,
        cap.partition,
        cap.offset,
        kafka_ts,
        cap.source,
        cap.event_id,
        cap.event_type,
        cap.key,
        cap.case_id,
        cap.actor,
        cap.trace_id,
        list(cap.related_cases) or None,
        list(cap.refs) or None,
        cap.origin,
        json.dumps(cap.headers, ensure_ascii=False),
        entry.payload_sha256,
        cap.payload,
        leaf,
        entry.leaf_version,
    )
