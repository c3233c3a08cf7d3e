"""The read models in PostgreSQL: lifecycle events, case facts and metric rows, kept in step per batch.

Contract of `ReadModels.apply(events)`: one transaction per batch. Events are stored once per
(case_id, seq) (a repeat inserts nothing); every case that gained an event is folded again from ALL
its stored events, so arrival order and repeats never matter. A changed case's contributions to the
units it counts in (`metric_member`, see evaluation.domain.metrics.Member) are replaced, and the
metric rows it counts in (before and after the change) are recomputed in one statement over those
rows' members: no other case's facts are read, decoded or folded; PostgreSQL combines each row from
an index range of compact member rows (medians are not additive, so a row's sample is read whole
there). The rows are those `aggregate_all` gives over all facts. Writers are serialized by one
transaction-scoped advisory lock, so the service and a concurrent `rebuild` never interleave the
read-fold-write of one case. Applying the same batch twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evaluation.domain.case_facts import CaseFacts, Policy, decode_facts, encode_facts, fold
from evaluation.domain.metrics import (
    COLUMNS,
    COUNTS,
    LISTS,
    QUANTILES,
    VERSIONS,
    MetricKey,
    MetricRow,
    Totals,
    keys_of,
    members_of,
    row_of,
)
from evaluation.domain.periods import instant, local_date, period_end
from evaluation.domain.scope import Scope
from onegrid_contracts.lifecycle import LifecycleEvent, decode_lifecycle

_LOCK = int.from_bytes(hashlib.sha256(b"evaluation.read_models").digest()[:8], "big", signed=True)
TABLES = ("lifecycle_event", "case_fact", "metric_member", "metric", "lineage")


@dataclass(frozen=True)
class Received:
    """A decoded event with the bytes and the position it was read from."""

    event: LifecycleEvent
    body: bytes
    topic: str
    partition: int
    offset: int


Positions = dict[tuple[str, int], int]  # (topic, partition) -> next offset


def positions_of(received: Iterable[Received]) -> Positions:
    out: Positions = {}
    for r in received:
        key = (r.topic, r.partition)
        out[key] = max(out.get(key, 0), r.offset + 1)
    return out


@dataclass(frozen=True)
class AsOf:
    """What an export reflects: the stream up to `next_offsets` (exclusive) of each partition of
    `topic`, taken in by `computed_at` (UTC), under `definition`."""

    topic: str
    next_offsets: dict[int, int]
    computed_at: datetime | None
    definition: str


@dataclass(frozen=True)
class Applied:
    stored: int  # new events
    repeats: int  # events already stored
    cases: int  # cases whose facts changed
    rows: int  # metric rows written or deleted


class ReadModels:
    def __init__(self, engine: AsyncEngine, policy: Policy) -> None:
        self._engine = engine
        self.policy = policy
        self.definition = policy.definition()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # -- writing -----------------------------------------------------------------------------------

    async def apply(self, received: Sequence[Received], positions: Positions | None = None) -> Applied:
        """`positions`: the next offset per (topic, partition) of the whole batch, dead letters
        included; recorded with the events as the as-of every export states."""
        if not received and not positions:
            return Applied(0, 0, 0, 0)
        async with self._engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            await _advance_lineage(conn, positions or positions_of(received))
            if not received:
                return Applied(0, 0, 0, 0)
            new_cases = await _insert_events(conn, received)
            stored = sum(new_cases.values())
            if not new_cases:
                return Applied(0, len(received), 0, 0)
            before = await _facts_of(conn, list(new_cases))
            after = {
                cid: fold(evs, self.policy) for cid, evs in (await _events_of(conn, list(new_cases))).items()
            }
            changed = {cid: f for cid, f in after.items() if before.get(cid) != f}
            await _upsert_facts(conn, changed.values())
            await _replace_members(conn, changed.values())
            keys: set[MetricKey] = set()
            for cid, f in changed.items():
                keys |= keys_of(f)
                if cid in before:
                    keys |= keys_of(before[cid])
            rows = await self._recompute(conn, keys)
            return Applied(stored, len(received) - stored, len(changed), rows)

    async def _recompute(self, conn: AsyncConnection, keys: set[MetricKey]) -> int:
        if not keys:
            return 0
        rows = {k: row_of(k, t, self.definition) for k, t in (await _totals(conn, keys)).items()}
        gone = keys - set(rows)
        if rows:
            cols = ", ".join(COLUMNS)
            params = ", ".join(f":{c}" for c in COLUMNS)
            figures = COLUMNS[4:]
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in figures)
            # computed_at moves only when a figure did: it says since when the row reads as it does.
            changed = (
                f"({', '.join(f'metric.{c}' for c in figures)}) IS DISTINCT FROM "
                f"({', '.join(f'EXCLUDED.{c}' for c in figures)})"
            )
            await conn.execute(
                text(
                    f"INSERT INTO metric ({cols}) VALUES ({params}) "
                    f"ON CONFLICT (dimension, granularity, period_start, value) DO UPDATE SET {updates}, "
                    f"computed_at = now() WHERE {changed}"
                ),
                [_row_params(r) for r in rows.values()],
            )
        if gone:
            await conn.execute(
                text(
                    "DELETE FROM metric WHERE dimension = :d AND value = :v AND granularity = :g "
                    "AND period_start = :p"
                ),
                [{"d": k.dimension, "v": k.value, "g": k.granularity, "p": k.period_start} for k in gone],
            )
        return len(rows) + len(gone)

    async def truncate(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))

    async def as_of(self, topic: str) -> AsOf:
        """Up to which offset of each partition of `topic` the read models have taken events in, and
        when they last did."""
        async with self._engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT partition, next_offset, updated_at FROM lineage WHERE topic = :t ORDER BY partition"
                ),
                {"t": topic},
            )
            rows = result.all()
        computed = max((r[2] for r in rows), default=None)
        return AsOf(
            topic=topic,
            next_offsets={int(p): int(o) for p, o, _ in rows},
            computed_at=computed,
            definition=self.definition,
        )

    async def other_definitions(self) -> dict[str, int]:
        """Rows still computed under another definition (until a rebuild recomputes them)."""
        async with self._engine.connect() as conn:
            result = await conn.execute(
                text("SELECT definition, count(*) FROM metric WHERE definition <> :d GROUP BY definition"),
                {"d": self.definition},
            )
            return {str(d): int(n) for d, n in result.all()}

    async def facts_registered_on(self, days: Sequence[date]) -> dict[date, list[CaseFacts]]:
        """The facts of the cases registered on each local day (for the bulk export by day)."""
        out: dict[date, list[CaseFacts]] = {d: [] for d in days}
        if not days:
            return out
        async with self._engine.connect() as conn:
            facts = await _facts_registered_in(
                conn, [(instant(d), instant(d + timedelta(days=1))) for d in days]
            )
        for f in sorted(facts, key=lambda f: (f.registered_at, f.case_id)):
            out.setdefault(local_date(f.registered_at), []).append(f)
        return out

    async def registration_days(self, case_ids: Iterable[str]) -> list[date]:
        ids = sorted(set(case_ids))
        if not ids:
            return []
        async with self._engine.connect() as conn:
            result = await conn.execute(
                text("SELECT registered_at FROM case_fact WHERE case_id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": ids},
            )
            return sorted({local_date(r) for (r,) in result.all()})

    # -- reading -----------------------------------------------------------------------------------

    async def metrics(
        self,
        *,
        scope: Scope,
        dimension: str | None = None,
        value: str | None = None,
        granularity: str | None = None,
        since: date | None = None,
        until: date | None = None,
        limit: int = 10_000,
    ) -> list[MetricRow]:
        """Rows the scope may see, ordered by dimension, granularity, period, value."""
        where: list[str] = ["TRUE"]
        params: dict[str, Any] = {"limit": limit}
        for col, v in (("dimension", dimension), ("value", value), ("granularity", granularity)):
            if v is not None:
                where.append(f"{col} = :{col}")
                params[col] = v
        if since is not None:
            where.append("period_start >= :since")
            params["since"] = since
        if until is not None:
            where.append("period_start <= :until")
            params["until"] = until
        if scope.code is not None:
            dims = [d for d in ("district", "street", "grid", "department") if scope.sees_dimension(d)]
            where.append("dimension = ANY(CAST(:dims AS text[])) AND starts_with(value, :code)")
            params.update(dims=dims, code=scope.code)
        sql = (
            f"SELECT {', '.join(COLUMNS)} FROM metric WHERE {' AND '.join(where)} "
            "ORDER BY dimension, granularity, period_start, value LIMIT :limit"
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(text(sql), params)
            rows = [_row(m) for m in result.mappings()]
        return [r for r in rows if scope.admits(r.dimension, r.value)]

    async def periods(
        self, granularity: str | None = None, since: date | None = None, until: date | None = None
    ) -> list[tuple[str, date]]:
        """The (granularity, period_start) of every period with at least one case in the city."""
        where, params = ["dimension = 'all'"], dict[str, Any]()
        if granularity is not None:
            where.append("granularity = :g")
            params["g"] = granularity
        if since is not None:
            where.append("period_start >= :since")
            params["since"] = since
        if until is not None:
            where.append("period_start <= :until")
            params["until"] = until
        async with self._engine.connect() as conn:
            result = await conn.execute(
                text(
                    f"SELECT granularity, period_start FROM metric WHERE {' AND '.join(where)} ORDER BY 1, 2"
                ),
                params,
            )
            return [(str(g), p) for g, p in result.all()]

    async def latest_period(self, dimension: str, granularity: str) -> date | None:
        async with self._engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT max(period_start) FROM metric WHERE dimension = :d AND granularity = :g"),
                    {"d": dimension, "g": granularity},
                )
            ).scalar_one_or_none()

    async def case_facts(self, case_id: str) -> CaseFacts | None:
        async with self._engine.connect() as conn:
            raw = (
                await conn.execute(
                    text("SELECT facts::text FROM case_fact WHERE case_id = CAST(:c AS uuid)"), {"c": case_id}
                )
            ).scalar_one_or_none()
        return decode_facts(raw) if raw is not None else None

    async def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table in a stable order, without arrival times: what a rebuild must reproduce."""
        queries = {
            "lifecycle_event": 'SELECT case_id, seq, event_id, body::text, topic, partition, "offset" '
            "FROM lifecycle_event ORDER BY case_id, seq",
            "case_fact": "SELECT case_id, registered_at, state, street, department, facts::text "
            "FROM case_fact ORDER BY case_id",
            "metric_member": "SELECT * FROM metric_member ORDER BY dimension, value, day, case_id",
            "metric": f"SELECT {', '.join(COLUMNS)} FROM metric ORDER BY dimension, granularity, period_start, value",
        }
        out: dict[str, list[tuple[Any, ...]]] = {}
        async with self._engine.connect() as conn:
            for name, sql in queries.items():
                out[name] = [tuple(r) for r in (await conn.execute(text(sql))).all()]
        return out


# -- statements ----------------------------------------------------------------------------------------


async def _advance_lineage(conn: AsyncConnection, positions: Positions) -> None:
    if not positions:
        return
    await conn.execute(
        text(
            "INSERT INTO lineage (topic, partition, next_offset) VALUES (:t, :p, :o) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = GREATEST(lineage.next_offset, "
            "EXCLUDED.next_offset), updated_at = now() WHERE EXCLUDED.next_offset > lineage.next_offset"
        ),
        [{"t": t, "p": p, "o": o} for (t, p), o in sorted(positions.items())],
    )


async def _insert_events(conn: AsyncConnection, received: Sequence[Received]) -> dict[str, int]:
    """Insert what is new; returns {case_id: events inserted} for the cases that gained any."""
    result = await conn.execute(
        text(
            'INSERT INTO lifecycle_event (case_id, seq, event_id, body, topic, partition, "offset") '
            "SELECT c, s, e, CAST(b AS jsonb), t, p, o FROM unnest(CAST(:c AS uuid[]), CAST(:s AS int[]), "
            "CAST(:e AS uuid[]), CAST(:b AS text[]), CAST(:t AS text[]), CAST(:p AS int[]), CAST(:o AS bigint[])) "
            "AS x(c, s, e, b, t, p, o) ON CONFLICT DO NOTHING RETURNING case_id"
        ),
        {
            "c": [str(r.event.case_id) for r in received],
            "s": [r.event.seq for r in received],
            "e": [str(r.event.event_id) for r in received],
            "b": [r.body.decode() for r in received],
            "t": [r.topic for r in received],
            "p": [r.partition for r in received],
            "o": [r.offset for r in received],
        },
    )
    counts: dict[str, int] = {}
    for (cid,) in result.all():
        counts[str(cid)] = counts.get(str(cid), 0) + 1
    return counts


async def _events_of(conn: AsyncConnection, case_ids: list[str]) -> dict[str, list[LifecycleEvent]]:
    result = await conn.execute(
        text(
            "SELECT case_id, body::text FROM lifecycle_event WHERE case_id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY case_id, seq"
        ),
        {"ids": case_ids},
    )
    out: dict[str, list[LifecycleEvent]] = {}
    for cid, body in result.all():
        out.setdefault(str(cid), []).append(decode_lifecycle(body.encode()))
    return out


async def _facts_of(conn: AsyncConnection, case_ids: list[str]) -> dict[str, CaseFacts]:
    result = await conn.execute(
        text("SELECT case_id, facts::text FROM case_fact WHERE case_id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": case_ids},
    )
    return {str(cid): decode_facts(raw) for cid, raw in result.all()}


async def _upsert_facts(conn: AsyncConnection, facts: Iterable[CaseFacts]) -> None:
    params = [
        {
            "c": f.case_id,
            "r": f.registered_at,
            "s": f.state,
            "st": f.street,
            "d": f.department,
            "f": encode_facts(f).decode(),
        }
        for f in facts
    ]
    if params:
        await conn.execute(
            text(
                "INSERT INTO case_fact (case_id, registered_at, state, street, department, facts) "
                "VALUES (CAST(:c AS uuid), :r, :s, :st, :d, CAST(:f AS jsonb)) ON CONFLICT (case_id) DO UPDATE "
                "SET registered_at = EXCLUDED.registered_at, state = EXCLUDED.state, street = EXCLUDED.street, "
                "department = EXCLUDED.department, facts = EXCLUDED.facts"
            ),
            params,
        )


INSERT_MEMBERS = (
    "INSERT INTO metric_member SELECT * FROM json_populate_recordset(NULL::metric_member, CAST(:m AS json))"
)


def members_json(facts: Iterable[CaseFacts]) -> str:
    """The `metric_member` rows of the cases, as the JSON array INSERT_MEMBERS reads."""
    rows = [
        {"dimension": d, "value": v, "day": local_date(f.registered_at), "case_id": f.case_id}
        | msgspec.structs.asdict(m)
        for f in facts
        for (d, v), m in members_of(f).items()
    ]
    return msgspec.json.encode(rows).decode()


async def _replace_members(conn: AsyncConnection, facts: Iterable[CaseFacts]) -> None:
    facts = list(facts)
    if not facts:
        return
    await conn.execute(
        text("DELETE FROM metric_member WHERE case_id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": [f.case_id for f in facts]},
    )
    await conn.execute(text(INSERT_MEMBERS), {"m": members_json(facts)})


def _totals_sql() -> str:
    """Every key's totals (evaluation.domain.metrics.combine) over the members of its unit registered
    in its period, in one statement and one pass: an index range of metric_member per key. Each
    member is joined with its durations side by side (unnest of both arrays, padded with nulls, which
    the percentiles ignore; a member without any keeps one row of nulls), so its counts are summed
    on its first row only."""
    samples = list(QUANTILES)
    once = "FILTER (WHERE coalesce(d.n, 1) = 1)"
    figures = [
        *(f"sum(m.{c}) {once} AS {c}" for c in COUNTS),
        *(
            f"coalesce(array_agg(DISTINCT m.{one} ORDER BY m.{one}) FILTER (WHERE m.{one} IS NOT NULL), "
            f"'{{}}') AS {many}"
            for one, many in VERSIONS.items()
        ),
        "max(m.last_event_at) AS last_event_at",
        *(
            f"percentile_disc({p!r}) WITHIN GROUP (ORDER BY d.{sample}) AS {column}"
            for sample, columns in QUANTILES.items()
            for column, p in columns.items()
        ),
    ]
    return (
        "WITH k AS (SELECT * FROM unnest(CAST(:d AS text[]), CAST(:v AS text[]), CAST(:p AS date[]), "
        "CAST(:e AS date[])) WITH ORDINALITY AS k(dimension, value, period_start, period_end, i)) "
        f"SELECT k.i, {', '.join(figures)} FROM k JOIN metric_member m ON m.dimension = k.dimension "
        "AND m.value = k.value AND m.day >= k.period_start AND m.day < k.period_end "
        f"LEFT JOIN LATERAL unnest({', '.join(f'm.{s}' for s in samples)}) WITH ORDINALITY "
        f"AS d({', '.join(samples)}, n) ON true GROUP BY k.i"
    )


_TOTALS = _totals_sql()


async def _totals(conn: AsyncConnection, keys: Iterable[MetricKey]) -> dict[MetricKey, Totals]:
    """The totals of every key with at least one member (a key without any has no row)."""
    ordered = list(keys)
    result = await conn.execute(
        text(_TOTALS),
        {
            "d": [k.dimension for k in ordered],
            "v": [k.value for k in ordered],
            "p": [k.period_start for k in ordered],
            "e": [period_end(k.period_start, k.granularity) for k in ordered],  # type: ignore[arg-type]
        },
    )
    return {ordered[m["i"] - 1]: msgspec.convert(dict(m), Totals) for m in result.mappings()}


async def _facts_registered_in(
    conn: AsyncConnection, ranges: list[tuple[datetime, datetime]]
) -> list[CaseFacts]:
    result = await conn.execute(
        text(
            "SELECT facts::text FROM case_fact f WHERE EXISTS (SELECT 1 FROM unnest(CAST(:lo AS timestamptz[]), "
            "CAST(:hi AS timestamptz[])) AS r(lo, hi) WHERE f.registered_at >= r.lo AND f.registered_at < r.hi)"
        ),
        {"lo": [r[0] for r in ranges], "hi": [r[1] for r in ranges]},
    )
    return [decode_facts(raw) for (raw,) in result.all()]


def _row_params(r: MetricRow) -> dict[str, Any]:
    d = {c: getattr(r, c) for c in COLUMNS}
    for c in LISTS:
        d[c] = list(d[c])
    return d


def _row(m: Any) -> MetricRow:
    d = {c: m[c] for c in COLUMNS}
    for c in LISTS:
        d[c] = tuple(d[c])
    return MetricRow(**d)
