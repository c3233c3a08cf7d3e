"""Composition root of the audit service: the wire tap, the head signer, the partition keeper, the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI

from audit.api import router
from audit.database import Database
from audit.domain.tree_head import SignedTreeHead
from audit.heads import HeadSigner, head_bytes
from audit.self_check import HeadCheck
from audit.settings import Settings
from audit.store import TrailStore
from audit.trail_writer import TrailWriter, ensure_partitions
from audit.wiretap import WireTap
from onegrid.envelope import CloudEvent
from onegrid.kafka.topic_ids import TopicIds
from onegrid.periodic import Periodic, any_error
from onegrid.service import create_app
from onegrid.topics import AUDIT_DLQ, AUDIT_HEADS
from onegrid.wiring import Wiring, wire


@dataclass
class AuditService:
    app: FastAPI
    settings: Settings
    wiring: Wiring


def bootstrap(settings: Settings | None = None) -> AuditService:
    settings = settings or Settings()
    key = settings.private_key()  # fails at start, before anything runs, when the key is unusable
    w = wire(settings, migrations=Path(__file__).parent / "migrations")
    db = Database(settings.database_url, settings.db_schema)
    writer = TrailWriter(
        db,
        topic_ids=TopicIds(settings.kafka),
        partitions_ahead=settings.partitions_ahead,
        trust=settings.trust(),
    )
    signer = HeadSigner(
        db,
        key,
        every_entries=settings.head_every_entries,
        interval_s=settings.head_interval_s,
        publish=_publisher(w),
    )
    # Opened after `wire`'s own start hook (migrations, topics, Kafka clients): hooks run in order.
    w.runtime.on_start.append(db.open)
    w.runtime.on_stop.append(db.close)
    w.runtime.background.append(signer.run)
    store = TrailStore(db)
    check = HeadCheck(store, key.public_key(), interval_s=settings.head_check_interval_s)
    w.runtime.background.append(check.run)
    w.runtime.background.append(_partition_keeper(db, settings.partitions_ahead))
    w.add_loop(
        name="wiretap",
        topics=(),
        topic_pattern=settings.tap_topic_pattern,
        handler=WireTap(writer).handle,
        # A record the writer cannot store (a non-transient error) is set aside here with the reason,
        # instead of stopping the tap for good; replayed once the cause is fixed.
        dlq_topic=AUDIT_DLQ,
        quarantine_topic=None,
    )
    app = create_app(w.runtime, title="OneGrid audit", routers=[router(store, key.public_key())])
    return AuditService(app, settings, w)


def _publisher(w: Wiring):  # type: ignore[no-untyped-def]
    async def publish(head: SignedTreeHead) -> None:
        if w.producer is None:
            raise RuntimeError("the producer is not started")
        event = CloudEvent(
            type="cn.onegrid.audit.tree_head.v1",
            source="/onegrid/audit",
            id=f"{head.key_id}-{head.tree_size}-{head.timestamp}",
        )
        await w.producer.send_and_wait(
            AUDIT_HEADS, head_bytes(head), key=head.key_id.encode(), headers=event.headers()
        )

    return publish


def _partition_keeper(db: Database, ahead: int):  # type: ignore[no-untyped-def]
    async def keep_partitions() -> None:
        """Create next months' trail partitions well ahead of time (hourly; idempotent)."""

        async def ensure() -> None:
            async with db.acquire() as conn:
                await ensure_partitions(conn, datetime.now(UTC), ahead)

        await Periodic("trail partitions", 3600, retry=any_error).run(ensure)

    return keep_partitions
