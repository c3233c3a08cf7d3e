"""What dispatch reads, decoded and validated in one pass (msgspec): the case events of `cases.v1`
(contracts/schemas/case-event.v1.json) and the departments' feedback (feedback.v1.json).

Dispatch keeps only the case fields it routes on and forwards to departments, with the case event's
own types (`onegrid_contracts.case_event`) where it keeps a part whole; unknown fields are ignored, so
a later optional field in the contract does not break it. Reporter data is never decoded:
it must not reach departments or the lifecycle feed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

import msgspec

from onegrid_contracts.case_event import (
    Category,
    Division,
    EventType,
    Network,
    NonEmpty,
    Severity,
    Title,
    UtcTime,
)

DepartmentCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{1,40}$")]
Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class _In(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=False):
    pass


class Source(_In, frozen=True):
    network: Network
    source_id: NonEmpty


class Merge(_In, frozen=True):
    reason: str
    matched_case_id: uuid.UUID


class Attributes(_In, frozen=True):
    """The one source attribute dispatch reads: the grid worker who filed a patrol report (a staff
    id, not personal data), so the case is registered on that worker's report."""

    worker_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class CaseFacts(_In, frozen=True):
    """One case event as dispatch needs it. `location` is kept as the contract's JSON object."""

    event_id: uuid.UUID
    event_type: EventType
    case_id: uuid.UUID
    source: Source
    merge: Merge | None
    category: Category
    severity: Severity
    location: dict[str, Any]
    division: Division
    title: Title
    description: str
    attributes: Attributes = msgspec.field(default_factory=Attributes)

    @property
    def network(self) -> str:
        return self.source.network

    def reporter(self) -> Actor | None:
        """The grid worker whose patrol report opened the case (巡查上报), counted for that worker."""
        if self.source.network == "patrol" and self.attributes.worker_id:
            return Actor(kind="staff", id=self.attributes.worker_id, display="")
        return None


class Actor(_In, frozen=True):
    # Bounded: an actor is copied into every lifecycle event it causes.
    kind: Literal["system", "staff", "department", "citizen"]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    display: Annotated[str, msgspec.Meta(max_length=100)]


class Evidence(_In, frozen=True):
    ref: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    media_type: Annotated[str, msgspec.Meta(min_length=3, max_length=100)]
    sha256: Sha256
    taken_at: UtcTime | None


ReturnCode = Literal[
    "return.not_our_duty",
    "return.outside_jurisdiction",
    "return.wrong_location",
    "return.insufficient_information",
    "return.duplicate",
    "return.needs_enforcement",
    "return.other",
]


class ReturnReason(_In, frozen=True):
    code: ReturnCode
    suggested_department: DepartmentCode | None
    detail: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Feedback(_In, frozen=True):
    """A department's answer to an order; `feedback_id` makes a repeat a no-op."""

    feedback_id: uuid.UUID
    order_id: uuid.UUID
    case_id: uuid.UUID
    department: DepartmentCode
    kind: Literal["acknowledge", "progress", "resolve", "return"]
    at: UtcTime
    actor: Actor
    note: Annotated[str, msgspec.Meta(max_length=4000)] | None
    evidence: Annotated[tuple[Evidence, ...], msgspec.Meta(max_length=50)]
    return_reason: ReturnReason | None

    def __post_init__(self) -> None:
        # The schema's conditionals, which a Struct cannot express by types alone.
        if self.at.utcoffset() != timedelta(0):
            raise ValueError("at must be in UTC")
        if self.kind == "resolve" and not self.evidence:
            raise ValueError("resolve needs at least one evidence reference")
        if self.kind == "return" and self.return_reason is None:
            raise ValueError("return needs a return_reason")
        if self.kind != "return" and self.return_reason is not None:
            raise ValueError("return_reason is only allowed on kind=return")


_case_decoder = msgspec.json.Decoder(CaseFacts)
_feedback_decoder = msgspec.json.Decoder(Feedback)


def decode_case(data: bytes) -> CaseFacts:
    """Raises msgspec.ValidationError / DecodeError naming the offending field."""
    return _case_decoder.decode(data)


def decode_feedback(data: bytes) -> Feedback:
    """Raises msgspec.ValidationError / DecodeError naming the offending field or rule."""
    return _feedback_decoder.decode(data)
