"""Dispatch HTTP API for command-centre operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def router(engine: AsyncEngine) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["dispatch"])

    @r.get("/cases/{case_id}/events")
    async def case_events(case_id: str) -> list[dict[str, Any]]:
        """Every case event received for a case, in arrival order."""
        async with engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        text(
                            "SELECT event_id, topic, event_type, body, received_at FROM inbox "
                            "WHERE case_id = :c ORDER BY received_at, event_id"
                        ),
                        {"c": case_id},
                    )
                )
                .mappings()
                .all()
            )
        if not rows:
            raise HTTPException(404, f"no events for case {case_id}")
        return [dict(x) for x in rows]

    return r
