"""The topics the console follows from their beginning, without a consumer group (GlobalTable):
dead letters and quarantine into the set-aside book, cases and lifecycle into the case board, the
grid registry into a RegistryView for the map.

Each handler is total: a record it cannot read is counted in `unreadable` and skipped (the console
shows, it does not judge; intake and dispatch dead-letter what is malformed).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from console.domain.board import CaseBoard
from console.domain.set_aside import Position, SetAsideBook, describe
from console.settings import Settings
from onegrid.kafka import BatchResult, Record
from onegrid.kafka.table import GlobalTable
from registry_client import RegistryView

log = logging.getLogger(__name__)


def trace_id_of(headers: Sequence[tuple[str, bytes]]) -> str | None:
    """The trace id of a record's W3C `traceparent` header, if it has a valid one."""
    value = next((v for k, v in headers if k == "traceparent"), b"")
    parts = (value or b"").decode("ascii", "replace").strip().lower().split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return None


class Feeds:
    def __init__(self, settings: Settings) -> None:
        self.book = SetAsideBook(keep_latest=settings.latest_set_aside)
        self.board = CaseBoard(keep_alerts=settings.latest_alerts)
        self.view = RegistryView()
        self.unreadable = 0
        s, kafka, cid = settings, settings.kafka, settings.client_id
        self.tables = [
            GlobalTable(kafka, s.dlq_topic, self._set_aside("dlq"), client_id=f"{cid}-dlq"),
            GlobalTable(
                kafka, s.quarantine_topic, self._set_aside("quarantine"), client_id=f"{cid}-quarantine"
            ),
            GlobalTable(
                kafka, s.cases_topic, self._case_json(self.board.case_event), client_id=f"{cid}-cases"
            ),
            GlobalTable(
                kafka, s.lifecycle_topic, self._case_json(self.board.lifecycle), client_id=f"{cid}-lifecycle"
            ),
            GlobalTable(kafka, s.registry_topic, self.view.handle, client_id=f"{cid}-registry"),
        ]

    def _set_aside(self, kind: str) -> Callable[[Sequence[Record]], Awaitable[BatchResult]]:
        async def apply(records: Sequence[Record]) -> BatchResult:
            for r in records:
                pos = Position(r.topic, r.partition, r.offset)
                self.book.add(describe(kind, pos, r.key, r.value, r.headers or ()))
            return BatchResult()

        return apply

    def _case_json(
        self, apply_one: Callable[[dict[str, object]], None]
    ) -> Callable[[Sequence[Record]], Awaitable[BatchResult]]:
        """A case event's handler: applies the document and remembers the trace it carried (so the
        trace is shown to whoever may see the case)."""

        async def apply(records: Sequence[Record]) -> BatchResult:
            for r in records:
                try:
                    doc = json.loads(r.value or b"null")
                    if not isinstance(doc, dict):
                        raise ValueError("not a JSON object")
                    apply_one(doc)
                    tid = trace_id_of(r.headers or ())
                    if tid and doc.get("case_id"):
                        self.board.saw_trace(tid, str(doc["case_id"]))
                except (ValueError, TypeError, KeyError) as exc:
                    self.unreadable += 1
                    log.debug("%s[%d]@%d unreadable: %r", r.topic, r.partition, r.offset, exc)
            return BatchResult()

        return apply

    async def follow(self) -> None:
        """Read every table from its beginning, then keep following until `stop()`."""
        await asyncio.gather(*(t.follow() for t in self.tables))

    async def stop(self) -> None:
        for t in self.tables:
            t.stop()

    def caught_up(self) -> dict[str, bool]:
        return {t.topic: t.caught_up.is_set() for t in self.tables}
