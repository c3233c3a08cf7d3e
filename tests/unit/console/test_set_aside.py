"""Dead letters and quarantine as the console reads them, and what a replay sends back."""

from __future__ import annotations

import pytest

from console.domain.set_aside import NotReplayable, Position, SetAsideBook, describe, replay_of

ORIGINAL = [("traceparent", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"), ("x-gateway", b"gw1")]


def quarantine_headers(reason: str = "crosswalk.unmapped_code", offset: int = 7) -> list[tuple[str, bytes]]:
    return [
        *ORIGINAL,
        ("quarantine_reason", reason.encode()),
        ("quarantine_detail", "sjlx MQ77 未映射".encode()),
        ("quarantine_topic", b"legacy.party.v1"),
        ("quarantine_partition", b"2"),
        ("quarantine_offset", str(offset).encode()),
        ("quarantine_timestamp", b"2026-03-01T00:00:00Z"),
        ("quarantine_stage", b"map"),
        ("quarantine_service", b"intake"),
    ]


def test_describe_reads_the_contract_headers() -> None:
    item = describe("quarantine", Position("intake.quarantine.v1", 0, 3), b"k", b"{}", quarantine_headers())
    assert item.reason == "crosswalk.unmapped_code"
    assert item.detail == "sjlx MQ77 未映射"
    assert item.origin == Position("legacy.party.v1", 2, 7)
    assert item.stage == "map" and item.service == "intake" and item.size == 2 and item.key == "k"
    assert item.to_json()["origin"] == "legacy.party.v1/2/7"


def test_describe_is_total_on_missing_or_odd_headers() -> None:
    item = describe("dlq", Position("intake.dlq.v1", 0, 0), None, None, [("dlq_partition", b"x")])
    assert item.reason == "unknown" and item.origin is None and item.size == 0 and item.key is None
    with pytest.raises(ValueError, match="kind"):
        describe("other", Position("t", 0, 0), None, None, [])


def test_book_counts_keeps_latest_and_positions_by_reason() -> None:
    book = SetAsideBook(keep_latest=2)
    for i, reason in enumerate(["a", "b", "a"]):
        pos = Position("q", 0, i)
        book.add(describe("quarantine", pos, None, b"v", quarantine_headers(reason, offset=i)))
    book.add(describe("dlq", Position("d", 0, 0), None, b"v", [("dlq_reason", b"hj212.crc_mismatch")]))
    book.mark_replayed(Position("q", 0, 2), "staff:42", "2026-03-01T00:00:00Z")
    s = book.summary()
    q = s["quarantine"]
    assert q["total"] == 3  # type: ignore[index]
    assert q["by_reason"] == [{"reason": "a", "count": 2}, {"reason": "b", "count": 1}]  # type: ignore[index]
    latest = q["latest"]  # type: ignore[index]
    assert [r["offset"] for r in latest] == [2, 1]  # newest first, only two kept
    assert latest[0]["replayed_by"] == "staff:42" and latest[1]["replayed_by"] is None
    assert book.positions("a") == [Position("q", 0, 0), Position("q", 0, 2)]
    assert book.positions("zzz") == []
    assert s["dlq"]["total"] == 1  # type: ignore[index]


def test_replay_sends_the_original_back_without_quarantine_headers() -> None:
    pos = Position("intake.quarantine.v1", 0, 3)
    r = replay_of(pos, b"key", b"payload", quarantine_headers(), "staff:42")
    assert r.topic == "legacy.party.v1" and r.key == b"key" and r.value == b"payload"
    assert r.headers == [*ORIGINAL, ("replay_of", b"intake.quarantine.v1/0/3"), ("replay_by", b"staff:42")]
    # A record replayed, quarantined again and replayed again carries only the latest replay headers.
    again = replay_of(pos, b"key", b"payload", [*r.headers, ("quarantine_topic", b"legacy.party.v1")], "b")
    assert [h for h in again.headers if h[0].startswith("replay_")] == [
        ("replay_of", b"intake.quarantine.v1/0/3"),
        ("replay_by", b"b"),
    ]


def test_only_quarantined_records_with_a_value_can_be_replayed() -> None:
    pos = Position("intake.quarantine.v1", 0, 3)
    with pytest.raises(NotReplayable, match="quarantine_topic"):
        replay_of(pos, None, b"v", [("dlq_topic", b"x")], "a")
    with pytest.raises(NotReplayable, match="tombstone"):
        replay_of(pos, None, None, quarantine_headers(), "a")
