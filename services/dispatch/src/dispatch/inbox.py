"""Case events and feedback as received, stored once per event id (the state machine reads from here)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from onegrid.envelope import header_dict
from onegrid.kafka import BatchResult, DeadLetter, Record
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_INSERT = text(
    """
    INSERT INTO inbox (event_id, topic, case_id, event_type, body)
    SELECT * FROM unnest(CAST(:event_id AS text[]), CAST(:topic AS text[]), CAST(:case_id AS text[]),
                         CAST(:event_type AS text[]), CAST(:body AS jsonb[]))
    ON CONFLICT (event_id) DO NOTHING
    """
)


class CaseInbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        rows: dict[str, list[object]] = {
            k: [] for k in ("event_id", "topic", "case_id", "event_type", "body")
        }
        for r in records:
            h = header_dict(r.headers)
            try:
                body = json.loads(r.value or b"")
            except ValueError as e:
                result.dead_letters.append(DeadLetter(r, "dispatch.json_malformed", str(e), "decode"))
                continue
            rows["event_id"].append(h.get("ce_id") or f"{r.topic}:{r.partition}:{r.offset}")
            rows["topic"].append(r.topic)
            rows["case_id"].append(h.get("ce_subject") or (r.key or b"").decode("utf-8", "replace"))
            rows["event_type"].append(h.get("ce_type"))
            rows["body"].append(json.dumps(body, ensure_ascii=False))
        if rows["event_id"]:
            async with self._engine.begin() as conn:
                await conn.execute(_INSERT, rows)
        return result
