"""Receipts of pushed records (migrations/versions/0001_receipts.py): idempotency by the source's
record id across every bridges instance. Written after Kafka acknowledged, so a receipt always
names a stored record; two identical pushes racing each other may both be written (same bytes, same
ce_id: intake takes the source record in once)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class Receipt:
    topic: str
    partition: int
    offset: int


class Receipts:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def find(self, source: str, record_id: str, sha256: str) -> Receipt | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT topic, kafka_partition, kafka_offset FROM receipt "
                        "WHERE source = :s AND record_id = :r AND sha256 = :h"
                    ),
                    {"s": source, "r": record_id, "h": sha256},
                )
            ).first()
        return Receipt(row[0], row[1], row[2]) if row else None

    async def record(self, source: str, record_id: str, sha256: str, sender: str, where: Receipt) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO receipt (source, record_id, sha256, sender, topic, kafka_partition, kafka_offset) "
                    "VALUES (:s, :r, :h, :who, :t, :p, :o) ON CONFLICT DO NOTHING"
                ),
                {
                    "s": source,
                    "r": record_id,
                    "h": sha256,
                    "who": sender,
                    "t": where.topic,
                    "p": where.partition,
                    "o": where.offset,
                },
            )
