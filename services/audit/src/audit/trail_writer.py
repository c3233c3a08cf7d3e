"""Appends batches of Kafka records to the trail: gapless ``seq``, exactly once, in one transaction.

Contract of ``TrailWriter.append(records)``:
- Records already in the trail are skipped by source position alone: (topic id, partition, offset),
  the topic id being the Kafka topic's UUID (``onegrid.kafka.topic_ids``), so a topic deleted and
  created again under its name is a new key. Calling it again with the same records, or any subset of
  them, after a crash or a retry, appends nothing twice: it is idempotent. Not by event id: a message
  published again (a replay from the console keeps its CloudEvents id) is a new message on the wire,
  and the trail records what was on the wire.
- A record below its partition's ``tap_position.next_offset`` is a redelivery when the trail holds
  the same payload at that position. Otherwise the partition's position went back under the same id:
  its log was truncated and written again (an unclean leader election, a restore), and the offsets now
  name other records. That is an alarm (``audit_position_regressions`` and a warning naming the
  partition; alert ``OneGridAuditPositionRegressed``), and the record is kept: nothing is lost.
- The new entries get ``seq`` = the log's size onwards, in recording order (``audit.domain.recording``:
  each partition's offset order, partitions interleaved by Kafka timestamp), each with its own
  ``recorded_at``, one microsecond after the one before, so seq order and recording order agree. Rows,
  completed subtree roots, positions and the log's new size and Merkle frontier are committed in ONE
  transaction, under the ``log_state`` row lock: a SIGKILL at any point leaves either all of a batch
  or none of it, never a gap or a duplicate, and several writers (instances) are serialized rather
  than interleaved.
- Writes run as role ``audit_writer`` (SELECT and INSERT only on the trail).

Where a batch's time goes: describing each record (``describe``), hashing its leaf and building its
row here; inserting the rows and updating the trail's indexes in PostgreSQL. The two overlap: the
reads under the lock go on while records are described, and the rows are COPYed in chunks, each
inserted by the server while the next is built (``PipelinedCopy``). The subtree roots, positions and
state then take one statement.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import msgspec

from audit.database import Database
from audit.domain.capture import DEFAULT_TRUST, Capture, TopicTrust, describe
from audit.domain.entry import LEAF_VERSION, micros
from audit.domain.merkle import MerkleFrontier
from audit.domain.recording import recording_order, recording_times, stamp
from audit.domain.subtrees import CompletedSubtree, append_recording
from audit.pipelined_copy import PipelinedCopy
from onegrid import telemetry
from onegrid.kafka import Record

log = logging.getLogger(__name__)

# Topic ids by name (onegrid.kafka.topic_ids.TopicIds); `fresh` looks them up again.
TopicIdLookup = Callable[..., Awaitable[dict[str, uuid.UUID]]]
Key = tuple[str, int]  # (topic id, or name for a topic without one), partition

_JSON = msgspec.json.Encoder()  # the headers, for their jsonb column

# Subtree roots of at least this height are stored: ~1 row per 128 leaves, proofs read < 256 leaves.
NODE_MIN_HEIGHT = 8
# Rows per COPY (the server inserts one chunk while the next is built) and per turn of the event
# loop (the chunk in flight, or the reads, progress between turns). The first chunk's building and
# the last one's insert overlap nothing: at 100 rows (250 before) a 500-record batch waited on the
# server a quarter less (0.55 -> 0.41 s over 50,000 rows, `python -m bench.audit_sink`).
COPY_CHUNK = 100
YIELD_EVERY = 32

# Completed subtree roots, positions (by topic id, or by name for a topic without one) and the log's
# state, after the rows: one statement. Each partition appears once per batch, so no row is updated
# twice; positions only move forward.
ADVANCE = """
WITH nodes AS (
    INSERT INTO tree_node (height, position, hash)
    SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
), by_id AS (
    INSERT INTO tap_position (topic, partition, next_offset, topic_id)
    SELECT * FROM unnest($4::text[], $5::int[], $6::bigint[], $7::uuid[])
    ON CONFLICT (topic_id, partition) WHERE topic_id IS NOT NULL
    DO UPDATE SET next_offset = greatest(tap_position.next_offset, excluded.next_offset)
), by_name AS (
    INSERT INTO tap_position (topic, partition, next_offset)
    SELECT * FROM unnest($8::text[], $9::int[], $10::bigint[])
    ON CONFLICT (topic, partition) WHERE topic_id IS NULL
    DO UPDATE SET next_offset = greatest(tap_position.next_offset, excluded.next_offset)
)
UPDATE log_state SET size = $11, frontier = $12, last_recorded_at = coalesce($13, last_recorded_at)
"""

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
    "topic_id",
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
        topic_ids: TopicIdLookup | None = None,
        partitions_ahead: int = 2,
        clock: Any = None,
        trust: TopicTrust = DEFAULT_TRUST,
    ) -> None:
        self._db = db
        self._trust = trust
        self._topic_ids = topic_ids  # None: positions keyed by topic name (no cluster to ask)
        self._ahead = partitions_ahead
        self._clock = clock or (lambda: datetime.now(UTC))
        self._ensured: set[date] = set()
        self.regressions = 0
        self._m_regressions = telemetry.meter("audit").create_counter(
            "audit_position_regressions",
            description="records found below their partition's recorded position with other content",
        )
        self._m_regressions.add(0)  # the series exists from the start, so the alert's rate reads 0

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
        captures = Captures(records, self._trust)
        # The reads under the lock (state, topic ids, positions) are round trips: the records are
        # described meanwhile (that needs none of them).
        reads = asyncio.ensure_future(self._read(conn, records))
        try:
            await captures.describe_until(reads)
        except BaseException:
            await asyncio.wait([reads])
            raise
        state, ids, next_offset = await reads
        fresh = await self._unrecorded(conn, records, captures, ids, next_offset)
        # The log's order has two independent encodings, both in every leaf: seq, and recorded_at,
        # which strictly increases along seq. The export lists entries by recorded_at (then position,
        # for older batches that share one instant) and the verifier catches a seq that disagrees.
        order = recording_order(
            [stamp(r.timestamp, r.topic, r.partition, r.offset) for r in (records[j] for j in fresh)]
        )
        picks = [fresh[k] for k in order]
        times = recording_times(state["last_recorded_at"], now, len(picks))
        frontier, nodes = await self._write_rows(
            conn, records, captures, picks, ids, MerkleFrontier.from_bytes(state["frontier"]), times
        )
        await self._advance(conn, records, ids, nodes, frontier, times[-1] if times else None)
        return Appended(len(picks), len(records) - len(picks), frontier.size)

    async def _read(
        self, conn: asyncpg.Connection, records: Sequence[Record]
    ) -> tuple[asyncpg.Record, dict[str, uuid.UUID], dict[Key, int]]:
        """The log's state (taking its row lock), the batch's topic ids, its partitions' positions."""
        state = await conn.fetchrow("SELECT size, frontier, last_recorded_at FROM log_state FOR UPDATE")
        ids = await self._ids(conn, records)
        next_offset = await self._positions(conn, {(r.topic, r.partition) for r in records}, ids)
        return state, ids, next_offset

    async def _write_rows(
        self,
        conn: asyncpg.Connection,
        records: Sequence[Record],
        captures: Captures,
        picks: list[int],
        ids: dict[str, uuid.UUID],
        tree: MerkleFrontier,
        times: list[datetime],
    ) -> tuple[MerkleFrontier, list[CompletedSubtree]]:
        """COPY the picked records as entries ``tree.size``, ``tree.size + 1``...; the tree with their
        leaves appended. Each chunk is inserted by the server while the next one is described and built
        (``PipelinedCopy``), and the last one while the leaves go into the tree."""
        size = tree.size
        first_us = micros(times[0]) if times else 0
        leaves: list[bytes] = []
        async with PipelinedCopy(conn, "trail", TRAIL_COLUMNS) as copy:
            for start in range(0, len(picks), COPY_CHUNK):
                rows = []
                for i in range(start, min(start + COPY_CHUNK, len(picks))):
                    if i % YIELD_EVERY == 0:
                        await asyncio.sleep(0)  # the chunk in flight goes on to the server
                    record, cap = records[picks[i]], captures[picks[i]]
                    leaf = cap.leaf_hash(seq=size + i, recorded_at_us=first_us + i)
                    leaves.append(leaf)
                    topic_id = ids.get(record.topic)
                    rows.append(trail_row(cap, size + i, times[i], leaf, record.timestamp, topic_id=topic_id))
                await copy.send(rows)
            return append_recording(tree, leaves, min_height=NODE_MIN_HEIGHT)

    async def _ids(self, conn: asyncpg.Connection, records: Sequence[Record]) -> dict[str, uuid.UUID]:
        """The topic ids of the batch's topics. Looked up again when a record falls below the
        position kept for its cached id: the topic may have been deleted and created again."""
        if self._topic_ids is None:
            return {}
        names = sorted({r.topic for r in records})
        ids = await self._topic_ids(names)
        lowest: dict[tuple[str, int], int] = {}
        for r in records:
            part = (r.topic, r.partition)
            lowest[part] = min(lowest.get(part, r.offset), r.offset)
        known = [(t, p, low) for (t, p), low in lowest.items() if t in ids]
        if known:
            below = await conn.fetchval(
                "SELECT bool_or(b.low < p.next_offset) FROM tap_position p "
                "JOIN unnest($1::uuid[], $2::int[], $3::bigint[]) AS b(topic_id, partition, low) "
                "USING (topic_id, partition)",
                [ids[t] for t, _, _ in known],
                [p for _, p, _ in known],
                [low for _, _, low in known],
            )
            if below:
                ids = await self._topic_ids(names, fresh=True)
        if ids:  # rows from before positions had ids: adopted by the id the name has now
            await conn.execute(
                "UPDATE tap_position p SET topic_id = b.topic_id FROM unnest($1::text[], $2::uuid[]) "
                "AS b(topic, topic_id) WHERE p.topic = b.topic AND p.topic_id IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM tap_position q WHERE q.topic_id = b.topic_id AND q.partition = p.partition)",
                list(ids),
                list(ids.values()),
            )
        return ids

    async def _unrecorded(
        self,
        conn: asyncpg.Connection,
        records: Sequence[Record],
        captures: Captures,
        ids: dict[str, uuid.UUID],
        next_offset: dict[Key, int],
    ) -> list[int]:
        """Indexes of the records to append: not seen earlier in the batch, and at or beyond their
        partition's position, or below it with content the trail does not hold there (a regression)."""
        out, seen, below = [], set(), []
        for j, r in enumerate(records):
            pos = (r.topic, r.partition, r.offset)
            if pos in seen:
                continue
            seen.add(pos)
            if r.offset >= next_offset.get(_key(r.topic, r.partition, ids), 0):
                out.append(j)
            else:
                below.append(j)
        if below:
            recorded = await self._recorded_payloads(conn, [records[j] for j in below], ids)
            for j in below:
                r = records[j]
                if captures[j].payload_sha256 in recorded.get((r.topic, r.partition, r.offset), set()):
                    continue  # a redelivery
                self._regressed(r, ids, next_offset[_key(r.topic, r.partition, ids)])
                out.append(j)
        return out

    async def _positions(
        self, conn: asyncpg.Connection, parts: Iterable[tuple[str, int]], ids: dict[str, uuid.UUID]
    ) -> dict[Key, int]:
        by_id = sorted((str(ids[t]), p) for t, p in parts if t in ids)
        by_name = sorted((t, p) for t, p in parts if t not in ids)
        found = await conn.fetch(
            "SELECT p.topic_id::text AS k, p.partition, p.next_offset FROM tap_position p "
            "JOIN unnest($1::uuid[], $2::int[]) AS b(topic_id, partition) USING (topic_id, partition) "
            "UNION ALL SELECT p.topic, p.partition, p.next_offset FROM tap_position p "
            "JOIN unnest($3::text[], $4::int[]) AS b(topic, partition) USING (topic, partition) "
            "WHERE p.topic_id IS NULL",
            [uuid.UUID(k) for k, _ in by_id],
            [p for _, p in by_id],
            [t for t, _ in by_name],
            [p for _, p in by_name],
        )
        return {(r["k"], r["partition"]): r["next_offset"] for r in found}

    async def _recorded_payloads(
        self, conn: asyncpg.Connection, records: list[Record], ids: dict[str, uuid.UUID]
    ) -> dict[tuple[str, int, int], set[bytes]]:
        """The payload digests the trail holds at the records' positions (rows from before topic ids
        match by name)."""
        rows = await conn.fetch(
            'SELECT b.topic, t.partition, t."offset", t.payload_sha256 FROM trail t '
            "JOIN unnest($1::text[], $2::uuid[], $3::int[], $4::bigint[]) AS b(topic, topic_id, partition, o) "
            'ON t.topic = b.topic AND t.partition = b.partition AND t."offset" = b.o '
            "AND (t.topic_id = b.topic_id OR t.topic_id IS NULL OR b.topic_id IS NULL)",
            [r.topic for r in records],
            [ids.get(r.topic) for r in records],
            [r.partition for r in records],
            [r.offset for r in records],
        )
        out: dict[tuple[str, int, int], set[bytes]] = {}
        for row in rows:
            out.setdefault((row["topic"], row["partition"], row["offset"]), set()).add(
                bytes(row["payload_sha256"])
            )
        return out

    def _regressed(self, r: Record, ids: dict[str, uuid.UUID], next_offset: int) -> None:
        self.regressions += 1
        self._m_regressions.add(1, {"topic": r.topic, "partition": str(r.partition)})
        log.warning(
            "position went back on %s[%d] (topic id %s): offset %d, recorded up to %d, holds another "
            "record now (log truncated and written again?); recorded it too",
            r.topic,
            r.partition,
            ids.get(r.topic),
            r.offset,
            next_offset,
        )

    async def _advance(
        self,
        conn: asyncpg.Connection,
        records: Sequence[Record],
        ids: dict[str, uuid.UUID],
        nodes: list[CompletedSubtree],
        frontier: MerkleFrontier,
        last_recorded_at: datetime | None,
    ) -> None:
        """The completed subtree roots, the partitions' positions past the batch, and the log's new
        size, frontier and newest recording time: one statement, one round trip."""
        upto: dict[tuple[str, int], int] = {}
        for r in records:
            key = (r.topic, r.partition)
            upto[key] = max(upto.get(key, 0), r.offset + 1)
        with_id = [(t, p, n) for (t, p), n in upto.items() if t in ids]
        without = [(t, p, n) for (t, p), n in upto.items() if t not in ids]
        await conn.execute(
            ADVANCE,
            [n.height for n in nodes],
            [n.position for n in nodes],
            [n.hash for n in nodes],
            [t for t, _, _ in with_id],
            [p for _, p, _ in with_id],
            [n for _, _, n in with_id],
            [ids[t] for t, _, _ in with_id],
            [t for t, _, _ in without],
            [p for _, p, _ in without],
            [n for _, _, n in without],
            frontier.size,
            frontier.to_bytes(),
            last_recorded_at,
        )


class Captures:
    """The batch's records, each described once (``describe``), when first needed."""

    def __init__(self, records: Sequence[Record], trust: TopicTrust) -> None:
        self._records = records
        self._trust = trust
        self._done: dict[int, Capture] = {}

    def __getitem__(self, j: int) -> Capture:
        cap = self._done.get(j)
        if cap is None:
            r = self._records[j]
            cap = self._done[j] = describe(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                headers=r.headers,
                trust=self._trust,
            )
        return cap

    async def describe_until(self, done: asyncio.Future[Any]) -> None:
        """Describe records in batch order until ``done`` is, turning the event loop between slices
        (that is when ``done``'s round trips go on)."""
        for start in range(0, len(self._records), YIELD_EVERY):
            await asyncio.sleep(0)
            if done.done():
                return
            for j in range(start, min(start + YIELD_EVERY, len(self._records))):
                self[j]


def _key(topic: str, partition: int, ids: dict[str, uuid.UUID]) -> Key:
    return (str(ids[topic]) if topic in ids else topic, partition)


def trail_row(
    cap: Capture,
    seq: int,
    recorded_at: datetime,
    leaf: bytes,
    kafka_ts_ms: int | None,
    *,
    topic_id: uuid.UUID | None = None,
) -> tuple[Any, ...]:
    """The ``trail`` row (``TRAIL_COLUMNS``) of a captured record at ``seq``, whose leaf hash is ``leaf``."""
    kafka_ts = datetime.fromtimestamp(kafka_ts_ms / 1000, UTC) if kafka_ts_ms and kafka_ts_ms > 0 else None
    return (
        seq,
        recorded_at,
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
        _JSON.encode(cap.headers).decode(),
        cap.payload_sha256,
        cap.payload,
        leaf,
        LEAF_VERSION,
        topic_id,
    )
