"""The canonical leaf layout v1 and the export record of an AuditEntry."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.domain.entry import AuditEntry, MalformedRecord
from audit.domain.merkle import leaf_hash

README = Path(__file__).parents[3] / "contracts" / "audit" / "README.md"

EXAMPLE = AuditEntry.record(
    seq=7,
    recorded_at=datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC),
    topic="cases.events",
    partition=2,
    offset=1042,
    event_id="0190f0a4-7c2e-7000-8000-000000000007",
    event_type="case.dispatched",
    key="case-321003009-000042",
    case_id="case-321003009-000042",
    actor=None,
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    payload='{"department":"城管"}'.encode(),
)


def _text(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(4, "big") + raw


def test_leaf_layout_is_exactly_the_documented_one() -> None:
    expected = (
        b"\x01"
        + (7).to_bytes(8, "big")
        + (1714550400123456).to_bytes(8, "big", signed=True)
        + _text("cases.events")
        + struct.pack(">I", 2)
        + (1042).to_bytes(8, "big")
        + _text("0190f0a4-7c2e-7000-8000-000000000007")
        + _text("case.dispatched")
        + b"\x01"
        + _text("case-321003009-000042")
        + b"\x01"
        + _text("case-321003009-000042")
        + b"\x00"
        + b"\x01"
        + _text("4bf92f3577b34da6a3ce929d0e0e4736")
        + hashlib.sha256('{"department":"城管"}'.encode()).digest()
    )
    assert EXAMPLE.leaf_bytes() == expected
    assert EXAMPLE.leaf_hash() == leaf_hash(expected)


def test_readme_worked_example_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    assert EXAMPLE.leaf_bytes().hex() in text.replace("\n", "").replace(" ", "")
    assert EXAMPLE.leaf_hash().hex() in text
    assert json.dumps(EXAMPLE.to_export(), ensure_ascii=False) in text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 8),
        ("recorded_at", EXAMPLE.recorded_at + timedelta(microseconds=1)),
        ("topic", "cases.events2"),
        ("partition", 3),
        ("offset", 1043),
        ("event_id", "x"),
        ("event_type", "case.closed"),
        ("key", None),
        ("case_id", ""),
        ("actor", ""),
        ("trace_id", None),
        ("payload_sha256", b"\x00" * 32),
    ],
)
def test_every_field_is_in_the_leaf(field: str, value: Any) -> None:
    assert dataclasses.replace(EXAMPLE, **{field: value}).leaf_hash() != EXAMPLE.leaf_hash()


def test_payload_is_committed_only_through_its_hash() -> None:
    archived = dataclasses.replace(EXAMPLE, payload=None)
    assert archived.leaf_hash() == EXAMPLE.leaf_hash()
    assert archived.payload_matches() is None
    assert EXAMPLE.payload_matches() is True
    assert dataclasses.replace(EXAMPLE, payload=b"{}").payload_matches() is False


def test_same_instant_in_another_zone_is_the_same_leaf() -> None:
    beijing = EXAMPLE.recorded_at.astimezone(timezone(timedelta(hours=8)))
    assert dataclasses.replace(EXAMPLE, recorded_at=beijing).leaf_bytes() == EXAMPLE.leaf_bytes()


text = st.text(max_size=12)


@given(
    st.integers(0, 2**63 - 1),
    st.datetimes(timezones=st.just(UTC)),
    text,
    st.integers(0, 2**31 - 1),
    st.integers(0, 2**63 - 1),
    st.one_of(st.none(), text),
    st.one_of(st.none(), st.binary(max_size=40)),
)
def test_export_round_trip(
    seq: int, at: datetime, topic: str, partition: int, offset: int, actor: str | None, payload: bytes | None
) -> None:
    entry = dataclasses.replace(
        EXAMPLE, seq=seq, recorded_at=at, topic=topic, partition=partition, offset=offset, actor=actor
    )
    entry = dataclasses.replace(entry, payload=payload)
    parsed = AuditEntry.from_export(json.loads(json.dumps(entry.to_export())))
    assert parsed.leaf_bytes() == entry.leaf_bytes()
    assert parsed.payload == payload


def test_archived_payload_may_be_absent_or_null() -> None:
    record = EXAMPLE.to_export()
    record["payload"] = None
    assert AuditEntry.from_export(record).payload is None
    del record["payload"]
    assert AuditEntry.from_export(record).payload is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "unknown fields"),
        ({"seq": True}, "seq must be a int"),
        ({"seq": -1}, "seq -1 is out of range"),
        ({"partition": "2"}, "partition must be a int"),
        ({"recorded_at": "2024-05-01T08:00:00"}, "no UTC offset"),
        ({"recorded_at": "yesterday"}, "bad value"),
        ({"payload": "not base64!"}, "bad value"),
        ({"payload_sha256": "abcd"}, "not 32 bytes"),
        ({"key": 5}, "key must be a string or null"),
        ({"topic": "\ud800"}, "not encodable"),
    ],
)
def test_malformed_records_are_named(change: dict[str, object], message: str) -> None:
    record = {**EXAMPLE.to_export(), **change}
    with pytest.raises(MalformedRecord, match=message):
        AuditEntry.from_export(record)


def test_missing_fields_are_named() -> None:
    record = EXAMPLE.to_export()
    del record["case_id"]
    with pytest.raises(MalformedRecord, match="missing fields \\['case_id'\\]"):
        AuditEntry.from_export(record)
    with pytest.raises(MalformedRecord, match="not a JSON object"):
        AuditEntry.from_export([1])
