"""What the wire tap reads off a record: ids, types, case, actor, trace, merges and source positions,
and that no content whatsoever makes it fail (hostile records are evidence too)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from audit.domain.capture import describe, entry_of, key_text

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def headers(**kv: str) -> list[tuple[str, bytes]]:
    return [(k.replace("content_type", "content-type"), v.encode()) for k, v in kv.items()]


def test_a_case_event_names_its_case_trace_merge_and_source_records() -> None:
    body = {
        "event_id": "e1",
        "case_id": "case-A",
        "merge": {"matched_case_id": "case-B", "reason": "merge.spatiotemporal"},
        "source": {"topic": "legacy.emergency.cap.v1", "partition": 0, "offset": 771},
        "linked_sources": [{"topic": "legacy.party.v1", "partition": 1, "offset": 48213}, {"topic": None}],
        "title": "文昌西路下穿通道积水",
    }
    cap = describe(
        topic="cases.v1",
        partition=2,
        offset=9,
        key=b"case-A",
        value=json.dumps(body, ensure_ascii=False).encode(),
        headers=headers(
            ce_id="e1",
            ce_type="cn.onegrid.case.linked.v1",
            ce_source="/onegrid/intake",
            ce_subject="case-A",
            content_type="application/json",
            traceparent=f"00-{TRACE}-00f067aa0ba902b7-01",
        ),
    )
    assert (cap.event_id, cap.event_type, cap.source, cap.key) == (
        "e1",
        "cn.onegrid.case.linked.v1",
        "/onegrid/intake",
        "case-A",
    )
    assert (cap.case_id, cap.trace_id, cap.actor) == ("case-A", TRACE, "/onegrid/intake")
    assert cap.related_cases == ("case-B",)
    assert cap.refs == ("legacy.emergency.cap.v1/0/771", "legacy.party.v1/1/48213")
    assert cap.origin is None


def test_the_actor_comes_from_the_body_when_it_names_one() -> None:
    body = {"case_id": "c", "actor": {"kind": "staff", "id": "hj-urban-mgmt/0042", "display": "李*"}}
    cap = describe(
        topic="case.lifecycle.v1",
        partition=0,
        offset=0,
        key=None,
        value=json.dumps(body).encode(),
        headers=[],
    )
    assert (cap.actor, cap.case_id, cap.event_type) == (
        "staff:hj-urban-mgmt/0042",
        "c",
        "raw.case.lifecycle.v1",
    )


def test_a_dead_letter_points_at_its_original_and_is_identified_by_it() -> None:
    dlq = headers(
        dlq_reason="hj212.crc_mismatch",
        dlq_topic="legacy.env.hj212.v1",
        dlq_partition="3",
        dlq_offset="1200",
        dlq_service="intake",
    )
    cap = describe(topic="intake.dlq.v1", partition=0, offset=5, key=None, value=b"##0101QN=...", headers=dlq)
    assert cap.origin == "legacy.env.hj212.v1/3/1200"
    assert cap.refs == ("legacy.env.hj212.v1/3/1200",)
    assert cap.event_id == "dlq:legacy.env.hj212.v1/3/1200"
    assert cap.actor == "service:intake"
    assert cap.event_type == "raw.intake.dlq.v1"


def test_a_raw_record_is_identified_by_its_position_and_a_tombstone_says_so() -> None:
    cap = describe(topic="legacy.party.v1", partition=1, offset=7, key=b"\xff\x00", value=None, headers=None)
    assert cap.event_id == "kafka:legacy.party.v1/1/7"
    assert cap.event_type == "kafka.tombstone"
    assert cap.payload == b""
    assert cap.key == "b64:/wA="


def test_keys_and_text_never_carry_nul_or_invalid_utf8() -> None:
    assert key_text(b"a\x00b") == "b64:YQBi"
    assert key_text("扬州".encode()) == "扬州"
    cap = describe(
        topic="cases.v1",
        partition=0,
        offset=0,
        key=None,
        value=b'{"case_id": "x\\u0000y", "actor": 5}',
        headers=[("ce_subject", b""), ("ce_type", b"t\x00\xff")],
    )
    assert cap.case_id == "x\ufffdy"
    assert cap.event_type == "t\ufffd\ufffd"
    assert cap.actor is None


@given(
    key=st.none() | st.binary(max_size=40),
    value=st.none() | st.binary(max_size=200) | st.text(max_size=80).map(str.encode),
    hdrs=st.lists(
        st.tuples(
            st.sampled_from(
                ["ce_id", "ce_subject", "dlq_topic", "dlq_partition", "dlq_offset", "traceparent", "x"]
            ),
            st.binary(max_size=30),
        ),
        max_size=8,
    ),
)
def test_any_record_gives_a_capture_that_makes_a_valid_entry(
    key: bytes | None, value: bytes | None, hdrs: list[tuple[str, bytes]]
) -> None:
    cap = describe(topic="t", partition=0, offset=1, key=key, value=value, headers=hdrs)
    entry = entry_of(cap, seq=0, recorded_at=datetime.now(UTC))
    for text in (
        cap.event_id,
        cap.event_type,
        cap.key,
        cap.case_id,
        cap.actor,
        *cap.headers.values(),
        *cap.refs,
    ):
        assert text is None or "\x00" not in text
    assert len(entry.leaf_hash()) == 32


@given(
    topic=st.sampled_from(["cases.v1", "legacy.party.v1", "intake.dlq.v1", "扬州.t"]),
    key=st.none() | st.binary(max_size=20),
    value=st.none()
    | st.binary(max_size=100)
    | st.sampled_from([b'{"case_id": "c-1", "actor": {"kind": "staff", "id": "\\u4e00"}}', b"{}"]),
    hdrs=st.lists(
        st.tuples(
            st.sampled_from(["ce_id", "ce_type", "ce_subject", "traceparent", "名"]), st.binary(max_size=20)
        ),
        max_size=6,
    ),
    seq=st.integers(0, 2**63 - 1),
    micros=st.integers(0, 2**55),
)
def test_the_writers_leaf_is_the_entrys_leaf(
    topic: str, key: bytes | None, value: bytes | None, hdrs: list[tuple[str, bytes]], seq: int, micros: int
) -> None:
    # The writer hashes a capture's leaf without building the entry: the same bytes, hence the same hash.
    cap = describe(topic=topic, partition=3, offset=9, key=key, value=value, headers=hdrs)
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    entry = entry_of(cap, seq=seq, recorded_at=at)
    assert cap.leaf_hash(seq=seq, recorded_at_us=micros) == entry.leaf_hash()
    assert entry.payload_matches() and entry.headers_match()
