"""The standalone verifier finds every kind of tampering and names the first bad position exactly."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.domain.entry import AuditEntry
from audit.domain.merkle import consistency_proof, root
from audit.domain.tree_head import sign_tree_head
from audit.verify import ExportedHead, VerificationResult, read_entries, verify_export

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
PUBLIC = KEY.public_key()
HEAD_SIZES = (60, 130, 200)
START = datetime(2024, 5, 1, tzinfo=UTC)


def make_entries(n: int = 200) -> list[AuditEntry]:
    return [
        AuditEntry.record(
            seq=i,
            recorded_at=START + timedelta(seconds=i),
            topic="cases.events",
            partition=i % 3,
            offset=i // 3,
            event_id=f"evt-{i:04d}",
            event_type="case.updated",
            key=f"case-{i % 17}",
            case_id=f"case-{i % 17}",
            actor="grid-worker-7" if i % 5 else None,
            trace_id=None,
            payload=json.dumps({"n": i, "note": "井盖缺失"}).encode(),
        )
        for i in range(n)
    ]


def make_heads(entries: list[AuditEntry], sizes: tuple[int, ...] = HEAD_SIZES) -> list[ExportedHead]:
    leaves = [e.leaf_hash() for e in entries]
    heads: list[ExportedHead] = []
    previous: int | None = None
    for number, size in enumerate(sizes):
        sth = sign_tree_head(KEY, size, root(leaves[:size]), 1714521600000 + number * 60_000)
        proof = None if previous is None else consistency_proof(previous, leaves[:size])
        heads.append(ExportedHead(sth, proof))
        previous = size
    return heads


ENTRIES = make_entries()
HEADS = make_heads(ENTRIES)


def failure(result: VerificationResult) -> tuple[int | None, str | None]:
    assert not result.ok, result
    assert result.summary().startswith(f"FAIL at position {result.position}: ")
    return result.position, result.reason


def test_clean_export_passes() -> None:
    result = verify_export(ENTRIES, HEADS, PUBLIC)
    assert result.ok
    assert result.summary() == "OK: 200 entries, 3 tree heads verified"
    assert result.notes() == []


def test_changed_payload_byte_is_named() -> None:
    entries = list(ENTRIES)
    payload = bytearray(entries[77].payload or b"")
    payload[5] ^= 0x01
    entries[77] = dataclasses.replace(entries[77], payload=bytes(payload))
    assert failure(verify_export(entries, HEADS, PUBLIC)) == (77, "audit.payload_mismatch")


def test_deleted_row_is_a_gap() -> None:
    entries = ENTRIES[:90] + ENTRIES[91:]
    result = verify_export(entries, HEADS, PUBLIC)
    assert failure(result) == (90, "audit.seq_gap")
    assert "seq 90 is missing" in result.detail


def test_swapped_rows_are_named_as_a_swap() -> None:
    entries = list(ENTRIES)
    entries[42], entries[57] = entries[57], entries[42]
    result = verify_export(entries, HEADS, PUBLIC)
    assert failure(result) == (42, "audit.seq_swapped")
    assert "entries 42 and 57 are swapped" in result.detail


def test_swap_with_renumbered_seqs_breaks_the_first_covering_head() -> None:
    # Seqs and recording times renumbered: both encodings of the order agree, only the head can tell.
    entries = list(ENTRIES)
    entries[42], entries[57] = (
        dataclasses.replace(entries[57], seq=42, recorded_at=entries[42].recorded_at),
        dataclasses.replace(entries[42], seq=57, recorded_at=entries[57].recorded_at),
    )
    assert failure(verify_export(entries, HEADS, PUBLIC)) == (60, "audit.head_root_mismatch")
    # Seqs alone renumbered: the recording times place the swap before the head does.
    entries = list(ENTRIES)
    entries[42], entries[57] = (
        dataclasses.replace(entries[57], seq=42),
        dataclasses.replace(entries[42], seq=57),
    )
    assert failure(verify_export(entries, HEADS, PUBLIC)) == (43, "audit.recorded_at_backwards")


def test_rewritten_field_is_localised_between_heads() -> None:
    entries = list(ENTRIES)
    entries[100] = dataclasses.replace(entries[100], event_type="case.closed")
    result = verify_export(entries, HEADS, PUBLIC)
    assert failure(result) == (130, "audit.head_root_mismatch")
    assert "0..59 matched an earlier head" in result.detail


def test_truncated_tail_under_a_head_is_named() -> None:
    result = verify_export(ENTRIES[:170], HEADS, PUBLIC)
    assert failure(result) == (170, "audit.export_truncated")
    assert "entries 170..199 are missing" in result.detail


def test_forged_head_fails_its_signature() -> None:
    heads = list(HEADS)
    forged = dataclasses.replace(heads[1].head, root_hash=bytes(32))
    heads[1] = ExportedHead(forged, None)
    assert failure(verify_export(ENTRIES, heads, PUBLIC)) == (130, "audit.head_signature_invalid")


def test_head_signed_by_another_key_is_named() -> None:
    other = Ed25519PrivateKey.generate()
    heads = list(HEADS)
    heads[2] = ExportedHead(sign_tree_head(other, 200, HEADS[2].head.root_hash, HEADS[2].head.timestamp))
    assert failure(verify_export(ENTRIES, heads, PUBLIC)) == (200, "audit.head_key_mismatch")


def test_genuinely_signed_fork_is_caught_by_proof_or_by_recomputation() -> None:
    # The log signed a head of size 200 over a history that differs at entry 100 from the one it had
    # shown at size 130 (a split view): its shipped proof from the previous head fails...
    forked = list(ENTRIES)
    forked[100] = dataclasses.replace(forked[100], actor="someone else")
    fork_head = make_heads(forked)[2]
    heads = [HEADS[0], HEADS[1], fork_head]
    assert verify_export(forked, heads[2:], PUBLIC).ok
    assert failure(verify_export(ENTRIES, heads, PUBLIC)) == (200, "audit.consistency_proof_invalid")
    # ...and without proofs the recomputed root does not match.
    heads = [HEADS[0], HEADS[1], ExportedHead(fork_head.head)]
    assert failure(verify_export(ENTRIES, heads, PUBLIC)) == (200, "audit.head_root_mismatch")


def test_first_failure_in_log_order_wins() -> None:
    entries = list(ENTRIES)
    entries[150] = dataclasses.replace(entries[150], payload=b"x")
    heads = [HEADS[0], ExportedHead(dataclasses.replace(HEADS[1].head, timestamp=1)), HEADS[2]]
    assert failure(verify_export(entries, heads, PUBLIC)) == (130, "audit.head_signature_invalid")
    entries[20] = dataclasses.replace(entries[20], payload=b"x")
    assert failure(verify_export(entries, heads, PUBLIC)) == (20, "audit.payload_mismatch")


def test_heads_out_of_order_or_back_in_time() -> None:
    assert failure(verify_export(ENTRIES, [HEADS[1], HEADS[0]], PUBLIC)) == (60, "audit.head_order")
    late = ExportedHead(sign_tree_head(KEY, 60, HEADS[0].head.root_hash, HEADS[1].head.timestamp + 1))
    assert failure(verify_export(ENTRIES, [late, HEADS[1]], PUBLIC)) == (
        130,
        "audit.head_timestamp_backwards",
    )


def test_duplicate_seq_and_malformed_line() -> None:
    entries = list(ENTRIES)
    entries[31] = ENTRIES[30]
    assert failure(verify_export(entries, HEADS, PUBLIC)) == (31, "audit.seq_duplicate")
    lines = [json.dumps(e.to_export()) for e in ENTRIES]
    lines[10] = lines[10][:-5]
    result = verify_export(read_entries(lines), HEADS, PUBLIC)
    assert failure(result) == (10, "audit.entry_malformed")
    assert "line 11" in result.detail


def test_archived_payloads_empty_head_and_uncovered_tail() -> None:
    entries = [dataclasses.replace(e, payload=None) if e.seq < 10 else e for e in ENTRIES]
    heads = make_heads(ENTRIES, (0, 60, 130))
    result = verify_export(entries, heads, PUBLIC)
    assert result.ok and result.archived == 10 and result.uncovered == 70
    assert result.notes() == [
        "note: entries 130..199 are not covered by a signed tree head",
        "note: 10 payloads are archived and were checked only through the leaf",
    ]
    assert verify_export([], [], PUBLIC).summary() == "OK: 0 entries, 0 tree heads verified"


@pytest.fixture
def export_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    entries, heads, key = tmp_path / "entries.jsonl", tmp_path / "heads.jsonl", tmp_path / "key.pem"
    entries.write_text(
        "".join(json.dumps(e.to_export(), ensure_ascii=False) + "\n" for e in ENTRIES), "utf-8"
    )
    heads.write_text(
        "".join(json.dumps(h.head.to_export(h.consistency_proof)) + "\n" for h in HEADS), "utf-8"
    )
    key.write_bytes(
        PUBLIC.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return entries, heads, key


def run_cli(entries: Path, heads: Path, key: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "audit.verify", "--export", str(entries), "--heads", str(heads)]
    return subprocess.run([*command, "--public-key", str(key)], capture_output=True, text=True, check=False)


def test_cli_on_files(export_files: tuple[Path, Path, Path]) -> None:
    entries, heads, key = export_files
    clean = run_cli(entries, heads, key)
    assert (clean.returncode, clean.stdout) == (0, "OK: 200 entries, 3 tree heads verified\n")
    lines = entries.read_text("utf-8").splitlines(keepends=True)
    del lines[123]
    entries.write_text("".join(lines), "utf-8")
    tampered = run_cli(entries, heads, key)
    assert tampered.returncode == 1
    assert (
        tampered.stdout
        == "FAIL at position 123: seq 123 is missing: the entry at this position has seq 124\n"
    )
    key.write_text("garbage")
    assert run_cli(entries, heads, key).returncode == 2


def test_recording_time_going_back_along_seq_is_named_even_after_the_last_head() -> None:
    # Entries 150 and 170 swapped and renumbered, after the last head of size 130: no head covers
    # them, but their recording times disagree with their seqs.
    entries = list(ENTRIES)
    entries[150], entries[170] = (
        dataclasses.replace(entries[170], seq=150),
        dataclasses.replace(entries[150], seq=170),
    )
    result = verify_export(entries, HEADS[:2], PUBLIC)
    assert failure(result) == (151, "audit.recorded_at_backwards")
    assert "seq 151 was recorded at 2024-05-01T00:02:31" in result.detail


def test_entries_recorded_at_one_instant_verify() -> None:
    # A batch recorded before every entry had its own microsecond shares one recorded_at.
    batch = START + timedelta(seconds=10)
    entries = [dataclasses.replace(e, recorded_at=batch) if 10 <= e.seq < 20 else e for e in ENTRIES]
    assert verify_export(entries, make_heads(entries), PUBLIC).ok
