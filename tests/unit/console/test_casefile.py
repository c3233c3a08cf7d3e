"""A case page's trail rows and trace ids from the audit story."""

from __future__ import annotations

from console.domain.casefile import trace_ids, trail_rows

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
STORY = [
    {
        "seq": 1,
        "topic": "legacy.party.v1",
        "partition": 0,
        "offset": 5,
        "event_type": "raw.legacy.party.v1",
        "trace_id": None,
        "headers": {"traceparent": f"00-{TID}-00f067aa0ba902b7-01"},
    },
    {
        "seq": 2,
        "topic": "cases.v1",
        "partition": 1,
        "offset": 9,
        "event_type": "cn.onegrid.case.reported.v1",
        "trace_id": TID,
        "actor": None,
        "headers": {},
    },
    {
        "seq": 3,
        "topic": "intake.quarantine.v1",
        "partition": 0,
        "offset": 0,
        "event_type": "raw",
        "trace_id": "0" * 32,
        "headers": {"quarantine_reason": "crosswalk.unmapped_code"},
    },
    {
        "seq": 4,
        "topic": "case.lifecycle.v1",
        "partition": 0,
        "offset": 1,
        "event_type": "x",
        "trace_id": "ABCDEF0123456789ABCDEF0123456789",
        "headers": {"traceparent": "garbage"},
    },
]


def test_trace_ids_in_order_of_first_use_from_field_or_traceparent() -> None:
    assert trace_ids(STORY) == [TID, "abcdef0123456789abcdef0123456789"]
    assert trace_ids([{"headers": {"traceparent": "garbage"}}, {}]) == []


def test_trail_rows() -> None:
    rows = trail_rows(STORY)
    assert [r["position"] for r in rows] == [
        "legacy.party.v1/0/5",
        "cases.v1/1/9",
        "intake.quarantine.v1/0/0",
        "case.lifecycle.v1/0/1",
    ]
    assert rows[0]["trace_id"] == TID and rows[2]["trace_id"] is None
    assert rows[2]["reason"] == "crosswalk.unmapped_code"
