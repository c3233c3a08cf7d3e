"""Leaf layout v2: the leaf commits to a digest of the record's headers, so a changed header (its
CloudEvents source, time or type, a dead-letter reason) is caught like a changed payload; v1 entries
stay verifiable beside v2 ones."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from audit.domain.capture import describe, entry_of
from audit.domain.entry import AuditEntry, headers_digest
from audit.domain.merkle import leaf_hash
from audit.verify import verify_export

from .test_verify_export import PUBLIC, make_entries, make_heads

README = Path(__file__).parents[3] / "contracts" / "audit" / "README.md"

# Our own record of the class: a dead letter of intake, whose reason lives only in its headers.
# Before (v1): rewriting dlq_reason in the trail left every leaf and root unchanged. Now it breaks one.
HEADERS = {
    "ce_id": "0190f0a4-7c2e-7000-8000-000000000008",
    "ce_source": "/onegrid/intake",
    "ce_time": "2024-05-01T08:00:00.120000Z",
    "ce_type": "cn.onegrid.intake.dead_letter.v1",
    "dlq_reason": "hj212.crc_mismatch",
    "dlq_stage": "parse",
}
EXAMPLE_V2 = AuditEntry.record(
    seq=8,
    recorded_at=datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC),
    topic="intake.dlq.v1",
    partition=0,
    offset=17,
    event_id="0190f0a4-7c2e-7000-8000-000000000008",
    event_type="cn.onegrid.intake.dead_letter.v1",
    key="ST01",
    case_id=None,
    actor="service:intake",
    trace_id=None,
    payload=b"##0136ST=32;CN=2011",
    headers=HEADERS,
)


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">I", len(raw)) + raw


def test_headers_digest_is_exactly_the_documented_encoding() -> None:
    names = sorted(HEADERS)
    data = struct.pack(">I", len(names)) + b"".join(_text(n) + _text(HEADERS[n]) for n in names)
    assert headers_digest(HEADERS) == hashlib.sha256(data).digest()
    assert headers_digest(dict(reversed(list(HEADERS.items())))) == headers_digest(HEADERS)  # order-free


def test_v2_leaf_is_the_v1_layout_with_version_2_and_the_headers_digest() -> None:
    v1 = dataclasses.replace(EXAMPLE_V2, headers_sha256=None, headers=None)
    assert v1.leaf_version == 1 and EXAMPLE_V2.leaf_version == 2
    assert EXAMPLE_V2.leaf_bytes() == b"\x02" + v1.leaf_bytes()[1:] + headers_digest(HEADERS)
    assert EXAMPLE_V2.leaf_hash() == leaf_hash(EXAMPLE_V2.leaf_bytes())


def test_every_header_is_in_the_leaf() -> None:
    for name in HEADERS:
        changed = {**HEADERS, name: HEADERS[name] + "x"}
        entry = dataclasses.replace(EXAMPLE_V2, headers_sha256=headers_digest(changed), headers=changed)
        assert entry.leaf_hash() != EXAMPLE_V2.leaf_hash(), name
    added = {**HEADERS, "quarantine_reason": "crosswalk.unmapped_code"}
    assert dataclasses.replace(EXAMPLE_V2, headers_sha256=headers_digest(added)).leaf_hash() != (
        EXAMPLE_V2.leaf_hash()
    )


def test_readme_worked_example_v2_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    flat = text.replace("\n", "").replace(" ", "")
    assert EXAMPLE_V2.leaf_bytes().hex() in flat
    assert EXAMPLE_V2.leaf_hash().hex() in text
    assert headers_digest(HEADERS).hex() in text
    assert json.dumps(EXAMPLE_V2.to_export(), ensure_ascii=False) in text


def test_export_round_trip_and_archived_headers() -> None:
    record = json.loads(json.dumps(EXAMPLE_V2.to_export()))
    parsed = AuditEntry.from_export(record)
    assert parsed.leaf_bytes() == EXAMPLE_V2.leaf_bytes() and parsed.headers_match() is True
    record["headers"] = None
    archived = AuditEntry.from_export(record)
    assert archived.leaf_hash() == EXAMPLE_V2.leaf_hash() and archived.headers_match() is None


def mixed() -> list[AuditEntry]:
    """A log that changed layout at seq 100: v1 entries, then v2 ones."""
    out = []
    for e in make_entries():
        if e.seq >= 100:
            h = {"ce_id": e.event_id, "ce_source": "/onegrid/dispatch", "ce_type": e.event_type}
            e = dataclasses.replace(e, headers_sha256=headers_digest(h), headers=h)
        out.append(e)
    return out


def test_a_log_of_v1_then_v2_entries_verifies() -> None:
    entries = mixed()
    result = verify_export(entries, make_heads(entries), PUBLIC)
    assert result.ok and result.summary() == "OK: 200 entries, 3 tree heads verified"
    assert {e.leaf_version for e in entries} == {1, 2}


def test_a_changed_header_is_named_and_a_changed_digest_breaks_the_root() -> None:
    entries = mixed()
    heads = make_heads(entries)
    forged = {**(entries[150].headers or {}), "ce_source": "/onegrid/console"}
    tampered = list(entries)
    tampered[150] = dataclasses.replace(entries[150], headers=forged)
    result = verify_export(tampered, heads, PUBLIC)
    assert (result.position, result.reason) == (150, "audit.headers_mismatch")
    tampered[150] = dataclasses.replace(entries[150], headers=forged, headers_sha256=headers_digest(forged))
    result = verify_export(tampered, heads, PUBLIC)
    assert (result.ok, result.reason) == (False, "audit.head_root_mismatch")
    # Passing a v2 entry off as v1 (dropping its headers) changes its leaf too.
    tampered[150] = dataclasses.replace(entries[150], headers=None, headers_sha256=None)
    assert verify_export(tampered, heads, PUBLIC).reason == "audit.head_root_mismatch"


def test_the_wire_tap_writes_v2_entries_over_the_headers_it_read() -> None:
    cap = describe(
        topic="intake.dlq.v1",
        partition=0,
        offset=17,
        key=b"ST01",
        value=b"##0136ST=32;CN=2011",
        headers=[(k, v.encode()) for k, v in HEADERS.items()],
    )
    entry = entry_of(cap, seq=0, recorded_at=datetime.now(UTC) - timedelta(seconds=1))
    assert entry.leaf_version == 2 and entry.headers == cap.headers
    assert entry.headers_sha256 == headers_digest(cap.headers)


@given(st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=6))
def test_headers_digest_orders_names_by_their_utf8_bytes(headers: dict[str, str]) -> None:
    # The documented order is by UTF-8 bytes; a reference built that way, with names of every script.
    try:
        items = sorted((n.encode(), v.encode()) for n, v in headers.items())
    except UnicodeEncodeError:
        return  # lone surrogates: no UTF-8, never in a capture (describe replaces them)
    data = struct.pack(">I", len(items)) + b"".join(
        struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v for n, v in items
    )
    assert headers_digest(headers) == hashlib.sha256(data).digest()
