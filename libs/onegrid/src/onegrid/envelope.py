"""CloudEvents 1.0 over Kafka in binary content mode.

The Kafka value is the event data itself (our JSON, or a legacy packet's bytes unchanged); the
attributes travel as `ce_*` headers. Binary mode keeps legacy bytes byte-exact and lets consumers
(the audit tap, the console) route on headers without decoding the value.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

Headers = list[tuple[str, bytes]]

SPECVERSION = "1.0"
_ATTRS = ("id", "source", "type", "time", "subject", "specversion")


@dataclass(frozen=True)
class CloudEvent:
    """The context attributes of one event; `data` is the Kafka value and lives outside."""

    type: str
    source: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    content_type: str = "application/json"
    extensions: dict[str, str] = field(default_factory=dict)

    def headers(self) -> Headers:
        return ce_headers(
            type=self.type,
            source=self.source,
            id=self.id,
            time=self.time,
            subject=self.subject,
            content_type=self.content_type,
            extensions=self.extensions,
        )

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes]]) -> CloudEvent | None:
        """The event described by `headers`, or None when they carry no CloudEvent (a raw legacy feed)."""
        d = header_dict(headers)
        if "ce_id" not in d or "ce_type" not in d:
            return None
        ext = {k[3:]: v for k, v in d.items() if k.startswith("ce_") and k[3:] not in _ATTRS}
        t = d.get("ce_time")
        return cls(
            type=d["ce_type"],
            source=d.get("ce_source", ""),
            id=d["ce_id"],
            time=datetime.fromisoformat(t.replace("Z", "+00:00")) if t else datetime.now(UTC),
            subject=d.get("ce_subject"),
            content_type=d.get("content-type", "application/octet-stream"),
            extensions=ext,
        )


_SPECVERSION_BYTES = SPECVERSION.encode()


def ce_headers(
    *,
    type: str,
    source: str,
    id: str,
    time: datetime,
    subject: str | None = None,
    content_type: str = "application/json",
    extensions: Mapping[str, str] | None = None,
) -> Headers:
    """The headers of a CloudEvent with these attributes (`CloudEvent.headers`), for a producer that
    writes one per record and needs no CloudEvent object on the way."""
    utc = time if time.tzinfo is UTC else time.astimezone(UTC)
    h: Headers = [
        ("ce_specversion", _SPECVERSION_BYTES),
        ("ce_id", id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", type.encode()),
        ("ce_time", utc.isoformat().replace("+00:00", "Z").encode()),
        ("content-type", content_type.encode()),
    ]
    if subject is not None:
        h.append(("ce_subject", subject.encode()))
    if extensions:
        h += [(f"ce_{k}", v.encode()) for k, v in extensions.items()]
    return h


def header_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers as text; the last value wins, undecodable bytes are replaced rather than raised."""
    return {k: (v or b"").decode("utf-8", "replace") for k, v in (headers or ())}


def get_header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    for k, v in reversed(list(headers or ())):
        if k == name:
            return (v or b"").decode("utf-8", "replace")
    return None


def replace_headers(headers: Sequence[tuple[str, bytes]], **updates: str) -> Headers:
    """`headers` with the named ones set (names use `_`; `traceparent` etc. as is)."""
    keep = [(k, v) for k, v in headers if k not in updates]
    return keep + [(k, v.encode()) for k, v in updates.items()]
