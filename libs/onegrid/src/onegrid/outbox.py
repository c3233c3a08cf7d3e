"""Transactional outbox: a change and the Kafka records announcing it commit together, or not at all.

A service writes its change and calls `enqueue(conn, records)` on the same connection, inside the same
database transaction; an `OutboxRelay` then publishes the committed rows to Kafka in id order, exactly
once, and deletes them.

Exactly once across two systems without a two-phase commit: the relay works in *passes*. A pass first
claims its rows in PostgreSQL (their `relay_pass` column set to the pass's number, committed), then
sends them in one Kafka transaction that ends with the pass's entry on `outbox.passes.v1` and commits
the relay's consumer group offset after it, with the pass's number as the offset's metadata (the
group's offset is the relay's position, committed atomically with the records), and then deletes the
pass's rows. Whatever dies in between (the database before the delete, the instance mid-transaction,
a broker), the Kafka side says which passes were published: a relay taking a table up starts its own
transactional producer (fencing any earlier one, whose open transaction is completed or aborted
first), reads the committed pass number, deletes the rows of every pass up to it (published) and
claims the others again (their transaction never committed). Readers see a pass's records only once
it committed (read_committed, as every consumer here reads).

One relay at a time: the active relay holds a session-level advisory lock per table on a connection
of its own, and does every claim and delete on that connection; when that session ends (the instance
killed, PostgreSQL restarted) the lock goes with it, another instance takes the table up and its
producer fences the old one. The session is also a lease: the server ends it once it has been idle
for `lease_s` (`idle_session_timeout`, and `idle_in_transaction_session_timeout` for a stall inside
a claim), which a working relay never is (it claims every `idle_s`), so an instance that stalls
without dying (SIGSTOP, a frozen VM, a pause longer than the lease) lets go of the table too; when
it wakes, its producer is fenced and its session gone, and it stands by. An instance that cannot
take the lock stands by and tries again every `standby_s`. Writers notify the table's channel in their transactions and the active relay listens,
so a commit in any instance wakes it at once. For two changes of one entity to keep their order, enqueue after the write that locks
the entity's row: the second transaction then waits for the first to commit before it draws its
outbox id.

Set aside: a row the broker refuses for a reason that retrying cannot cure (too large for the topic,
an invalid or forbidden topic, a value the producer cannot send) is moved, with the reason and its
original bytes, to `<table>_set_aside`, the pass is aborted (none of its records is published) and
the rest of its rows go in the next pass: one bad row never stops every later record, and no row is
published twice. A later row of the same entity is published after a set-aside one;
`replay_set_aside` puts set-aside rows back at the end of the outbox once the cause is fixed (e.g.
the topic's max.message.bytes raised). Failures that are not the row's (a broker away, the producer
fenced or timed out) abort the pass and keep its rows, and more than `max_consecutive_set_aside` rows
set aside in a row stop the relay loudly (`SetAsideLimitExceeded`) instead of emptying the outbox
(say, after a misconfigured ACL).

Traces: a record enqueued without a `traceparent` gets the caller's current trace context, so the
records a change announces continue the trace of whatever caused it (a consumed record, a request).

Schema: `outbox_ddl(table)` and `set_aside_ddl(table)` give the CREATE TABLEs for a service's
migration; the tables live in the service's own schema (on the engine's search_path).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalStateError, KafkaError, KafkaTimeoutError, ProducerClosed, ProducerFenced
from aiokafka.structs import OffsetAndMetadata
from opentelemetry.metrics import Observation
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from onegrid import telemetry
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.policy import Backoff, is_transient
from onegrid.kafka.producer import make_producer, send_each_answers
from onegrid.kafka.records import OutRecord
from onegrid.periodic import Periodic
from onegrid.settings import KafkaSettings
from onegrid.topics import OUTBOX_PASSES, spec_of

log = logging.getLogger(__name__)

DEFAULT_TABLE = "outbox"
_JSON = msgspec.json.Encoder()
_COORDINATOR_ATTEMPTS = 20  # ~30 s of capped backoff for the group coordinator to answer


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
            created_at timestamptz NOT NULL DEFAULT now(),
            relay_pass bigint  -- the relay's pass that claimed the row (module docstring); NULL: unclaimed
        )
    """


def add_relay_pass_ddl(table: str = DEFAULT_TABLE) -> str:
    """The `relay_pass` column for an outbox created before the relay published exactly once."""
    return f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS relay_pass bigint"


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
    return _JSON.encode([(k, v or b"") for k, v in headers]).decode()


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
    await conn.execute(text(_notify_sql(table)))


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
    await raw.execute(_notify_sql(table))


def pass_statements(table: str = DEFAULT_TABLE) -> tuple[str, str]:
    """A pass's claim (`:p` the pass, `:n` the batch) and the delete of its rows once published
    (`:ids` the claimed ids). Both reach the rows by the primary key whatever the table's statistics
    say: `= ANY(ARRAY(...))` cannot become a hash join, which `IN (SELECT ...)` does when the last
    ANALYZE saw a backlog, and then reads the whole heap, every dead row since the last vacuum
    included (an outbox's rows all die within seconds); the delete goes by id, as `relay_pass` has
    no index."""
    claim = (
        f"UPDATE {table} SET relay_pass = :p WHERE id = ANY(ARRAY("
        f"SELECT id FROM {table} ORDER BY id LIMIT :n)) "
        "RETURNING id, topic, key, value, headers, partition"
    )
    return claim, f"DELETE FROM {table} WHERE id = ANY(CAST(:ids AS bigint[]))"


def _channel_sql(table: str) -> str:
    # NOTIFY channels are at most 63 bytes: the schema and table, hashed
    return f"'onegrid_outbox_' || md5(current_schema() || '.{table}')"


def _notify_sql(table: str) -> str:
    """Wakes the relay holding `table` (in whichever instance) when the writer's transaction
    commits: the relay LISTENs on its session (PostgreSQL delivers a notification only on commit,
    once per transaction and channel however often it was sent)."""
    return f"SELECT pg_notify({_channel_sql(table)}, '')"


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


class RelayLink(Protocol):
    """The relay's side of Kafka: its transactional producer, and the pass it last committed."""

    passes: TopicPartition  # where a relay's group commits its pass number (module docstring)

    def producer(self, transactional_id: str) -> Any:
        """A transactional producer with this id, not started (aiokafka's API, or the fake's)."""

    async def last_pass(self, group: str) -> int:
        """The pass number `group` committed last; 0 when none."""


class KafkaRelayLink:
    """`RelayLink` on the cluster: producers from `make_producer`, the pass from the group's offsets."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str, passes_topic: str = OUTBOX_PASSES) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self.passes = TopicPartition(passes_topic, 0)
        self._topic_ready = False

    def producer(self, transactional_id: str) -> AIOKafkaProducer:
        # no linger: a pass's records are sent at once and the transaction commits right after them
        return make_producer(
            self._kafka, client_id=f"{self._client_id}-outbox", transactional_id=transactional_id, linger_ms=0
        )

    async def last_pass(self, group: str) -> int:
        if not self._topic_ready:  # offsets can only be committed on a partition that exists
            await ensure_topics(self._kafka, [spec_of(OUTBOX_PASSES).named(self.passes.topic)])
            self._topic_ready = True
        admin = AIOKafkaAdminClient(**self._kafka.client_kwargs())
        await admin.start()
        try:
            backoff = Backoff(initial_s=0.1, max_s=2.0)
            while True:
                try:
                    got = await admin.list_consumer_group_offsets(group, partitions=[self.passes])
                    return pass_of(getattr(got.get(self.passes), "metadata", None))
                except KafkaError as exc:
                    # the group coordinator loading or moving (a fresh cluster, a broker restart)
                    if not is_transient(exc) or backoff.attempt >= _COORDINATOR_ATTEMPTS:
                        raise
                    await asyncio.sleep(backoff.next_delay())
        finally:
            await admin.close()


def pass_of(metadata: str | None) -> int:
    """The pass number a relay's committed offset carries as its metadata; 0 when it has none."""
    return int(metadata) if metadata and metadata.isdigit() else 0


class _Aborted(Exception):
    """Raised inside a pass's Kafka transaction to abort it (a row refused, or a send failed)."""


@dataclass
class _Active:
    """What the relay holding a table has: the session that holds the table's lock (every claim and
    delete goes through it), its producer (which fenced every earlier one) and its next pass."""

    conn: AsyncConnection
    producer: Any
    next_pass: int


class OutboxRelay:
    """Publishes an outbox table to Kafka exactly once. One pass: `publish_pending`; forever: `run`.

    `link` (a `RelayLink`) gives the transactional producer and the committed pass; its
    transactional id and consumer group are `transactional_id`, `<service>.outbox.<scope>.<table>`
    (granted by the service's ACL prefix). Writers' commits wake it (their notification, or `wake()`
    in this process); without one it passes every `idle_s`, which also keeps its lease.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        table: str = DEFAULT_TABLE,
        batch_size: int = 1000,
        idle_s: float = 0.2,
        standby_s: float = 1.0,
        max_consecutive_set_aside: int = 100,
        scope: str = "",
        service: str = "onegrid",
        lease_s: float = 20.0,
    ) -> None:
        """`scope` (the owning service's schema) makes the advisory lock, the transactional id and
        the group this relay's own: two services' outboxes in one database, both named `outbox`,
        never hold each other up. `lease_s`: how long the relay's session may stay idle before the
        server ends it and another instance takes the table up (module docstring); well above
        `idle_s` and a Kafka transaction's usual length, since a pass's Kafka transaction runs
        while the session waits."""
        if lease_s <= idle_s * 5:
            raise ValueError(f"lease_s ({lease_s}) must be well above idle_s ({idle_s})")
        self._engine = engine
        self._lease_ms = int(lease_s * 1000)
        self._max_consecutive = max_consecutive_set_aside
        self._consecutive = 0
        self.set_aside = 0  # rows moved aside since start
        self._table = table
        self._claim_sql, self._delete_sql = pass_statements(table)
        self._batch_size = batch_size
        self._standby_s = standby_s
        self._standby_until = 0.0
        self._job = Periodic("outbox relay", idle_s)
        self._lock_key = int.from_bytes(
            hashlib.sha256(f"outbox:{scope}.{table}".encode()).digest()[:8], "big", signed=True
        )
        self.transactional_id = f"{service}.outbox.{scope or 'public'}.{table}"
        self._active: _Active | None = None
        self.published = 0  # records published (their transaction committed) since start
        # Operators see which instance relays a table, how often it passes and how long a pass takes.
        self._labels = {"table": f"{scope or 'public'}.{table}"}
        m = telemetry.meter("onegrid.outbox")
        self._m_published = m.create_counter(
            "onegrid_outbox_published_records", description="outbox records published (committed)"
        )
        self._m_pass = m.create_histogram(
            "onegrid_outbox_pass_seconds", unit="s", description="a pass: claim, Kafka transaction, delete"
        )
        telemetry.observe_gauge(
            "onegrid_outbox_relay_active",
            self._observe_active,
            meter_name="onegrid.outbox",
            description="1 while this instance relays the table (one instance at a time)",
        )

    @property
    def active(self) -> bool:
        """True while this relay holds its table."""
        return self._active is not None

    def _observe_active(self, _options: Any) -> list[Observation]:
        return [Observation(int(self.active), self._labels)]

    def wake(self) -> None:
        self._job.wake()

    def stop(self) -> None:
        self._job.stop()

    async def publish_pending(self, link: RelayLink) -> int:
        """One pass: publish up to `batch_size` rows in id order and delete them (those refused for
        good are set aside); the number of rows taken off the outbox.

        Returns 0 when another relay holds the table (this one stands by), or when the producer was
        fenced by a relay that took the table over. Raises what the producer or database raise when
        it is not a row's fault, after letting go of the table (the next call takes it up again,
        settling what the failed pass left); the pass's rows are published by a later pass.
        """
        if self._active is None and not await self._take_up(link):
            return 0
        try:
            return await self._pass(link)
        except ProducerFenced:
            log.warning("outbox %s: fenced by another relay, standing by", self._table)
            await self.close()
            return 0
        except BaseException:
            await self.close()
            raise

    async def _take_up(self, link: RelayLink) -> bool:
        """Become the table's relay if no other holds it: lock, fence, settle the last pass."""
        now = time.monotonic()
        if now < self._standby_until:
            return False
        conn = await self._engine.connect()
        try:
            # The lease with the lock (module docstring), so a session holding the lock always has
            # it; when the lock is not had, the rollback takes the settings back (set_config's
            # effects end with an aborted transaction) and the connection goes back to the pool as
            # it came.
            # (every column of a select list is evaluated; the terms of an AND need not be)
            got = (
                await conn.execute(
                    text(
                        "SELECT set_config('idle_session_timeout', :ms, false), "
                        "set_config('idle_in_transaction_session_timeout', :ms, false), "
                        "pg_try_advisory_lock(:k)"
                    ),
                    {"ms": str(self._lease_ms), "k": self._lock_key},
                )
            ).one()[2]
            if got:
                await conn.commit()
            else:
                await conn.rollback()
        except BaseException:
            await _end_session(conn)
            raise
        if not got:
            self._standby_until = now + self._standby_s
            await conn.close()
            return False
        producer = link.producer(self.transactional_id)
        try:
            # Starting the producer fences every earlier one of this id, and completes (commits or
            # aborts) a transaction one left open: after it, the committed pass is final.
            await producer.start()
            done = await link.last_pass(self.transactional_id)
            async with conn.begin():
                await conn.execute(
                    text(f"DELETE FROM {self._table} WHERE relay_pass <= :done"), {"done": done}
                )
                highest = await conn.scalar(text(f"SELECT max(relay_pass) FROM {self._table}"))
                await self._listen(conn)
        except BaseException:
            await _stop_quietly(producer)
            await _end_session(conn)
            raise
        self._active = _Active(conn, producer, max(done, highest or 0) + 1)
        log.info("outbox %s: relay taken up after pass %d", self._table, done)
        return True

    async def _listen(self, conn: AsyncConnection) -> None:
        """Wake on every writer's commit, in any instance (`_notify_sql`), not only this one's."""
        channel = await conn.scalar(text(f"SELECT {_channel_sql(self._table)}"))
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None  # a connection that is checked out has its driver's
        await raw.add_listener(channel, lambda *_: self._job.wake())

    async def _pass(self, link: RelayLink) -> int:
        a = self._active
        assert a is not None
        p = a.next_pass
        started = time.monotonic()
        async with a.conn.begin():
            # Every row here is unpublished: a committed pass's rows are deleted before the next
            # pass, or by the take-up after a failure. Rows an aborted pass claimed are claimed
            # again with the rest, in id order (the primary key's). The claim commits before
            # anything is sent, so the pass's number names exactly its rows.
            claimed = (await a.conn.execute(text(self._claim_sql), {"p": p, "n": self._batch_size})).all()
        if not claimed:
            return 0
        a.next_pass += 1
        rows = sorted(claimed, key=lambda r: r.id)
        out = [_record_of(r) for r in rows]
        refused: dict[int, str] = {}
        failure: BaseException | None = None
        try:
            async with a.producer.transaction():
                # The pass's entry goes with its records, in the same round of requests.
                *answers, entry = await send_each_answers(a.producer, [*out, self._entry(link, p, rows)])
                outcomes = [x if isinstance(x, BaseException) else None for x in answers]
                refused, failure = self._sort_out(rows, out, outcomes)
                if isinstance(entry, BaseException):
                    failure = failure or entry
                if refused or failure is not None:
                    raise _Aborted
                await self._account(a.producer, link, p, entry)
        except _Aborted:
            pass
        if refused:
            async with a.conn.begin():
                await self._move_aside(a.conn, refused)
            self.set_aside += len(refused)
        if failure is not None:
            raise failure  # not a row's fault: the pass's rows go in a later pass
        if refused:
            return len(refused)  # the others stay claimed and go in the next pass
        async with a.conn.begin():
            await a.conn.execute(text(self._delete_sql), {"ids": [r.id for r in rows]})
        self.published += len(rows)
        self._m_published.add(len(rows), self._labels)
        self._m_pass.record(time.monotonic() - started, self._labels)
        return len(rows)

    def _entry(self, link: RelayLink, p: int, rows: Sequence[Any]) -> OutRecord:
        """The pass's entry on the passes topic (what it published, for whoever reads that topic)."""
        entry = {
            "relay": self.transactional_id,
            "pass": p,
            "records": len(rows),
            "first_id": rows[0].id,
            "last_id": rows[-1].id,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        return OutRecord(
            link.passes.topic,
            _JSON.encode(entry),
            key=self.transactional_id.encode(),
            partition=link.passes.partition,
        )

    async def _account(self, producer: Any, link: RelayLink, p: int, entry: Any) -> None:
        """The group's offset after the pass's entry (`entry`: the broker's answer to it), carrying
        the pass's number: it commits with the pass's records and entry, or nothing does."""
        offset = getattr(entry, "offset", -1) + 1  # the fake's sends in a transaction have no offset yet
        await producer.send_offsets_to_transaction(
            {link.passes: OffsetAndMetadata(offset, str(p))}, self.transactional_id
        )

    def _sort_out(
        self, rows: Sequence[Any], out: Sequence[OutRecord], outcomes: Sequence[BaseException | None]
    ) -> tuple[dict[int, str], BaseException | None]:
        """The rows refused for good (with the reason) and the first failure that is not a row's
        fault; either aborts the pass."""
        refused: dict[int, str] = {}
        failure: BaseException | None = None
        for row, record, exc in zip(rows, out, outcomes, strict=True):
            if exc is None:
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
        return refused, failure

    async def _move_aside(self, conn: AsyncConnection, refused: dict[int, str]) -> None:
        await conn.execute(
            text(
                f"INSERT INTO {self._table}_set_aside (id, topic, key, value, headers, partition, created_at, reason) "
                f"SELECT id, topic, key, value, headers, partition, created_at, CAST(:reason AS text) "
                f"FROM {self._table} WHERE id = :id ON CONFLICT (id) DO NOTHING"
            ),
            [{"id": row_id, "reason": reason} for row_id, reason in refused.items()],
        )
        await conn.execute(text(f"DELETE FROM {self._table} WHERE id = ANY(:ids)"), {"ids": list(refused)})

    async def close(self) -> None:
        """Let go of the table: stop the producer and end the session that holds the lock."""
        a, self._active = self._active, None
        if a is not None:
            await _stop_quietly(a.producer)
            await _end_session(a.conn)

    async def drain(self, link: RelayLink) -> int:
        """Publish until the outbox is empty (or another relay holds it); the number taken off."""
        total = 0
        while n := await self.publish_pending(link):
            total += n
        return total

    async def run(self, link: RelayLink) -> None:
        """Relay until `stop()`: a full batch is followed at once, otherwise after `idle_s` (or
        `wake()`); transient failures retry with capped backoff, others raise. Lets go of the table
        when it ends."""
        try:
            await self._job.run(lambda: self.publish_pending(link), again=lambda n: n >= self._batch_size)
        finally:
            await self.close()


async def _end_session(conn: AsyncConnection) -> None:
    """Close the connection's session for good, not back into the pool: a session-level advisory
    lock outlives transactions, so only the session's end is sure to release it."""
    try:
        await conn.invalidate()
        await conn.close()
    except Exception:  # already gone with its server: nothing left to release
        log.debug("outbox: ending a relay session failed", exc_info=True)


async def _stop_quietly(producer: Any) -> None:
    try:
        await producer.stop()
    except Exception:
        log.debug("outbox: stopping a relay producer failed", exc_info=True)
