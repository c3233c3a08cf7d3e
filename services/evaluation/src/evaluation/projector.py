"""The consumer-loop handler for `case.lifecycle.v1`: decode each event, hand the batch to the read models.

Contract: at least once in, idempotent out. A batch replayed after a crash or a retry stores nothing
twice and recomputes the same figures (`ReadModels.apply`). Records in partition order (key =
case_id) are the normal case, but nothing depends on it: facts are folded from every stored event
of a case, ordered by seq. A record that is not a lifecycle event (undecodable JSON, a missing or
malformed field, a key that is not its case_id) is dead-lettered with a reason naming the problem
(`evaluation.lifecycle_invalid`, `evaluation.key_mismatch`), never skipped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

from evaluation.store import Applied, Positions, Received
from onegrid.kafka import BatchResult, DeadLetter, Record
from onegrid_contracts.lifecycle import decode_lifecycle

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where decoded events go: `ReadModels` in PostgreSQL, an in-memory fake in unit tests."""

    async def apply(self, received: Sequence[Received], positions: Positions | None = None) -> Applied:
        """Store the events once each and bring facts and figures up to date; idempotent. `positions`
        (the batch's next offset per partition) is recorded as the figures' as-of."""
        ...


class Projector:
    def __init__(
        self,
        models: EventSink,
        *,
        dead_letters: bool = True,
        after: Callable[[set[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._models = models
        # Run with the case ids of every batch once the read models hold it (the lake's facts by day):
        # before the loop commits, so a crash in between redoes it.
        self._after = after
        # False during a rebuild: those records were dead-lettered when first read; they are
        # counted and logged rather than sent to the DLQ a second time.
        self._dead_letters = dead_letters
        self.stored = 0
        self.repeats = 0
        self.rejected = 0

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        received: list[Received] = []
        for r in records:
            value = r.value or b""
            try:
                event = decode_lifecycle(value)
            except (msgspec.ValidationError, msgspec.DecodeError) as e:
                self._reject(result, DeadLetter(r, "evaluation.lifecycle_invalid", str(e), "decode"))
                continue
            if r.key is not None and r.key.decode("utf-8", "replace").lower() != str(event.case_id):
                detail = f"key {r.key!r} is not the event's case_id {event.case_id}"
                self._reject(result, DeadLetter(r, "evaluation.key_mismatch", detail, "decode"))
                continue
            received.append(Received(event, value, r.topic, r.partition, r.offset))
        positions: Positions = {}
        for r in records:
            positions[(r.topic, r.partition)] = max(positions.get((r.topic, r.partition), 0), r.offset + 1)
        applied = await self._models.apply(received, positions)
        if self._after is not None and received:
            await self._after({str(r.event.case_id) for r in received})
        self.stored += applied.stored
        self.repeats += applied.repeats
        if applied.repeats:
            log.info("%d lifecycle events were already stored", applied.repeats)
        return result

    def _reject(self, result: BatchResult, dl: DeadLetter) -> None:
        self.rejected += 1
        log.warning(
            "%s[%d]@%d: %s: %s", dl.record.topic, dl.record.partition, dl.record.offset, dl.reason, dl.detail
        )
        if self._dead_letters:
            result.dead_letters.append(dl)
