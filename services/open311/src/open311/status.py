"""The Open311 status follows the case: batch handlers for `case.lifecycle.v1` and `cases.v1`.

`apply_cases` keeps each request pointed at its case: intake may link a resident's request into an
existing case about the same problem nearby (`case.linked`), and the request then shows that case's
current status (kept per case from the lifecycle, whichever topic is read first) and follows it.

`apply_lifecycle` contract (a `BatchHandler` for the shared consumer loop, at least once):
- For each case in the batch, the event of highest `seq` is kept as the case's status and sets the
  status, notes, updated and expected datetimes and agency of the Open311 requests on that case (if
  any; most cases come from other networks and have none until a request is linked into them). Two
  round trips per batch, committed before the handler returns, so offsets are committed only after
  the rows are.
- Idempotent: an event whose seq is not higher than the row's stored one changes nothing, so a
  replayed batch, a duplicate or a late event never moves a status backwards.
- A value that is not a lifecycle event is dead-lettered (`lifecycle.invalid`, stage `decode`); it
  does not hold up the others.
- Produces nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from intake.domain.errors import Rejected
from onegrid.kafka import BatchResult, DeadLetter, Record
from open311.domain.status import (
    CaseLink,
    StatusChange,
    decode_case_link,
    decode_lifecycle,
    latest_per_case,
)
from open311.store import apply_changes, link_cases


class Open311StatusFollower:
    """Keeps `open311_request` in step with `cases.v1` (its case) and `case.lifecycle.v1` (its status)."""

    def __init__(self, *, engine: AsyncEngine) -> None:
        self._engine = engine

    async def apply_lifecycle(self, records: Sequence[Record]) -> BatchResult:
        """Apply a batch of lifecycle records; see the module docstring."""
        result = BatchResult()
        changes: list[StatusChange] = []
        for record in records:
            try:
                changes.append(decode_lifecycle(record.value))
            except Rejected as error:
                result.dead_letters.append(
                    DeadLetter(record=record, reason=error.reason, detail=error.detail, stage="decode")
                )
        latest = latest_per_case(changes)
        if latest:
            async with self._engine.begin() as conn:
                await apply_changes(conn, latest)
        return result

    async def apply_cases(self, records: Sequence[Record]) -> BatchResult:
        """Point requests at the cases `cases.v1` put them in (one round trip; idempotent; other
        networks' events are skipped; a value that is not a CaseEvent is dead-lettered `cases.invalid`)."""
        result = BatchResult()
        links: dict[uuid.UUID, CaseLink] = {}
        for record in records:
            try:
                link = decode_case_link(record.value)
            except Rejected as error:
                result.dead_letters.append(
                    DeadLetter(record=record, reason=error.reason, detail=error.detail, stage="decode")
                )
                continue
            if link is not None:
                links[link.service_request_id] = link  # the later event of one request wins
        if links:
            async with self._engine.begin() as conn:
                await link_cases(conn, list(links.values()))
        return result
