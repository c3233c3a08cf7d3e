"""Test support for the audit service (its integration tests, and the bench, which loads this file by
path): a migrated schema of its own, fake Kafka records, and the wire tap alone in a process of its own."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

import audit
from audit.database import Database, libpq_url
from audit.trail_writer import TrailWriter
from audit.wiretap import WireTap
from onegrid.db import migrate
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.topic_ids import TopicIds
from onegrid.settings import KafkaSettings

MIGRATIONS = Path(audit.__file__).parent / "migrations"


def asyncpg_url(url: str) -> str:
    return "postgresql+asyncpg://" + libpq_url(url).split("://", 1)[1]


async def fresh_schema(database_url: str) -> Database:
    """A new schema migrated to head, and an open pool on it."""
    schema = f"audit_t_{uuid.uuid4().hex[:10]}"
    await migrate(asyncpg_url(database_url), schema, MIGRATIONS)
    db = Database(asyncpg_url(database_url), schema)
    await db.open()
    return db


async def superuser(database_url: str, schema: str) -> asyncpg.Connection:
    return await asyncpg.connect(libpq_url(database_url), server_settings={"search_path": schema})


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int = 1_772_323_200_000


def case_event(
    topic: str, offset: int, case_id: str, *, partition: int = 0, event_id: str | None = None, **body: object
) -> FakeRecord:
    eid = event_id or str(uuid.uuid4())
    payload = {"event_id": eid, "case_id": case_id, **body}
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", eid.encode()),
        ("ce_source", b"/onegrid/intake"),
        ("ce_type", b"cn.onegrid.case.reported.v1"),
        ("ce_subject", case_id.encode()),
        ("content-type", b"application/json"),
        ("traceparent", f"00-{uuid.uuid4().hex}-00f067aa0ba902b7-01".encode()),
    ]
    return FakeRecord(
        topic, partition, offset, json.dumps(payload, ensure_ascii=False).encode(), case_id.encode(), headers
    )


class PausingWriter(TrailWriter):
    """A writer that waits inside each batch's transaction, so a SIGKILL lands mid-batch."""

    def __init__(self, db: Database, pause_s: float, **kw: Any) -> None:
        super().__init__(db, **kw)
        self._pause_s = pause_s

    async def _advance(self, conn: asyncpg.Connection, *args: Any) -> None:
        await super()._advance(conn, *args)
        await asyncio.sleep(self._pause_s)


async def run_tap(bootstrap: str, database_url: str, schema: str, topics: list[str], pause_s: float) -> None:
    """The wire tap alone (no HTTP, no signer) on ``topics``, in group ``tap-<schema>``, until SIGTERM."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    db = Database(asyncpg_url(database_url), schema)
    await db.open()
    ids = TopicIds(kafka)
    writer = PausingWriter(db, pause_s, topic_ids=ids) if pause_s else TrailWriter(db, topic_ids=ids)
    group = f"tap-{schema}"
    loop = ConsumerLoop(
        consumer=make_consumer(kafka, group_id=group, client_id=group),
        handler=WireTap(writer).handle,
        config=LoopConfig(
            group_id=group, topics=tuple(topics), service="audit", batch_max_records=50, commit_interval_s=0.2
        ),
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, loop.stop)
    print("ready", flush=True)
    try:
        await loop.run()
    finally:
        await db.close()


if __name__ == "__main__":
    # python tests/support/audit_trail.py BOOTSTRAP DATABASE_URL SCHEMA PAUSE_S TOPIC...
    a = sys.argv[1:]
    asyncio.run(run_tap(a[0], a[1], a[2], a[4:], float(a[3])))
