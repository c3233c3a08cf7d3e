"""Transactional outbox: a change and the Kafka records announcing it commit together, or not at all.

A service writes its change and calls `enqueue(conn, records)` on the same connection, inside the same
database transaction; an `OutboxRelay` then publishes the committed rows to Kafka in id order and
deletes them once the broker has acknowledged them. Nothing is lost (a crash before the delete only
publishes the rows again: at least once, so consumers must tolerate a repeat, which a compacted
changelog of full records does by construction).

Order: rows are published in `id` order by one relay at a time (a transaction-scoped advisory lock per
table keeps a second instance out). For two changes of one entity to keep their order, enqueue after
the write that locks the entity's row: the second transaction then waits for the first to commit
before it draws its outbox id.

Traces: a record enqueued without a `traceparent` gets the caller's current trace context, so the
records a change announces continue the trace of whatever caused it (a consumed record, a request).

Schema: `outbox_ddl(table)` gives the CREATE TABLE for a service's migration; the table lives in the
service's own schema (on the engine's search_path).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from onegrid import telemetry
from onegrid.kafka.policy import Backoff, is_transient
from onegrid.kafka.producer import send_all
from onegrid.kafka.records import OutRecord

log = logging.getLogger(__name__)

DEFAULT_TABLE = "outbox"


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


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    return json.dumps([[k, base64.b64encode(v or b"").decode()] for k, v in headers])


def with_trace(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """`headers`, plus the current trace context when they carry none (unchanged outside a span)."""
    out = list(headers)
    if any(k == "traceparent" for k, _ in out):
        return out
    return telemetry.inject(out)


def _decode_headers(raw: Any) -> list[tuple[str, bytes]]:
    items = json.loads(raw) if isinstance(raw, str) else raw
    return [(str(k), base64.b64decode(v)) for k, v in items]


async def enqueue(conn: AsyncConnection, records: Sequence[OutRecord], *, table: str = DEFAULT_TABLE) -> None:
    """Add `records` to the outbox within the caller's open transaction on `conn`. Does not commit."""
    if not records:
        return
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
                "headers": _encode_headers(with_trace(r.headers)),
                "partition": r.partition,
            }
            for r in records
        ],
    )


class OutboxRelay:
    """Publishes an outbox table to Kafka. One pass: `publish_pending`; forever: `run`.

    `producer` is anything with aiokafka's `send` (an idempotent AIOKafkaProducer, or the in-memory
    fake). `wake()` shortens the idle wait after a commit made in this process; other writers are
    picked up within `idle_s`.
    """

    def __init__(
        self, engine: AsyncEngine, *, table: str = DEFAULT_TABLE, batch_size: int = 1000, idle_s: float = 0.2
    ) -> None:
        self._engine = engine
        self._table = table
        self._batch_size = batch_size
        self._idle_s = idle_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"outbox:{table}".encode()).digest()[:8], "big", signed=True
        )
        self.published = 0  # records acknowledged by the broker since start

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def publish_pending(self, producer: Any) -> int:
        """Publish up to `batch_size` rows in id order and delete them; the number published.

        Returns 0 when another relay holds the table. Raises what the producer or database raise;
        rows stay in the outbox then and are published by a later call.
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
            await send_all(
                producer,
                [
                    OutRecord(
                        topic=r.topic,
                        key=None if r.key is None else bytes(r.key),
                        value=None if r.value is None else bytes(r.value),
                        headers=_decode_headers(r.headers),
                        partition=r.partition,
                    )
                    for r in rows
                ],
            )
            # exactly the rows sent: a smaller id committed meanwhile must not be deleted unsent
            await conn.execute(
                text(f"DELETE FROM {self._table} WHERE id = ANY(:ids)"), {"ids": [r.id for r in rows]}
            )
        self.published += len(rows)
        return len(rows)

    async def drain(self, producer: Any) -> int:
        """Publish until the outbox is empty (or another relay holds it); the number published."""
        total = 0
        while n := await self.publish_pending(producer):
            total += n
        return total

    async def run(self, producer: Any) -> None:
        """Relay until `stop()`; transient failures retry with capped backoff, others raise."""
        backoff = Backoff()
        while not self._stopping:
            try:
                n = await self.publish_pending(producer)
                backoff.reset()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = backoff.next_delay()
                log.warning("outbox relay: transient failure, retrying in %.2fs: %r", delay, exc)
                await asyncio.sleep(delay)
                continue
            if n < self._batch_size:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self._idle_s)
                except TimeoutError:
                    pass
