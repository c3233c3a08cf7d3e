"""What an Open311 request's public status says, derived from its case's lifecycle.

GeoReport v2 knows two statuses, `open` and `closed`, with free-text `status_notes`. A request is
`closed` once its case is in a state where nothing more will be done for the resident: closed (结案),
cancelled, rejected (不予立案) or merged into another case about the same problem (the Open311 way of
saying "duplicate"); every other state, including `reopened`, is `open`. The notes name the state in
Chinese and English and never carry personal data (the lifecycle feed carries none).

`decode_lifecycle` reads one `case.lifecycle.v1` value (contracts/schemas/lifecycle-event.v1.json)
tolerantly: it needs only case_id, seq, to_state, at, reason, deadlines.resolve_by and
dimensions.department, ignores the rest, and takes a state it does not know as "open". It raises
`Rejected("lifecycle.invalid")` for a value that is not such an event.

`decode_case_link` reads one `cases.v1` CaseEvent the same way and says which case an Open311 request
went to: its own (`case.reported`) or another network's or resident's case about the same problem
nearby (`case.linked`), whose lifecycle the request then follows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import msgspec

from intake.domain.errors import Rejected
from onegrid.topics import CASE_LIFECYCLE, CASES

__all__ = [
    "CLOSING_STATES",
    "CaseLink",
    "StatusChange",
    "decode_case_link",
    "decode_lifecycle",
    "latest_per_case",
    "status_of",
]

Status = Literal["open", "closed"]

CLOSING_STATES: Final = frozenset({"closed", "cancelled", "rejected", "merged"})
_NOTES: Final = {
    "reported": "已受理 Received.",
    "registered": "已立案 Registered as a case.",
    "rejected": "不予立案 Not accepted as a case.",
    "dispatched": "已派遣 Dispatched to the responsible department.",
    "acknowledged": "已签收 The responsible department has taken it on.",
    "in_progress": "处置中 Being handled.",
    "resolved": "已处置，待核查 Handled; awaiting verification.",
    "verified": "已核查 Verified on site.",
    "returned": "退单，重新派遣中 Returned by a department; being reassigned.",
    "escalated": "已上报 Escalated to the next tier.",
    "suspended": "暂缓处置 On hold.",
    "closed": "已结案 Closed after verification.",
    "reopened": "已重新打开 Reopened.",
    "cancelled": "已撤销 Cancelled.",
    "merged": "重复诉求，已并入同一问题的案件 Duplicate: merged into another case about the same problem.",
}
_STATE = re.compile(r"[a-z][a-z_]{0,39}")


class _Deadlines(msgspec.Struct):
    resolve_by: datetime | None = None


class _Dimensions(msgspec.Struct):
    department: str | None = None


class _Lifecycle(msgspec.Struct):
    case_id: uuid.UUID
    seq: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    to_state: str
    at: datetime
    reason: str | None = None
    deadlines: _Deadlines | None = None
    dimensions: _Dimensions | None = None


_DECODER: Final = msgspec.json.Decoder(_Lifecycle)


class _Source(msgspec.Struct):
    network: str
    source_id: str


class _CaseEvent(msgspec.Struct):
    event_type: str
    case_id: uuid.UUID
    source: _Source


_CASE_DECODER: Final = msgspec.json.Decoder(_CaseEvent)
_CASE_OPENING: Final = frozenset({"case.reported", "case.linked"})


@dataclass(frozen=True, slots=True)
class CaseLink:
    """The Open311 request `service_request_id` belongs to case `case_id`."""

    service_request_id: uuid.UUID
    case_id: uuid.UUID


def decode_case_link(value: bytes | None) -> CaseLink | None:
    """The link a `cases.v1` event states for an Open311 request, or None when it states none (another
    network, another event type). `Rejected("cases.invalid")` for a value that is not a CaseEvent."""
    if value is None:
        raise Rejected("cases.invalid", f"null value: {CASES} has no tombstones")
    try:
        event = _CASE_DECODER.decode(value)
    except msgspec.DecodeError as error:
        raise Rejected("cases.invalid", str(error)[:500]) from None
    if event.source.network != "open311" or event.event_type not in _CASE_OPENING:
        return None
    try:
        request_id = uuid.UUID(event.source.source_id)
    except ValueError:
        return None  # not an id the Open311 API assigns: no request of ours
    return CaseLink(service_request_id=request_id, case_id=event.case_id)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The new public status of the request whose case is `case_id`, as of lifecycle event `seq`."""

    case_id: uuid.UUID
    seq: int
    status: Status
    status_notes: str
    updated: datetime  # UTC
    expected: datetime | None  # the resolve-by deadline in force, UTC
    agency: str | None  # the department holding the case (its code)


def status_of(to_state: str, reason: str | None = None) -> tuple[Status, str]:
    """The Open311 status and notes for a case in `to_state`; `reason` (a reason code) is appended."""
    status: Status = "closed" if to_state in CLOSING_STATES else "open"
    notes = _NOTES.get(to_state, f"处理中 In progress ({to_state}).")
    if reason:
        notes = f"{notes} [{reason}]"
    return status, notes


def decode_lifecycle(value: bytes | None) -> StatusChange:
    """The status change one lifecycle event means; `Rejected("lifecycle.invalid")` if it is not one."""
    if value is None:
        raise Rejected("lifecycle.invalid", f"null value: {CASE_LIFECYCLE} has no tombstones")
    try:
        event = _DECODER.decode(value)
    except msgspec.DecodeError as error:
        raise Rejected("lifecycle.invalid", str(error)[:500]) from None
    if not _STATE.fullmatch(event.to_state):  # checked here: msgspec patterns are searched, not matched
        raise Rejected("lifecycle.invalid", f"to_state {event.to_state[:40]!r} is not a state name")
    times = [event.at] + (
        [event.deadlines.resolve_by] if event.deadlines and event.deadlines.resolve_by else []
    )
    if any(t.tzinfo is None for t in times):
        raise Rejected("lifecycle.invalid", "`at` and deadlines must be UTC instants with an offset")
    reason = event.reason[:200] if event.reason else None
    status, notes = status_of(event.to_state, reason)
    return StatusChange(
        case_id=event.case_id,
        seq=event.seq,
        status=status,
        status_notes=notes,
        updated=event.at.astimezone(UTC),
        expected=event.deadlines.resolve_by.astimezone(UTC)
        if event.deadlines and event.deadlines.resolve_by
        else None,
        agency=event.dimensions.department if event.dimensions else None,
    )


def latest_per_case(changes: Iterable[StatusChange]) -> list[StatusChange]:
    """The change of highest seq for each case (a batch may hold several events of one case)."""
    latest: dict[uuid.UUID, StatusChange] = {}
    for change in changes:
        held = latest.get(change.case_id)
        if held is None or change.seq > held.seq:
            latest[change.case_id] = change
    return list(latest.values())
