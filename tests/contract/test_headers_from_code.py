"""The headers the shared library writes are the headers the contract describes.

`onegrid.envelope.CloudEvent.headers()` must satisfy cloudevent-headers.v1.json, and
`onegrid.kafka.records.dead_letter_record` must satisfy the DLQ and quarantine header schemas while
keeping the original value, key and headers byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator

from onegrid.envelope import CloudEvent
from onegrid.kafka.records import DeadLetter, dead_letter_record

Validators = Callable[[str], Draft202012Validator]
HJ212 = b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C81\r\n"


@dataclass(frozen=True)
class _Consumed:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


def _as_text(headers: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    return {k: v.decode() for k, v in headers}


def test_cloudevent_headers_satisfy_the_contract(validator_for: Validators) -> None:
    event = CloudEvent(
        type="cn.onegrid.case.reported.v1",
        source="/onegrid/intake",
        id="0b9f3c1e-6d2a-4c8e-9a51-3f0e2d7b8c41",
        time=datetime(2026, 3, 1, 2, 15, 31, 204000, tzinfo=UTC),
        subject="5d1c7a92-3e4b-4f60-8b2d-9c7e1a4f6b30",
    )
    headers = _as_text(event.headers())
    headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    errors = [e.message for e in validator_for("cloudevent-headers.v1.json").iter_errors(headers)]
    assert errors == []


@pytest.mark.parametrize(
    ("kind", "schema"), [("dlq", "dead-letter-headers.v1.json"), ("quarantine", "quarantine-headers.v1.json")]
)
def test_dead_letter_records_satisfy_the_contract(kind: str, schema: str, validator_for: Validators) -> None:
    original = (
        ("ce_id", b"321003A0000001-1"),
        ("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"),
    )
    consumed = _Consumed("legacy.env.hj212.v1", 4, 1932207, b"321003A0000001", HJ212, original, 1772325000125)
    letter = DeadLetter(
        consumed, "hj212.crc_mismatch", "CRC 1C81 given, 1C80 computed", stage="parse", kind=kind
    )
    out = dead_letter_record(letter, topic=f"intake.{kind}.v1", service="intake", prefix=kind)
    assert (out.value, out.key) == (HJ212, b"321003A0000001"), "the original bytes, unchanged"
    assert all(h in list(out.headers) for h in original), "the original headers, kept"
    errors = [e.message for e in validator_for(schema).iter_errors(_as_text(out.headers))]
    assert errors == []


def test_the_bridges_headers_satisfy_the_contract(validator_for: Validators) -> None:
    from bridges.domain.records import legacy_headers

    for feed in ("hj212", "cap", "safety", "party"):
        headers = legacy_headers(
            feed=feed,
            topic=f"legacy.{feed}.v1",
            bridge=f"{feed}-x",
            sender="MN-1",
            raw=HJ212,
            peer="10.0.0.1:5000",
        )
        as_text = {k: v.decode() for k, v in headers}
        validator_for("cloudevent-headers.v1.json").validate(as_text)
        assert as_text["ce_bridge"] == f"{feed}-x"
        # A resent record carries the same id (same sender, same bytes).
        again = legacy_headers(
            feed=feed, topic=f"legacy.{feed}.v1", bridge=f"{feed}-x", sender="MN-1", raw=HJ212
        )
        assert dict(again)["ce_id"] == dict(headers)["ce_id"]
