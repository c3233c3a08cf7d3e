"""One audited event (``AuditEntry``), its canonical leaf bytes and its export record.

The leaf is a length-prefixed binary layout (documented byte by byte in ``contracts/audit/README.md``).
Version 2, written since the headers became evidence too, adds ``headers_sha256``: a digest of the Kafka
record's headers (CloudEvents source, time and type, dead-letter and quarantine reasons...), so what a
header says is as tamper-evident as the payload. Version 1 entries (no headers digest) stay valid and
verifiable: the layout version is the leaf's first byte. Both commit to the payload and the headers only
through their hashes, so those can be archived or erased separately while the log still verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from audit.domain.merkle import leaf_hash

LEAF_VERSION = 2  # what new entries are written with
LEAF_V1, LEAF_V2 = 1, 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OPTIONAL_TEXT = ("key", "case_id", "actor", "trace_id")
_T = TypeVar("_T")
# Big-endian pieces of the leaf layout (contracts/audit/README.md section 3).
_VERSION_SEQ_TIME_LEN = struct.Struct(">BQqI")  # version, seq, recorded_at µs, topic length
_POSITION_LEN = struct.Struct(">IQI")  # partition, offset, event_id length
_PRESENT_LEN = struct.Struct(">BI")  # 0x01 (present), length
_LEN = struct.Struct(">I")
_NO_HEADERS_DIGEST = hashlib.sha256(_LEN.pack(0)).digest()
# Header names come back on every record (ce_id, ce_type, traceparent...): their length-prefixed bytes
# are kept, up to a bound (a producer may send any names).
_NAME_BYTES: dict[str, bytes] = {}
_NAMES_KEPT = 1024
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
        "headers_sha256",
        "headers",
    }
    | set(_OPTIONAL_TEXT)
)
_OPTIONAL_FIELDS = frozenset({"payload", "headers_sha256", "headers"})


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
    # Layout v2 only (None: a v1 entry). ``headers`` is None once archived, like ``payload``.
    headers_sha256: bytes | None = None
    headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.seq < 1 << 63:
            raise MalformedRecord(f"seq {self.seq} is out of range")
        if self.recorded_at.utcoffset() is None:
            raise MalformedRecord("recorded_at has no UTC offset")
        if not 0 <= self.partition < 1 << 31 or not 0 <= self.offset < 1 << 63:
            raise MalformedRecord(f"partition {self.partition} / offset {self.offset} out of range")
        if len(self.payload_sha256) != 32:
            raise MalformedRecord("payload_sha256 is not 32 bytes")
        if self.headers_sha256 is not None and len(self.headers_sha256) != 32:
            raise MalformedRecord("headers_sha256 is not 32 bytes")
        if self.headers is not None and self.headers_sha256 is None:
            raise MalformedRecord("headers without headers_sha256 (a v1 entry has no headers)")
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
        headers: Mapping[str, str] | None = None,
    ) -> AuditEntry:
        """A new entry with ``payload_sha256`` computed from ``payload``; with ``headers``, a layout v2
        entry whose ``headers_sha256`` is computed from them (without, a v1 entry)."""
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
            headers_sha256=None if headers is None else headers_digest(headers),
            headers=None if headers is None else dict(headers),
        )

    @property
    def leaf_version(self) -> int:
        return LEAF_V1 if self.headers_sha256 is None else LEAF_V2

    @property
    def recorded_at_us(self) -> int:
        """Microseconds since 1970-01-01T00:00:00Z: the instant the leaf commits to."""
        return micros(self.recorded_at)

    def payload_matches(self) -> bool | None:
        """Whether the payload hashes to ``payload_sha256``; ``None`` when the payload is archived."""
        if self.payload is None:
            return None
        return hashlib.sha256(self.payload).digest() == self.payload_sha256

    def headers_match(self) -> bool | None:
        """Whether the headers hash to ``headers_sha256``; ``None`` for a v1 entry or archived headers."""
        if self.headers is None or self.headers_sha256 is None:
            return None
        return headers_digest(self.headers) == self.headers_sha256

    def leaf_bytes(self) -> bytes:
        """The canonical leaf: every field but the payload (and headers), in a fixed order; layout v2
        appends ``headers_sha256`` to layout v1's fields."""
        return leaf_bytes(
            self.seq,
            self.recorded_at_us,
            self.topic,
            self.partition,
            self.offset,
            self.event_id,
            self.event_type,
            (self.key, self.case_id, self.actor, self.trace_id),
            self.payload_sha256,
            self.headers_sha256,
        )

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
        } | self._headers_export()

    def _headers_export(self) -> dict[str, Any]:
        if self.headers_sha256 is None:
            return {}  # a v1 entry: exactly the v1 record
        headers = None if self.headers is None else dict(sorted(self.headers.items()))
        return {"headers_sha256": self.headers_sha256.hex(), "headers": headers}

    @classmethod
    def from_export(cls, record: object) -> AuditEntry:
        """Parse one export record; raises ``MalformedRecord``. Unknown fields are refused because
        nothing outside the leaf is authenticated."""
        if not isinstance(record, dict):
            raise MalformedRecord("record is not a JSON object")
        if unknown := set(record) - EXPORT_FIELDS:
            raise MalformedRecord(f"unknown fields {sorted(unknown)}")
        if missing := EXPORT_FIELDS - _OPTIONAL_FIELDS - set(record):
            raise MalformedRecord(f"missing fields {sorted(missing)}")
        payload = record.get("payload")
        headers = _headers(record)
        try:
            recorded_at = datetime.fromisoformat(_typed(record, "recorded_at", str))
            digest = bytes.fromhex(_typed(record, "payload_sha256", str))
            body = (
                None if payload is None else base64.b64decode(_typed(record, "payload", str), validate=True)
            )
            headers_digest_ = (
                None
                if record.get("headers_sha256") is None
                else bytes.fromhex(_typed(record, "headers_sha256", str))
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
            headers_sha256=headers_digest_,
            headers=headers,
        )


def micros(t: datetime) -> int:
    """Microseconds since 1970-01-01T00:00:00Z (``t`` timezone-aware): how the leaf holds an instant."""
    return (t - _EPOCH) // _MICROSECOND


def leaf_bytes(
    seq: int,
    recorded_at_us: int,
    topic: str,
    partition: int,
    offset: int,
    event_id: str,
    event_type: str,
    optional: tuple[str | None, str | None, str | None, str | None],
    payload_sha256: bytes,
    headers_sha256: bytes | None,
) -> bytes:
    """The leaf layout (contracts/audit/README.md section 3): version 1 without ``headers_sha256``,
    version 2 with it. ``optional`` is (key, case_id, actor, trace_id). The writer's hot path calls
    this directly, so it packs adjacent fixed-size fields in one go; struct refuses values out of range."""
    t, e, y = topic.encode(), event_id.encode(), event_type.encode()
    version = LEAF_V1 if headers_sha256 is None else LEAF_V2
    parts = [
        _VERSION_SEQ_TIME_LEN.pack(version, seq, recorded_at_us, len(t)),
        t,
        _POSITION_LEN.pack(partition, offset, len(e)),
        e,
        _LEN.pack(len(y)),
        y,
    ]
    for value in optional:
        if value is None:
            parts.append(b"\x00")
        else:
            data = value.encode()
            parts += (_PRESENT_LEN.pack(1, len(data)), data)
    parts.append(payload_sha256)
    if headers_sha256 is not None:
        parts.append(headers_sha256)
    return b"".join(parts)


def headers_digest(headers: Mapping[str, str]) -> bytes:
    """SHA-256 of the headers' canonical bytes: their number (4 bytes, big-endian), then each header
    in the order of its name's UTF-8 bytes, as length-prefixed name and length-prefixed value."""
    if not headers:
        return _NO_HEADERS_DIGEST
    parts = [_LEN.pack(len(headers))]
    # Text that encodes to UTF-8 sorts in the order of its UTF-8 bytes (code point order).
    for name in sorted(headers):
        prefix = _NAME_BYTES.get(name)
        if prefix is None:
            n = name.encode()
            prefix = _LEN.pack(len(n)) + n
            if len(_NAME_BYTES) < _NAMES_KEPT:
                _NAME_BYTES[name] = prefix
        v = headers[name].encode()
        parts.append(prefix + _LEN.pack(len(v)) + v)
    return hashlib.sha256(b"".join(parts)).digest()


def _headers(record: dict[str, Any]) -> dict[str, str] | None:
    value = record.get("headers")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MalformedRecord("headers must be an object of strings or null")
    return value


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
