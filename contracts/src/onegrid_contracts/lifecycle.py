"""The lifecycle events of `case.lifecycle.v1` as read (contracts/schemas/lifecycle-event.v1.json),
declared here once, decoded and validated in one pass (evaluation's metrics and lake fold them).

Decoding is tolerant as the contracts ask of consumers: unknown fields are ignored, and states and
actions are plain strings, so an enum value added by a minor revision is simply one that no metric
counts. What a metric needs (ids, seq, times, dimensions) is required and checked.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
Seq = Annotated[int, msgspec.Meta(ge=1)]


class _In(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    pass


class Actor(_In, frozen=True):
    kind: str
    id: str
    display: str


class Deadlines(_In, frozen=True):
    acknowledge_by: UtcTime | None
    resolve_by: UtcTime | None


class Dimensions(_In, frozen=True):
    network: str
    category_code: str
    severity_level: int
    district: str | None
    street: str | None
    community: str | None
    grid: str | None
    department: str | None
    hops: int
    tier: str | None = None


class Versions(_In, frozen=True):
    rule_version: str | None
    taxonomy_version: str | None
    grid_version: str | None


class LifecycleEvent(_In, frozen=True):
    """One state transition of one case; `(case_id, seq)` identifies it, `event_id` too."""

    event_id: uuid.UUID
    case_id: uuid.UUID
    seq: Seq
    from_state: str | None
    to_state: str
    action: str
    actor: Actor
    reason: str | None
    at: UtcTime
    deadlines: Deadlines
    dimensions: Dimensions
    versions: Versions
    deadline_id: uuid.UUID | None = None
    on_time: bool | None = None


_decoder = msgspec.json.Decoder(LifecycleEvent)


def decode_lifecycle(data: bytes) -> LifecycleEvent:
    """Raises msgspec.ValidationError / DecodeError naming the offending field."""
    return _decoder.decode(data)
