"""Test support for the audit service (used by its integration tests and the bench): a migrated schema
of its own, and fake Kafka records."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

import audit
from audit.database import Database, libpq_url
from onegrid.db import migrate

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
