"""Audit HTTP API: the trail of one case, by position."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def router(engine: AsyncEngine) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["audit"])

    @r.get("/trail")
    async def trail(
        subject: str | None = None, topic: str | None = None, limit: int = Query(100, ge=1, le=1000)
    ) -> list[dict[str, Any]]:
        """Recorded messages in recording order, filtered by case id (CloudEvents subject) or topic."""
        q = (
            'SELECT seq, topic, partition, "offset", event_id, event_type, subject, traceparent, '
            "encode(payload_sha256, 'hex') AS payload_sha256, recorded_at FROM trail WHERE true"
        )
        params: dict[str, Any] = {"limit": limit}
        if subject:
            q += " AND subject = :subject"
            params["subject"] = subject
        if topic:
            q += " AND topic = :topic"
            params["topic"] = topic
        async with engine.connect() as conn:
            rows = (await conn.execute(text(q + " ORDER BY seq LIMIT :limit"), params)).mappings().all()
        return [dict(row) for row in rows]

    return r
