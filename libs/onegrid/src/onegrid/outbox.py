"""Transactional outbox: a change and the Kafka records announcing it commit together, or not at all.

A service writes its change and calls `enqueue(conn, records)` on the same connection, inside the same
database transaction; an `OutboxRelay` then publishes the committed rows to Kafka in id order and
deletes them once the broker has acknowledged them. Nothing is lost (a crash before the delete only
publishes the rows again: at least once, so consumers must tolerate a repeat, which a compacted
changelog of full records does by construction). A pass that fails part-way (one partition's leader
gone during a broker restart) deletes the rows the broker did acknowledge and keeps only the others,
so a failed send never publishes the rest of its pass a second time.

Order: rows are published in `id` order by one relay at a time (a transaction-scoped advisory lock per
table keeps a second instance out). For two changes of one entity to keep their order, enqueue after
the write that locks the entity's row: the second transaction then waits for the first to commit
before it draws its outbox id.

Set aside: a row the broker refuses for a reason that retrying cannot cure (too large for the topic,
an invalid or forbidden topic, a value the producer cannot send) is moved, with the reason and its
original bytes, to `<table>_set_aside` and the relay goes on with the next rows: one bad row never
stops every later record. Each row's own outcome tells which were refused; the rows acknowledged
with them are not sent again. A later row of the same
entity is published after a set-aside one; `replay_set_aside` puts set-aside rows back at the end of
the outbox once the cause is fixed (e.g. the topic's max.message.bytes raised). Failures of the
producer itself (closed, fenced, timed out) are not the row's fault and still raise, and more than
`max_consecutive_set_aside` rows set aside in a row stop the relay loudly (`SetAsideLimitExceeded`)
instead of emptying the outbox (say, after a misconfigured ACL).

Traces: a record enqueued without a `traceparent` gets the caller's current trace context, so the
records a change announces continue the trace of whatever caused it (a consumed record, a request).

Schema: `outbox_ddl(table)` and `set_aside_ddl(table)` give the CREATE TABLEs for a service's
migration; the tables live in the service's own schema (on the engine's search_path).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import msgspec
from aiokafka.errors import IllegalStateError, KafkaTimeoutError, ProducerClosed, ProducerFenced
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from onegrid import telemetry
from onegrid.kafka.policy import is_transient
from onegrid.kafka.producer import send_each
from onegrid.kafka.records import OutRecord
from onegrid.periodic import Periodic

log = logging.getLogger(__name__)

DEFAULT_TABLE = "outbox"
_HEADERS_JSON = msgspec.json.Encoder()


def outbox_ddl(table: str = DEFAULT_TABLE) -> str:
    """CREATE TABLE statement for an outbox named `table` (idempotent)."""
    return f"""
        CREATE TABLE IF NOT EXISTS {table} (
            id         bigserial PRIMARY KEY,
            topic      text NOT NULL,
            key        bytea,
            value      bytea,
            headers    jsonb NOT NULL DEFAULT '[]',
            partition  int,
            created_at timestamptz NOT NULL DEFAULT now()
        )
    """


def set_aside_ddl(table: str = DEFAULT_TABLE) -> str:
    """CREATE TABLE statement for the rows of `table` the relay could not publish (idempotent)."""
    return f"""
        CREATE TABLE IF NOT EXISTS {table}_set_aside (
            id           bigint PRIMARY KEY,
            topic        text NOT NULL,
            key          bytea,
            value        bytea,
            headers      jsonb NOT NULL DEFAULT '[]',
            partition    int,
            created_at   timestamptz NOT NULL,
            reason       text NOT NULL,
            set_aside_at timestamptz NOT NULL DEFAULT now()
        )
    """


# The producer's own failures: no row is at fault, so none is set aside for them.
_PRODUCER_FAILURES = (IllegalStateError, KafkaTimeoutError, ProducerClosed, ProducerFenced)
_REASON_MAX = 1000


class SetAsideLimitExceeded(RuntimeError):
    """Too many rows refused in a row: the relay stops instead of emptying the outbox."""


def refused_reason(exc: BaseException) -> str | None:
    """Why the broker or producer refuses a row for good, or None when the failure is not the row's
    (transient, or the producer's own)."""
    if is_transient(exc) or isinstance(exc, _PRODUCER_FAILURES) or not isinstance(exc, Exception):
        return None
    return f"{type(exc).__name__}: {exc}"[:_REASON_MAX]


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    # [[name, base64 of the value], ...]: msgspec writes bytes as base64 (the relay's _decode_headers)
    return _HEADERS_JSON.encode([(k, v or b"") for k, v in headers]).decode()


def with_trace(
    headers: Sequence[tuple[str, bytes]], current: Sequence[tuple[str, bytes]] | None = None
) -> list[tuple[str, bytes]]:
    """`headers`, plus the current trace context when they carry none (unchanged outside a span).
    `current`: that context as headers (`telemetry.inject([])`), when the caller has it already."""
    out = list(headers)
    if any(k == "traceparent" for k, _ in out):
        return out
    if current is None:
        return telemetry.inject(out)
    names = {k for k, _ in current}  # as the propagator's setter does: its headers replace any of theirs
    return [*(h for h in out if h[0] not in names), *current] if names else out


def _decode_headers(raw: Any) -> list[tuple[str, bytes]]:
    items = json.loads(raw) if isinstance(raw, str) else raw
    return [(str(k), base64.b64decode(v)) for k, v in items]


async def enqueue(conn: AsyncConnection, records: Sequence[OutRecord], *, table: str = DEFAULT_TABLE) -> None:
    """Add `records` to the outbox within the caller's open transaction on `conn`. Does not commit."""
    if not records:
        return
    current = telemetry.inject([])  # the same for every record: read once
    await conn.execute(
        text(
            f"INSERT INTO {table} (topic, key, value, headers, partition) "
            "VALUES (:topic, :key, :value, CAST(:headers AS jsonb), :partition)"
        ),
        [
            {
                "topic": r.topic,
                "key": r.key,
                "value": r.value,
                "headers": _encode_headers(with_trace(r.headers, current)),
                "partition": r.partition,
            }
            for r in records
        ],
    )


async def copy_into(raw: Any, records: Sequence[OutRecord], *, table: str = DEFAULT_TABLE) -> None:
    """`enqueue` for a raw asyncpg connection inside its open transaction: one COPY for any number
    of records (their ids follow the order given). Does not commit. The connection's jsonb codec
    takes text, as the SQLAlchemy asyncpg dialect sets it up (`headers` go as their JSON text)."""
    if not records:
        return
    current = telemetry.inject([])  # the same for every record: read once
    await raw.copy_records_to_table(
        table,
        columns=("topic", "key", "value", "headers", "partition"),
        records=[
            (r.topic, r.key, r.value, _encode_headers(with_trace(r.headers, current)), r.partition)
            for r in records
        ],
    )


def _record_of(row: Any) -> OutRecord:
    return OutRecord(
        topic=row.topic,
        key=None if row.key is None else bytes(row.key),
        value=None if row.value is None else bytes(row.value),
        headers=_decode_headers(row.headers),
        partition=row.partition,
    )


async def set_aside_rows(
    conn: AsyncConnection, *, table: str = DEFAULT_TABLE, limit: int = 100
) -> list[dict[str, Any]]:
    """The set-aside rows, oldest first: id, topic, size, reason and when (not their bytes)."""
    rows = await conn.execute(
        text(
            f"SELECT id, topic, octet_length(value) AS size, reason, created_at, set_aside_at "
            f"FROM {table}_set_aside ORDER BY id LIMIT :n"
        ),
        {"n": limit},
    )
    return [dict(r) for r in rows.mappings()]


async def replay_set_aside(conn: AsyncConnection, ids: Sequence[int], *, table: str = DEFAULT_TABLE) -> int:
    """Put set-aside rows back at the end of the outbox (new ids, so after everything pending), within
    the caller's transaction; the number put back."""
    moved = await conn.execute(
        text(
            f"WITH back AS (DELETE FROM {table}_set_aside WHERE id = ANY(:ids) "
            "RETURNING id, topic, key, value, headers, partition) "
            f"INSERT INTO {table} (topic, key, value, headers, partition) "
            "SELECT topic, key, value, headers, partition FROM back ORDER BY id"
        ),
        {"ids": list(ids)},
    )
    return int(moved.rowcount or 0)


class OutboxRelay:
    """Publishes an outbox table to Kafka. One pass: `publish_pending`; forever: `run`.

    `producer` is anything with aiokafka's `send` (an idempotent AIOKafkaProducer, or the in-memory
    fake). `wake()` shortens the idle wait after a commit made in this process; other writers are
    picked up within `idle_s`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        table: str = DEFAULT_TABLE,
        batch_size: int = 1000,
        idle_s: float = 0.2,
        max_consecutive_set_aside: int = 100,
        scope: str = "",
    ) -> None:
        """`scope` (the owning service's schema) makes the advisory lock this relay's own: two
        services' outboxes in one database, both named `outbox`, never hold each other up."""
        self._engine = engine
        self._max_consecutive = max_consecutive_set_aside
        self._consecutive = 0
        self.set_aside = 0  # rows moved aside since start
        self._table = table
        self._batch_size = batch_size
        self._job = Periodic("outbox relay", idle_s)
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"outbox:{scope}.{table}".encode()).digest()[:8], "big", signed=True
        )
        self.published = 0  # records acknowledged by the broker since start

    def wake(self) -> None:
        self._job.wake()

    def stop(self) -> None:
        self._job.stop()

    async def publish_pending(self, producer: Any) -> int:
        """Publish up to `batch_size` rows in id order and delete them (those refused for good are
        set aside); the number of rows taken off the outbox.

        Returns 0 when another relay holds the table. Raises what the producer or database raise
        when it is not a row's fault; rows stay in the outbox then and are published by a later call.
        """
        async with self._engine.begin() as conn:
            got = await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self._lock_key})
            if not got:
                return 0
            rows = (
                await conn.execute(
                    text(
                        f"SELECT id, topic, key, value, headers, partition FROM {self._table} "
                        "ORDER BY id LIMIT :n"
                    ),
                    {"n": self._batch_size},
                )
            ).all()
            if not rows:
                return 0
            out = [_record_of(r) for r in rows]
            outcomes = await send_each(producer, out)
            sent, refused, failure = self._sort_out(rows, out, outcomes)
            if refused:
                await self._move_aside(conn, rows, refused)
            # exactly the rows acknowledged or set aside: a smaller id committed meanwhile, or a row
            # whose send failed, must not be deleted unsent
            done = [*sent, *refused]
            if done:
                await conn.execute(text(f"DELETE FROM {self._table} WHERE id = ANY(:ids)"), {"ids": done})
        self.published += len(sent)
        self.set_aside += len(refused)
        if failure is not None:
            raise failure  # not a row's fault: the rows left are sent by a later pass
        return len(done)

    def _sort_out(
        self, rows: Sequence[Any], out: Sequence[OutRecord], outcomes: Sequence[BaseException | None]
    ) -> tuple[list[int], dict[int, str], BaseException | None]:
        """The rows acknowledged, those refused for good (with the reason) and the first failure
        that is not a row's fault (its row and every row not sent stay in the outbox)."""
        sent: list[int] = []
        refused: dict[int, str] = {}
        failure: BaseException | None = None
        for row, record, exc in zip(rows, out, outcomes, strict=True):
            if exc is None:
                sent.append(row.id)
                self._consecutive = 0
                continue
            reason = refused_reason(exc)
            if reason is None:
                failure = failure or exc
                continue
            refused[row.id] = reason
            self._consecutive += 1
            log.error("outbox %s: row %d for %s set aside (%s)", self._table, row.id, record.topic, reason)
            if self._consecutive > self._max_consecutive:
                raise SetAsideLimitExceeded(
                    f"{self._consecutive} outbox rows of {self._table} refused in a row; last: {reason}"
                ) from exc
        return sent, refused, failure

    async def _move_aside(self, conn: AsyncConnection, rows: Sequence[Any], refused: dict[int, str]) -> None:
        await conn.execute(
            text(
                f"INSERT INTO {self._table}_set_aside (id, topic, key, value, headers, partition, created_at, reason) "
                f"SELECT id, topic, key, value, headers, partition, created_at, CAST(:reason AS text) "
                f"FROM {self._table} WHERE id = :id ON CONFLICT (id) DO NOTHING"
            ),
            [{"id": row_id, "reason": reason} for row_id, reason in refused.items()],
        )

    async def drain(self, producer: Any) -> int:
        """Publish until the outbox is empty (or another relay holds it); the number published."""
        total = 0
        while n := await self.publish_pending(producer):
            total += n
        return total

    async def run(self, producer: Any) -> None:
        """Relay until `stop()`: a full batch is followed at once, otherwise after `idle_s` (or
        `wake()`); transient failures retry with capped backoff, others raise."""
        await self._job.run(lambda: self.publish_pending(producer), again=lambda n: n >= self._batch_size)
