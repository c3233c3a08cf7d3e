"""One audited event (``AuditEntry``), its canonical leaf bytes and its export record.

The leaf is a length-prefixed binary layout, version 1 (documented byte by byte in
``contracts/audit/README.md``). It commits to the payload only through ``payload_sha256``, so payloads
can be archived or erased separately while the log still verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from audit.domain.merkle import leaf_hash

LEAF_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OPTIONAL_TEXT = ("key", "case_id", "actor", "trace_id")
_T = TypeVar("_T")
EXPORT_FIELDS = frozenset(
    {
        "seq",
        "recorded_at",
        "topic",
        "partition",
        "offset",
        "event_id",
        "event_type",
        "payload_sha256",
        "payload",
    }
    | set(_OPTIONAL_TEXT)
)


class MalformedRecord(ValueError):
    """An export record that cannot be an ``AuditEntry``; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One event as the audit log recorded it.

    ``seq`` is the 0-based leaf index in the log; ``recorded_at`` is when the audit service recorded it
    (timezone-aware, kept to the microsecond); ``topic``/``partition``/``offset`` locate the Kafka record.
    ``payload`` is ``None`` once archived; ``payload_sha256`` (32 raw bytes) always stays.
    Construction validates shapes, not that the payload matches its hash (see ``payload_matches``).
    """

    seq: int
    recorded_at: datetime
    topic: str
    partition: int
    offset: int
    event_id: str
    event_type: str
    key: str | None
    case_id: str | None
    actor: str | None
    trace_id: str | None
    payload_sha256: bytes
    payload: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.seq < 1 << 63:
            raise MalformedRecord(f"seq {self.seq} is out of range")
        if self.recorded_at.utcoffset() is None:
            raise MalformedRecord("recorded_at has no UTC offset")
        if not 0 <= self.partition < 1 << 31 or not 0 <= self.offset < 1 << 63:
            raise MalformedRecord(f"partition {self.partition} / offset {self.offset} out of range")
        if len(self.payload_sha256) != 32:
            raise MalformedRecord("payload_sha256 is not 32 bytes")
        for name in ("topic", "event_id", "event_type", *_OPTIONAL_TEXT):
            value = getattr(self, name)
            if value is not None and not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise MalformedRecord(f"{name} is not encodable as UTF-8") from exc

    @classmethod
    def record(
        cls,
        *,
        seq: int,
        recorded_at: datetime,
        topic: str,
        partition: int,
        offset: int,
        event_id: str,
        event_type: str,
        payload: bytes,
        key: str | None = None,
        case_id: str | None = None,
        actor: str | None = None,
        trace_id: str | None = None,
    ) -> AuditEntry:
        """A new entry with ``payload_sha256`` computed from ``payload``."""
        return cls(
            seq=seq,
            recorded_at=recorded_at,
            topic=topic,
            partition=partition,
            offset=offset,
            event_id=event_id,
            event_type=event_type,
            key=key,
            case_id=case_id,
            actor=actor,
            trace_id=trace_id,
            payload_sha256=hashlib.sha256(payload).digest(),
            payload=payload,
        )

    @property
    def recorded_at_us(self) -> int:
        """Microseconds since 1970-01-01T00:00:00Z: the instant the leaf commits to."""
        return (self.recorded_at - _EPOCH) // _MICROSECOND

    def payload_matches(self) -> bool | None:
        """Whether the payload hashes to ``payload_sha256``; ``None`` when the payload is archived."""
        if self.payload is None:
            return None
        return hashlib.sha256(self.payload).digest() == self.payload_sha256

    def leaf_bytes(self) -> bytes:
        """The canonical leaf (layout v1): every field but the payload, in a fixed order."""
        parts = [
            struct.pack(">BQq", LEAF_VERSION, self.seq, self.recorded_at_us),
            _text(self.topic),
            struct.pack(">IQ", self.partition, self.offset),
            _text(self.event_id),
            _text(self.event_type),
            *(_optional_text(getattr(self, name)) for name in _OPTIONAL_TEXT),
            self.payload_sha256,
        ]
        return b"".join(parts)

    def leaf_hash(self) -> bytes:
        """RFC 9162 leaf hash of ``leaf_bytes()``."""
        return leaf_hash(self.leaf_bytes())

    def to_export(self) -> dict[str, Any]:
        """The JSON Lines export record (one object per line)."""
        return {
            "seq": self.seq,
            "recorded_at": self.recorded_at.astimezone(UTC)
            .isoformat(timespec="microseconds")
            .replace("+00:00", "Z"),
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "key": self.key,
            "case_id": self.case_id,
            "actor": self.actor,
            "trace_id": self.trace_id,
            "payload_sha256": self.payload_sha256.hex(),
            "payload": None if self.payload is None else base64.b64encode(self.payload).decode("ascii"),
        }

    @classmethod
    def from_export(cls, record: object) -> AuditEntry:
        """Parse one export record; raises ``MalformedRecord``. Unknown fields are refused because
        nothing outside the leaf is authenticated."""
        if not isinstance(record, dict):
            raise MalformedRecord("record is not a JSON object")
        if unknown := set(record) - EXPORT_FIELDS:
            raise MalformedRecord(f"unknown fields {sorted(unknown)}")
        if missing := EXPORT_FIELDS - {"payload"} - set(record):
            raise MalformedRecord(f"missing fields {sorted(missing)}")
        payload = record.get("payload")
        try:
            recorded_at = datetime.fromisoformat(_typed(record, "recorded_at", str))
            digest = bytes.fromhex(_typed(record, "payload_sha256", str))
            body = (
                None if payload is None else base64.b64decode(_typed(record, "payload", str), validate=True)
            )
        except (ValueError, binascii.Error) as exc:
            raise MalformedRecord(f"bad value: {exc}") from exc
        return cls(
            seq=_typed(record, "seq", int),
            recorded_at=recorded_at,
            topic=_typed(record, "topic", str),
            partition=_typed(record, "partition", int),
            offset=_typed(record, "offset", int),
            event_id=_typed(record, "event_id", str),
            event_type=_typed(record, "event_type", str),
            key=_optional(record, "key"),
            case_id=_optional(record, "case_id"),
            actor=_optional(record, "actor"),
            trace_id=_optional(record, "trace_id"),
            payload_sha256=digest,
            payload=body,
        )


def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def _optional_text(value: str | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + _text(value)


def _typed(record: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = record[name]
    # bool is an int in Python but never a valid seq, partition or offset.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedRecord(f"{name} must be a {kind.__name__}, got {value!r}")
    return value


def _optional(record: dict[str, Any], name: str) -> str | None:
    value = record[name]
    if value is not None and not isinstance(value, str):
        raise MalformedRecord(f"{name} must be a string or null, got {value!r}")
    return value
