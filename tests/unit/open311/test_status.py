"""The Open311 status derived from case lifecycle events: decoding, the open/closed rule, latest per case."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from intake.domain.errors import Rejected
from open311.domain.status import (
    CLOSING_STATES,
    decode_case_link,
    decode_lifecycle,
    latest_per_case,
    status_of,
)

SCHEMA = Path(__file__).resolve().parents[3] / "contracts" / "schemas" / "lifecycle-event.v1.json"
EXAMPLES: list[dict[str, Any]] = json.loads(SCHEMA.read_text(encoding="utf-8"))["examples"]
STATES: list[str] = json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"]["to_state"]["enum"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e['to_state']}-{e['seq']}")
def test_every_contract_example_decodes(example: dict[str, Any]) -> None:
    change = decode_lifecycle(json.dumps(example).encode())
    assert change.case_id == uuid.UUID(example["case_id"]) and change.seq == example["seq"]
    assert change.updated.tzinfo is not None and change.updated.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert change.agency == example["dimensions"]["department"]
    resolve_by = example["deadlines"]["resolve_by"]
    assert change.expected == (None if resolve_by is None else datetime.fromisoformat(resolve_by))


@pytest.mark.parametrize("state", STATES)
def test_every_state_of_the_contract_has_notes_and_a_status(state: str) -> None:
    status, notes = status_of(state)
    assert status == ("closed" if state in {"closed", "cancelled", "rejected", "merged"} else "open")
    assert "In progress (" not in notes  # a known state has its own words


def test_reopened_is_open_and_unknown_states_are_open_with_the_state_named() -> None:
    assert status_of("reopened")[0] == "open"
    assert status_of("teleported") == ("open", "处理中 In progress (teleported).")
    assert status_of("closed", "verify.passed") == (
        "closed",
        "已结案 Closed after verification. [verify.passed]",
    )
    assert {"closed", "cancelled", "rejected", "merged"} == CLOSING_STATES


def _event(**changes: object) -> bytes:
    return json.dumps({**EXAMPLES[0], **changes}).encode()


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"[]",
        b"{not json",
        _event(case_id="not-a-uuid"),
        _event(seq=0),
        _event(seq="3"),
        _event(to_state="Closed!"),
        _event(at="2026-03-01T02:31:00"),  # no offset
        _event(deadlines={"acknowledge_by": None, "resolve_by": "2026-03-02T02:20:00"}),
    ],
)
def test_what_is_not_a_lifecycle_event_is_rejected(value: bytes | None) -> None:
    with pytest.raises(Rejected) as caught:
        decode_lifecycle(value)
    assert caught.value.reason == "lifecycle.invalid"


def test_latest_per_case_keeps_the_highest_seq_whatever_the_order() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    changes = [
        decode_lifecycle(_event(case_id=a, seq=2, to_state="dispatched")),
        decode_lifecycle(_event(case_id=a, seq=5, to_state="closed")),
        decode_lifecycle(_event(case_id=b, seq=1, to_state="registered")),
        decode_lifecycle(_event(case_id=a, seq=4, to_state="resolved")),
    ]
    latest = {str(c.case_id): (c.seq, c.status) for c in latest_per_case(changes)}
    assert latest == {a: (5, "closed"), b: (1, "open")}
    assert decode_lifecycle(_event(at="2026-03-01T10:31:00+08:00")).updated == datetime(
        2026, 3, 1, 2, 31, tzinfo=UTC
    )


def test_a_state_name_with_a_trailing_newline_is_not_a_state() -> None:
    with pytest.raises(Rejected):
        decode_lifecycle(_event(to_state="closed\n"))


def _case_event(network: str, source_id: str, event_type: str = "case.linked") -> bytes:
    case_id = "5d1c7a92-3e4b-4f60-8b2d-9c7e1a4f6b30"
    return json.dumps(
        {"event_type": event_type, "case_id": case_id, "source": {"network": network, "source_id": source_id}}
    ).encode()


def test_case_events_say_which_case_an_open311_request_went_to() -> None:
    rid = str(uuid.uuid4())
    link = decode_case_link(_case_event("open311", rid))
    assert link is not None and str(link.service_request_id) == rid
    assert str(link.case_id) == "5d1c7a92-3e4b-4f60-8b2d-9c7e1a4f6b30"
    assert decode_case_link(_case_event("open311", rid, "case.reported")) is not None
    assert decode_case_link(_case_event("open311", rid, "case.amended")) is None
    assert decode_case_link(_case_event("party", rid)) is None
    assert decode_case_link(_case_event("open311", "not-a-uuid")) is None
    for bad in (None, b"{", b'{"event_type": "case.linked"}'):
        with pytest.raises(Rejected) as caught:
            decode_case_link(bad)
        assert caught.value.reason == "cases.invalid"
