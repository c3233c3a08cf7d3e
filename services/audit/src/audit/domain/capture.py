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
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from audit.domain.entry import AuditEntry, headers_digest, leaf_bytes
from audit.domain.merkle import leaf_hash
from onegrid.topics import case_facts_pattern, legacy_feeds_pattern, set_aside_pattern

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_DEAD_LETTER_PREFIXES = ("dlq", "quarantine")
_ROLES_KEPT = 4096  # topics whose roles are remembered (the audited topics are far fewer)
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
    _roles: dict[str, tuple[bool, bool, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def is_opaque(self, topic: str) -> bool:
        return re.fullmatch(self.opaque, topic) is not None

    def names_cases(self, topic: str) -> bool:
        return re.fullmatch(self.cases, topic) is not None

    def carries_dead_letters(self, topic: str) -> bool:
        return re.fullmatch(self.dead_letters, topic) is not None

    def roles(self, topic: str) -> tuple[bool, bool, bool]:
        """(names cases, opaque, carries dead letters): the expressions run once per topic."""
        found = self._roles.get(topic)
        if found is None:
            owner = self.names_cases(topic)
            found = (owner, self.is_opaque(topic) and not owner, self.carries_dead_letters(topic))
            if len(self._roles) < _ROLES_KEPT:
                self._roles[topic] = found
        return found


DEFAULT_TRUST = TopicTrust()


class _Body(msgspec.Struct):
    """The few fields the tap reads from a JSON body; msgspec skips the rest without building it."""

    case_id: Any = None
    actor: Any = None
    merge: Any = None
    source: Any = None
    linked_sources: Any = None


_JSON = msgspec.json.Decoder(_Body)


class Capture(msgspec.Struct, frozen=True, kw_only=True):
    """The audit facts of one record, with the digests its leaf commits to (layout v2: what the
    headers say is committed to as well). A struct, not a dataclass: the tap builds one per record."""

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
    payload_sha256: bytes
    headers_sha256: bytes
    related_cases: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()
    origin: str | None = None

    def leaf_hash(self, *, seq: int, recorded_at_us: int) -> bytes:
        """The leaf hash of ``entry_of(self, seq=seq, recorded_at=<that instant>)``, without building
        and checking the entry: the writer's path, one per record."""
        return leaf_hash(
            leaf_bytes(
                seq,
                recorded_at_us,
                self.topic,
                self.partition,
                self.offset,
                self.event_id,
                self.event_type,
                (self.key, self.case_id, self.actor, self.trace_id),
                self.payload_sha256,
                self.headers_sha256,
            )
        )


def entry_of(cap: Capture, *, seq: int, recorded_at: datetime) -> AuditEntry:
    """The log entry for a captured record once it has its place (`seq`) and recording time."""
    return AuditEntry(
        seq=seq,
        recorded_at=recorded_at,
        topic=cap.topic,
        partition=cap.partition,
        offset=cap.offset,
        event_id=cap.event_id,
        event_type=cap.event_type,
        key=cap.key,
        case_id=cap.case_id,
        actor=cap.actor,
        trace_id=cap.trace_id,
        payload_sha256=cap.payload_sha256,
        payload=cap.payload,
        headers_sha256=cap.headers_sha256,
        headers=dict(cap.headers),
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
    h = _header_texts(headers) if headers else {}
    owner, opaque, dead_letters = trust.roles(topic)
    body = _json_object(value, h.get("content-type")) if owner else None
    origin = _origin(h) if dead_letters else None
    event_id = h.get("ce_id") or (
        f"{origin[0]}:{origin[1]}" if origin else f"kafka:{position(topic, partition, offset)}"
    )
    if value is None:
        event_type = "kafka.tombstone"
    else:
        event_type = (None if opaque else h.get("ce_type")) or f"raw.{topic}"
    case_id = (h.get("ce_subject") or (_text(body.case_id) if body else None)) if owner else None
    related = _related_cases(body, case_id) if body else ()
    refs = _source_positions(body) if body else ()
    if origin:
        refs = (*refs, origin[1])
    payload = value or b""
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
        trace_id=_trace_id(h["traceparent"]) if "traceparent" in h else None,
        payload=payload,
        headers=h,
        payload_sha256=hashlib.sha256(payload).digest(),
        headers_sha256=headers_digest(h),
        related_cases=related,
        refs=refs,
        origin=origin[1] if origin else None,
    )


def _json_object(value: bytes | None, content_type: str | None) -> _Body | None:
    # Only bodies that say (or look like) JSON objects are parsed: legacy packets stay opaque bytes.
    if not value or not (value[:1] == b"{" or (content_type or "").startswith("application/json")):
        return None
    try:
        return _JSON.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
        return None


def _header_texts(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str]:
    """The headers as text, the last value of a repeated name kept. Plain ASCII (nearly every header)
    is taken as it is; anything else is cleaned (``_clean``: invalid UTF-8 and NUL as U+FFFD)."""
    h = {}
    for k, v in headers:
        name = k if k.isascii() and "\x00" not in k else _clean(k)
        if not v:
            h[name] = ""
        elif v.isascii() and b"\x00" not in v:
            h[name] = v.decode("ascii")
        else:
            h[name] = _clean(v.decode("utf-8", "replace"))
    return h


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


def _actor(body: _Body | None, h: dict[str, str]) -> str | None:
    actor = body.actor if body else None
    if isinstance(actor, dict) and _text(actor.get("id")):
        kind = _text(actor.get("kind"))
        return f"{kind}:{_text(actor['id'])}" if kind else _text(actor["id"])
    if isinstance(actor, str):
        return _text(actor)
    for prefix in _DEAD_LETTER_PREFIXES:
        if service := h.get(f"{prefix}_service"):
            return f"service:{service}"
    return h.get("ce_source") or None


def _trace_id(traceparent: str) -> str | None:
    match = _TRACEPARENT.match(traceparent)
    return match.group(1) if match and match.group(1) != "0" * 32 else None


def _related_cases(body: _Body, case_id: str | None) -> tuple[str, ...]:
    merge = body.merge
    found = []
    if isinstance(merge, dict) and (matched := _text(merge.get("matched_case_id"))):
        found.append(matched)
    return tuple(c for c in dict.fromkeys(found) if c != case_id)


def _source_positions(body: _Body) -> tuple[str, ...]:
    sources: list[object] = [body.source]
    linked = body.linked_sources
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
