"""Reads of the trail: entries by case, trace, actor and time; a case's whole story; proofs; exports.

Every read is a plain SELECT (the service never updates the trail). Proofs are computed from stored
subtree roots (``tree_node``, height >= 8) and at most 255 leaf hashes per perfect subtree, so their
cost is O(log n) whatever the log's size.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from audit.database import Database
from audit.domain.entry import LEAF_V1, AuditEntry, headers_digest
from audit.domain.merkle import StoredTree, consistency_proof_ranges, inclusion_proof_ranges
from audit.domain.subtrees import perfect_subtrees, split_subtree
from audit.domain.tree_head import SignedTreeHead
from audit.trail_writer import NODE_MIN_HEIGHT

ENTRY_COLUMNS = (
    'seq, recorded_at, topic, partition, "offset", kafka_ts, source, event_id, event_type, key, case_id, '
    "actor, trace_id, related_cases, refs, origin, headers, payload_sha256, payload, leaf_hash, leaf_version"
)


class LogDamaged(RuntimeError):
    """The stored log lacks something it must have (a leaf or subtree root): it was tampered with."""


class NotInLog(LookupError):
    """The asked-for entry, size or head is not (yet) in the log; the message says which."""


@dataclass(frozen=True, slots=True)
class EntryFilter:
    case_id: str | None = None
    trace_id: str | None = None
    actor: str | None = None
    topic: str | None = None
    event_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = -1

    def where(self) -> tuple[str, list[Any]]:
        clauses = ["seq > $1"]
        params: list[Any] = [self.after_seq]
        for column, value in (
            ("case_id", self.case_id),
            ("trace_id", self.trace_id),
            ("actor", self.actor),
            ("topic", self.topic),
            ("event_type", self.event_type),
        ):
            if value is not None:
                params.append(value)
                clauses.append(f"{column} = ${len(params)}")
        if self.since is not None:
            params.append(self.since)
            clauses.append(f"recorded_at >= ${len(params)}")
        if self.until is not None:
            params.append(self.until)
            clauses.append(f"recorded_at < ${len(params)}")
        return " AND ".join(clauses), params


# The most specific division code a case event (division.*) or lifecycle event (dimensions.*) names;
# evaluated only for `cn.onegrid.case.*` events, whose payloads are UTF-8 JSON by contract.
_J = "convert_from(s.payload, 'UTF8')::jsonb"
CASE_DIVISION = (
    "COALESCE("
    + ", ".join(
        f"{_J} #>> '{{{obj},{level}}}'"
        for obj, levels in (
            ("division", ("micro_grid", "grid", "community", "street", "district")),
            ("dimensions", ("grid", "community", "street", "district")),
        )
        for level in levels
    )
    + ")"
)


def to_entry(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        recorded_at=row["recorded_at"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        key=row["key"],
        case_id=row["case_id"],
        actor=row["actor"],
        trace_id=row["trace_id"],
        payload_sha256=bytes(row["payload_sha256"]),
        payload=None if row["payload"] is None else bytes(row["payload"]),
        **_headers_of(row),
    )


def _headers_of(row: asyncpg.Record) -> dict[str, Any]:
    """A v2 entry's headers and their digest (recomputed from the stored headers: the leaf, stored
    with the row, tells whether they are still what was recorded); nothing for a v1 entry."""
    if row["leaf_version"] == LEAF_V1:
        return {}
    headers = json.loads(row["headers"]) if isinstance(row["headers"], str) else dict(row["headers"])
    return {"headers_sha256": headers_digest(headers), "headers": headers}


def to_head(row: asyncpg.Record) -> SignedTreeHead:
    return SignedTreeHead(
        row["tree_size"], bytes(row["root_hash"]), row["timestamp_ms"], row["key_id"], bytes(row["signature"])
    )


class TrailStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def size(self) -> int:
        async with self._db.acquire() as conn:
            return int(await conn.fetchval("SELECT size FROM log_state"))

    async def entries(self, flt: EntryFilter, limit: int) -> list[asyncpg.Record]:
        where, params = flt.where()
        params.append(limit)
        sql = f"SELECT {ENTRY_COLUMNS} FROM trail WHERE {where} ORDER BY seq LIMIT ${len(params)}"
        async with self._db.acquire() as conn:
            return list(await conn.fetch(sql, *params))

    async def entry(self, seq: int) -> asyncpg.Record:
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {ENTRY_COLUMNS} FROM trail WHERE seq = $1", seq)
        if row is None:
            raise NotInLog(f"no entry with seq {seq}")
        return row

    async def story(
        self, case_id: str, limit: int, prefixes: list[str] | None = None
    ) -> list[asyncpg.Record]:
        """Everything about one case, in log order: its events and those naming it (merges), the source
        records they were built from (legacy packets), and those records' dead letters and quarantines.
        `prefixes` (SQL LIKE patterns of division codes; None = no restriction): nothing is returned
        unless one of the case's own events places it in one of those divisions."""
        sql = f"""
            WITH direct AS (
                SELECT seq, refs FROM trail WHERE case_id = $1 OR related_cases @> ARRAY[$1]::text[]
            ), referenced AS (
                SELECT DISTINCT unnest(refs) AS ref FROM direct
            ), story AS (
                SELECT seq FROM direct
                UNION SELECT t.seq FROM trail t JOIN referenced r
                    ON t.topic = split_part(r.ref, '/', 1)
                   AND t.partition = split_part(r.ref, '/', 2)::int
                   AND t."offset" = split_part(r.ref, '/', 3)::bigint
                UNION SELECT t.seq FROM trail t JOIN referenced r ON t.origin = r.ref
            )
            SELECT {ENTRY_COLUMNS} FROM trail WHERE seq IN (SELECT seq FROM story)
               AND ($3::text[] IS NULL OR EXISTS (
                   SELECT 1 FROM trail s WHERE s.case_id = $1 AND s.payload IS NOT NULL
                      AND (CASE WHEN s.event_type LIKE 'cn.onegrid.case.%' THEN {CASE_DIVISION} END)
                          LIKE ANY($3::text[])))
             ORDER BY seq LIMIT $2
        """
        async with self._db.acquire() as conn:
            return list(await conn.fetch(sql, case_id, limit, prefixes))

    async def heads(self, after_size: int = -1, limit: int = 1000) -> list[SignedTreeHead]:
        async with self._db.acquire() as conn:
            rows = await conn.fetch(
                "SELECT * FROM tree_head WHERE tree_size > $1 ORDER BY tree_size, timestamp_ms LIMIT $2",
                after_size,
                limit,
            )
        return [to_head(r) for r in rows]

    async def latest_head(self) -> SignedTreeHead:
        async with self._db.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM tree_head ORDER BY tree_size DESC, timestamp_ms DESC LIMIT 1"
            )
        if row is None:
            raise NotInLog("no tree head has been signed yet")
        return to_head(row)

    # -- proofs -----------------------------------------------------------------------------

    async def _tree(self, conn: asyncpg.Connection, ranges: Iterable[tuple[int, int]]) -> StoredTree:
        """A StoredTree able to answer for exactly ``ranges``, with everything it needs prefetched."""
        nodes: set[tuple[int, int]] = set()
        leaves: set[int] = set()
        for start, end in ranges:
            for height, position in perfect_subtrees(start, end):
                for h, p in split_subtree(height, position, NODE_MIN_HEIGHT):
                    if h >= NODE_MIN_HEIGHT:
                        nodes.add((h, p))
                    else:
                        leaves.add(p)
        cache: dict[tuple[int, int], bytes] = {}
        if nodes:
            rows = await conn.fetch(
                "SELECT n.height, n.position, n.hash FROM tree_node n "
                "JOIN unnest($1::smallint[], $2::bigint[]) AS w(height, position) USING (height, position)",
                [h for h, _ in nodes],
                [p for _, p in nodes],
            )
            cache = {(r["height"], r["position"]): bytes(r["hash"]) for r in rows}
        hashes: dict[int, bytes] = {}
        if leaves:
            rows = await conn.fetch(
                "SELECT seq, leaf_hash FROM trail WHERE seq = ANY($1::bigint[])", list(leaves)
            )
            hashes = {r["seq"]: bytes(r["leaf_hash"]) for r in rows}
        if missing := sorted(leaves - hashes.keys()) + sorted(nodes - cache.keys()):
            raise LogDamaged(
                f"the stored log lacks {missing[:5]} (leaves by seq, subtrees by (height, position))"
            )
        return StoredTree(
            lambda a, b: [hashes[i] for i in range(a, b)],
            cache=cache,
            cache_from_height=NODE_MIN_HEIGHT,
            fetch_limit=1 << NODE_MIN_HEIGHT,
        )

    async def _check_size(self, conn: asyncpg.Connection, tree_size: int) -> None:
        size = await conn.fetchval("SELECT size FROM log_state")
        if tree_size > size:
            raise NotInLog(f"tree_size {tree_size} is beyond the log's {size} entries")

    async def inclusion_proof(self, seq: int, tree_size: int) -> tuple[bytes, list[bytes], bytes]:
        """(leaf hash of entry ``seq``, PATH(seq, D[tree_size]), root of D[tree_size])."""
        if not 0 <= seq < tree_size:
            raise NotInLog(f"seq {seq} is not in a tree of size {tree_size}")
        async with self._db.acquire() as conn:
            await self._check_size(conn, tree_size)
            ranges = inclusion_proof_ranges(seq, tree_size)
            tree = await self._tree(conn, [*ranges, (seq, seq + 1), (0, tree_size)])
        return tree.range_root(seq, seq + 1), tree.inclusion_proof(seq, tree_size), tree.root(tree_size)

    async def consistency_proof(self, first: int, second: int) -> tuple[list[bytes], bytes, bytes]:
        """(PROOF(first, D[second]), root of D[first], root of D[second])."""
        if not 0 <= first <= second:
            raise NotInLog(f"no consistency proof from size {first} to size {second}")
        async with self._db.acquire() as conn:
            await self._check_size(conn, second)
            ranges = consistency_proof_ranges(first, second)
            tree = await self._tree(conn, [*ranges, *((0, n) for n in (first, second) if n)])
        return tree.consistency_proof(first, second), tree.root(first), tree.root(second)

    # -- export -----------------------------------------------------------------------------

    async def export_entries(
        self, start: int = 0, end: int | None = None, chunk: int = 5000
    ) -> AsyncIterator[AuditEntry]:
        """Entries from seq ``start`` (before seq ``end``) in RECORDING order (recorded_at; then topic,
        partition, offset for older batches that share one instant), read in chunks (a long export
        holds no transaction). The log appends in that order, so a row whose seq was changed shows up
        where the verifier sees the seq disagree."""
        async with self._db.acquire() as conn:
            first = await conn.fetchrow(
                'SELECT recorded_at, topic, partition, "offset" FROM trail WHERE seq = $1', start
            )
        if first is None:
            return
        cursor, inclusive, left = tuple(first), True, None if end is None else end - start
        while left is None or left > 0:
            n = chunk if left is None else min(chunk, left)
            op = ">=" if inclusive else ">"
            async with self._db.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT {ENTRY_COLUMNS} FROM trail "
                    f'WHERE (recorded_at, topic, partition, "offset") {op} ($1, $2, $3, $4) '
                    f'ORDER BY recorded_at, topic, partition, "offset" LIMIT {n}',
                    *cursor,
                )
            for row in rows:
                yield to_entry(row)
            if len(rows) < n:
                return
            last = rows[-1]
            cursor, inclusive = (last["recorded_at"], last["topic"], last["partition"], last["offset"]), False
            if left is not None:
                left -= len(rows)
