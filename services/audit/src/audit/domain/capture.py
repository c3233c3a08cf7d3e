"""What the wire tap reads off one Kafka record: the audit facts about it, before it has a place in the log.

``describe`` is pure and total: any bytes, any headers, give a ``Capture`` (never an exception), because
the tap must record hostile and malformed records too (they are evidence). Where the facts come from:

- ``event_id``: the CloudEvents ``ce_id``; for a dead letter or quarantined record without one, the
  position of the original (``dlq:<topic>/<partition>/<offset>``); else the record's own position.
- ``event_type``: ``ce_type``; ``kafka.tombstone`` for a null value; ``raw.<topic>`` for a raw feed.
- ``source``: ``ce_source``. ``case_id``: ``ce_subject``, else the JSON body's ``case_id``.
- ``actor``: the JSON body's ``actor`` (``<kind>:<id>``), else the service that dead-lettered the
  record, else ``ce_source``.
- ``trace_id``: the trace id of the W3C ``traceparent``.
- ``related_cases``: other cases the event names (a merge's ``matched_case_id``).
- ``refs``: positions the event refers to (a case event's source records, a dead letter's original),
  as ``<topic>/<partition>/<offset>``; ``origin``: a dead letter's or quarantined record's original.

Trust (``TopicTrust``): anyone who can produce to a ``legacy.*`` topic can write any header and body.
So a record says which case it is about, what kind of case event it is, which cases it relates to,
which source records it was built from and who acted only on the topics that own those facts
(those the topic catalogue, ``onegrid.topics``, marks ``case_facts``: the case events, the lifecycle,
the feedback and the orders); a dead letter names its original only on a service's dead-letter or
quarantine topic. Legacy records are opaque: ``raw.<topic>``,
no case, no actor (their declared ``ce_source`` is kept apart as ``source``); such a record joins a
case's story only because an owning record refers to it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from audit.domain.entry import AuditEntry
from onegrid.topics import case_facts_pattern, legacy_feeds_pattern, set_aside_pattern

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_DEAD_LETTER_PREFIXES = ("dlq", "quarantine")
# From the topic catalogue: the topics marked as carrying case facts, the services' dead-letter and
# quarantine topics, the legacy feeds.
CASE_TOPICS = case_facts_pattern()
DEAD_LETTER_TOPICS = set_aside_pattern()
OPAQUE_TOPICS = legacy_feeds_pattern()


@dataclass(frozen=True, slots=True)
class TopicTrust:
    """Which topics may name cases (``cases``), which carry dead letters that name their original
    (``dead_letters``), and which are outsiders' whose headers say nothing (``opaque``): regular
    expressions over topic names."""

    cases: str = CASE_TOPICS
    dead_letters: str = DEAD_LETTER_TOPICS
    opaque: str = OPAQUE_TOPICS

    def is_opaque(self, topic: str) -> bool:
        return re.fullmatch(self.opaque, topic) is not None

    def names_cases(self, topic: str) -> bool:
        return re.fullmatch(self.cases, topic) is not None

    def carries_dead_letters(self, topic: str) -> bool:
        return re.fullmatch(self.dead_letters, topic) is not None


DEFAULT_TRUST = TopicTrust()


class _Body(msgspec.Struct):
    """The few fields the tap reads from a JSON body; msgspec skips the rest without building it."""

    case_id: Any = None
    actor: Any = None
    merge: Any = None
    source: Any = None
    linked_sources: Any = None


_JSON = msgspec.json.Decoder(_Body)


@dataclass(frozen=True, slots=True)
class Capture:
    """The audit facts of one record; ``position`` is ``(topic, partition, offset)``."""

    topic: str
    partition: int
    offset: int
    event_id: str
    event_type: str
    source: str | None
    key: str | None
    case_id: str | None
    actor: str | None
    trace_id: str | None
    payload: bytes
    headers: dict[str, str]
    related_cases: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    origin: str | None = None


def entry_of(cap: Capture, *, seq: int, recorded_at: datetime) -> AuditEntry:
    """The log entry for a captured record once it has its place (`seq`) and recording time."""
    return AuditEntry.record(
        seq=seq,
        recorded_at=recorded_at,
        topic=cap.topic,
        partition=cap.partition,
        offset=cap.offset,
        event_id=cap.event_id,
        event_type=cap.event_type,
        payload=cap.payload,
        key=cap.key,
        case_id=cap.case_id,
        actor=cap.actor,
        trace_id=cap.trace_id,
        headers=cap.headers,  # leaf layout v2: what the headers say is committed to as well
    )


def position(topic: str, partition: int, offset: int) -> str:
    """The text form of a Kafka position used in ``refs`` and ``origin``."""
    return f"{topic}/{partition}/{offset}"


def key_text(key: bytes | None) -> str | None:
    """A Kafka key as text: UTF-8 when it is, else ``b64:`` and its base64 (keys are bytes)."""
    if key is None:
        return None
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    # NUL cannot be stored as PostgreSQL text: such keys are kept as base64 too.
    return text if "\x00" not in text else "b64:" + base64.b64encode(key).decode("ascii")


def describe(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
    trust: TopicTrust = DEFAULT_TRUST,
) -> Capture:
    """The audit facts of one record (see the module docstring); never raises on content."""
    h = {_clean(k): _clean((v or b"").decode("utf-8", "replace")) for k, v in (headers or ())}
    owner = trust.names_cases(topic)
    opaque = trust.is_opaque(topic) and not owner
    body = _json_object(value, h.get("content-type")) if owner else {}
    origin = _origin(h) if trust.carries_dead_letters(topic) else None
    event_id = h.get("ce_id") or (
        f"{origin[0]}:{origin[1]}" if origin else f"kafka:{position(topic, partition, offset)}"
    )
    if value is None:
        event_type = "kafka.tombstone"
    else:
        event_type = (None if opaque else h.get("ce_type")) or f"raw.{topic}"
    case_id = (h.get("ce_subject") or _text(body.get("case_id"))) if owner else None
    related = _related_cases(body, case_id)
    refs = _source_positions(body)
    if origin:
        refs = (*refs, origin[1])
    return Capture(
        topic=topic,
        partition=partition,
        offset=offset,
        event_id=event_id,
        event_type=event_type,
        source=h.get("ce_source") or None,
        key=key_text(key),
        case_id=case_id,
        actor=None if opaque else _actor(body, h),
        trace_id=_trace_id(h.get("traceparent")),
        payload=value or b"",
        headers=h,
        related_cases=related,
        refs=refs,
        origin=origin[1] if origin else None,
    )


def _json_object(value: bytes | None, content_type: str | None) -> dict[str, object]:
    # Only bodies that say (or look like) JSON objects are parsed: legacy packets stay opaque bytes.
    if not value or not (value[:1] == b"{" or (content_type or "").startswith("application/json")):
        return {}
    try:
        body = _JSON.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
        return {}
    return {f: getattr(body, f) for f in body.__struct_fields__}


def _clean(text: str) -> str:
    """PostgreSQL text and jsonb cannot hold NUL, nor UTF-8 a lone surrogate (JSON can say both): "?" or
    U+FFFD marks where one was, as for bad UTF-8."""
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _text(value: object) -> str | None:
    return _clean(value) if isinstance(value, str) and value else None


def _origin(h: dict[str, str]) -> tuple[str, str] | None:
    for prefix in _DEAD_LETTER_PREFIXES:
        topic, part, off = (h.get(f"{prefix}_{f}") for f in ("topic", "partition", "offset"))
        if topic and part and off and part.isdigit() and off.isdigit():
            return prefix, position(topic, int(part), int(off))
    return None


def _actor(body: dict[str, object], h: dict[str, str]) -> str | None:
    actor = body.get("actor")
    if isinstance(actor, dict) and _text(actor.get("id")):
        kind = _text(actor.get("kind"))
        return f"{kind}:{_text(actor['id'])}" if kind else _text(actor["id"])
    if isinstance(actor, str):
        return _text(actor)
    for prefix in _DEAD_LETTER_PREFIXES:
        if service := h.get(f"{prefix}_service"):
            return f"service:{service}"
    return h.get("ce_source") or None


def _trace_id(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match and match.group(1) != "0" * 32 else None


def _related_cases(body: dict[str, object], case_id: str | None) -> tuple[str, ...]:
    merge = body.get("merge")
    found = []
    if isinstance(merge, dict) and (matched := _text(merge.get("matched_case_id"))):
        found.append(matched)
    return tuple(c for c in dict.fromkeys(found) if c != case_id)


def _source_positions(body: dict[str, object]) -> tuple[str, ...]:
    sources: list[object] = [body.get("source")]
    linked = body.get("linked_sources")
    if isinstance(linked, list):
        sources += linked
    found = []
    for src in sources:
        if not isinstance(src, dict):
            continue
        topic, part, off = src.get("topic"), src.get("partition"), src.get("offset")
        if isinstance(topic, str) and type(part) is int and type(off) is int:
            found.append(_clean(position(topic, part, off)))
    return tuple(dict.fromkeys(found))
