"""Replaying quarantined records once their mapping exists.

The quarantined record is read back from the quarantine topic at its position (its bytes are not
kept in memory), and its original value, key and headers, without the `quarantine_*` ones, are
produced to the topic it was read from (`quarantine_topic`). Intake then processes it like any
record: a case if the code is mapped now, quarantined again (a new position) if not. Every replay is
logged with who asked for it; replaying twice is harmless because intake's case ids are derived
from the source record (a second replay links to the same case).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from console.domain.set_aside import NotReplayable, Position, SetAsideBook, replay_of
from onegrid.settings import KafkaSettings

log = logging.getLogger(__name__)


class NoSuchRecord(LookupError):
    """Nothing at that position (never written, or past retention)."""


@dataclass(frozen=True, slots=True)
class Replayed:
    position: Position
    to_topic: str
    to_partition: int
    to_offset: int

    def to_json(self) -> dict[str, object]:
        return {
            "position": str(self.position),
            "to": f"{self.to_topic}/{self.to_partition}/{self.to_offset}",
            "to_topic": self.to_topic,
        }


class Replayer:
    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        quarantine_topic: str,
        producer: Callable[[], AIOKafkaProducer | None],
        book: SetAsideBook,
    ) -> None:
        self._kafka = kafka
        self.quarantine_topic = quarantine_topic
        self._producer = producer
        self._book = book

    async def replay(self, positions: list[Position], actor: str) -> list[Replayed]:
        """Replay each position in order; raises NoSuchRecord / NotReplayable at the first bad one
        (those before it have been replayed and are logged)."""
        for p in positions:
            if p.topic != self.quarantine_topic:
                raise NotReplayable(f"{p} is not on the quarantine topic {self.quarantine_topic}")
        producer = self._producer()
        if producer is None:
            raise RuntimeError("the console's producer is not started yet")
        reader = AIOKafkaConsumer(
            enable_auto_commit=False, isolation_level="read_committed", **self._kafka.client_kwargs()
        )
        await reader.start()
        done: list[Replayed] = []
        try:
            for p in positions:
                tp = TopicPartition(p.topic, p.partition)
                reader.assign([tp])
                reader.seek(tp, p.offset)
                batch = await reader.getmany(tp, timeout_ms=5000, max_records=1)
                records = [r for r in batch.get(tp, []) if r.offset == p.offset]
                if not records:
                    raise NoSuchRecord(f"no record at {p}")
                r = records[0]
                again = replay_of(p, r.key, r.value, list(r.headers or ()), actor)
                meta = await producer.send_and_wait(
                    again.topic, again.value, key=again.key, headers=again.headers
                )
                at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                self._book.mark_replayed(p, actor, at)
                done.append(Replayed(p, meta.topic, meta.partition, meta.offset))
                log.info(
                    "replayed %s to %s[%d]@%d for %s",
                    p,
                    meta.topic,
                    meta.partition,
                    meta.offset,
                    actor,
                    extra={"fields": {"replay_of": str(p), "replay_by": actor, "to_topic": meta.topic}},
                )
        finally:
            await reader.stop()
        return done
