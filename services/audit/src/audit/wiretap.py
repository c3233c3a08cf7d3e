"""The wire tap: the consumer loop's handler that records every message of the system in the trail.

It reads every topic the topic catalogue marks audited (``onegrid.topics.audit_tap_pattern``): every
service's topics and dead letters, and every department's orders; not the trail's own heads and
dead-letter topic, nor the correlation stage's watermark and changelog topics (not evidence). Idempotent as the loop requires: a batch replayed
after a crash, a retry or poison isolation appends nothing twice (see ``TrailWriter.append``). The tap
never dead-letters a record for what it holds: every record, however malformed, is evidence and is
recorded as it is. Only a record the trail cannot store (the trail's failure, not the record's) is set
aside by the loop on the audit's dead-letter topic with the reason, for a replay once the cause is
fixed. It produces nothing else; the loop commits offsets only after ``append`` has committed its
transaction.

Scaling: one gapless sequence needs one writer at a time. The tap runs as a single consumer group
(``audit.wiretap``); with several instances the partitions are shared but their appends are
serialized by the ``log_state`` row lock, so more instances add availability, not write throughput.
Throughput comes from batches (one transaction per batch of up to ``batch_max_records``, its rows
COPYed in chunks while the next chunk is built).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from audit.trail_writer import TrailWriter
from onegrid.kafka import BatchResult, Record

log = logging.getLogger(__name__)


class WireTap:
    def __init__(self, writer: TrailWriter) -> None:
        self._writer = writer
        self.recorded = 0

    async def handle(self, records: Sequence[Record]) -> BatchResult:
        result = await self._writer.append(records)
        self.recorded += result.appended
        if result.duplicates:
            log.info("%d records were already in the trail", result.duplicates)
        return BatchResult()
