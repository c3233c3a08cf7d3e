"""The wire tap: every message of the system recorded once, keyed by its position in Kafka.

Idempotent on (topic, partition, offset): a batch replayed after a crash inserts nothing twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from onegrid.envelope import header_dict
from onegrid.kafka import BatchResult, Record
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_INSERT = text(
    """
    INSERT INTO trail (topic, partition, "offset", kafka_ts, key, event_id, event_type, subject,
                       traceparent, payload_sha256, payload, headers)
    SELECT * FROM unnest(
        CAST(:topic AS text[]), CAST(:partition AS int[]), CAST(:offset AS bigint[]),
        CAST(:kafka_ts AS bigint[]), CAST(:key AS bytea[]), CAST(:event_id AS text[]),
        CAST(:event_type AS text[]), CAST(:subject AS text[]), CAST(:traceparent AS text[]),
        CAST(:sha AS bytea[]), CAST(:payload AS bytea[]), CAST(:headers AS jsonb[]))
    ON CONFLICT (topic, partition, "offset") DO NOTHING
    """
)


class WireTap:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        import json

        cols: dict[str, list[object]] = {
            k: []
            for k in (
                "topic",
                "partition",
                "offset",
                "kafka_ts",
                "key",
                "event_id",
                "event_type",
                "subject",
                "traceparent",
                "sha",
                "payload",
                "headers",
            )
        }
        for r in records:
            h = header_dict(r.headers)
            payload = r.value or b""
            cols["topic"].append(r.topic)
            cols["partition"].append(r.partition)
            cols["offset"].append(r.offset)
            cols["kafka_ts"].append(r.timestamp)
            cols["key"].append(r.key)
            cols["event_id"].append(h.get("ce_id"))
            cols["event_type"].append(h.get("ce_type"))
            cols["subject"].append(h.get("ce_subject"))
            cols["traceparent"].append(h.get("traceparent"))
            cols["sha"].append(hashlib.sha256(payload).digest())
            cols["payload"].append(payload)
            cols["headers"].append(json.dumps(h, ensure_ascii=False))
        async with self._engine.begin() as conn:
            await conn.execute(_INSERT, cols)
        return BatchResult()
