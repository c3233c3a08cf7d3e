"""What flows through a consumer loop: the records read, the records to write, the dead letters."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import msgspec

Headers = Sequence[tuple[str, bytes]]


class Record(Protocol):
    """A consumed record; aiokafka's ConsumerRecord and the in-memory fake both satisfy it."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Headers: ...
    @property
    def timestamp(self) -> int: ...


class OutRecord(msgspec.Struct, frozen=True):
    """A record to produce. `value=None` is a tombstone on a compacted topic. A struct: every service
    builds one per record it writes (constructed in C, a quarter of a frozen dataclass's cost)."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that will not be processed, kept byte-exact with the reason why.

    `kind` is "dlq" (malformed: it will never succeed) or "quarantine" (well formed but not mappable
    yet: replayable). The target topic is chosen by the loop's error policy from `kind`.
    """

    record: Record
    reason: str
    detail: str
    stage: str = "process"
    kind: str = "dlq"


@dataclass(slots=True)
class BatchResult:
    """What a handler made of a batch: records to produce and records set aside."""

    outputs: list[OutRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Run by the loop once outputs and offsets are committed (never when delivery fails): a handler
    # computes its in-memory state changes on the side and applies them here, so a retried or
    # aborted batch never sees state from its own failed attempt.
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    def extend(self, other: BatchResult) -> None:
        self.outputs.extend(other.outputs)
        self.dead_letters.extend(other.dead_letters)
        self.after_commit.extend(other.after_commit)


# A dead-letter copy stays below the broker's default message size (1 MiB) with room for its headers.
DEAD_LETTER_MAX_BYTES = 900 * 1024


def dead_letter_record(
    dl: DeadLetter, *, topic: str, service: str, prefix: str = "dlq", max_bytes: int = DEAD_LETTER_MAX_BYTES
) -> OutRecord:
    """The DLQ/quarantine record: the original value, key and headers unchanged, plus `<prefix>_*` headers.

    A copy that would exceed `max_bytes` (a rejected record near the broker's message size, plus
    the headers added here) could not be produced and would stop the loop: its value is cut to fit
    and `<prefix>_truncated`, `<prefix>_original_bytes` and `<prefix>_original_sha256` say so; the
    `<prefix>_topic/partition/offset` headers point to the original, which stays in its topic (and
    in the audit trail)."""
    r = dl.record
    ours = {
        f"{prefix}_reason": dl.reason,
        f"{prefix}_detail": dl.detail[:4000],
        f"{prefix}_topic": r.topic,
        f"{prefix}_partition": str(r.partition),
        f"{prefix}_offset": str(r.offset),
        f"{prefix}_timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        f"{prefix}_stage": dl.stage,
        f"{prefix}_service": service,
    }
    headers = [(k, v) for k, v in (r.headers or ()) if k not in ours]
    value = r.value
    size = len(value or b"") + len(r.key or b"") + sum(len(k) + len(v) for k, v in headers)
    size += sum(len(k) + len(v.encode()) for k, v in ours.items())
    if value is not None and size > max_bytes:
        ours[f"{prefix}_truncated"] = "true"
        ours[f"{prefix}_original_bytes"] = str(len(value))
        ours[f"{prefix}_original_sha256"] = hashlib.sha256(value).hexdigest()
        value = value[: max(0, len(value) - (size - max_bytes) - 512)]
    headers += [(k, v.encode()) for k, v in ours.items()]
    return OutRecord(topic=topic, value=value, key=r.key, headers=headers)
