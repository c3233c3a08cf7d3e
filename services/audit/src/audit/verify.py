"""Standalone verifier of an audit export: no database, only the export files and the log's public key.

    python -m audit.verify --export entries.jsonl --heads heads.jsonl --public-key key.pem

Prints ``OK: N entries, M tree heads verified`` (exit 0) or ``FAIL at position P: <what>`` naming the first
bad position in log order (exit 1); unreadable inputs exit 2. The procedure is documented for external
auditors in ``contracts/audit/README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.domain.entry import AuditEntry, MalformedRecord
from audit.domain.merkle import MerkleFrontier, verify_consistency
from audit.domain.tree_head import (
    MalformedTreeHead,
    SignedTreeHead,
    key_id,
    load_public_key,
    verify_tree_head,
)


@dataclass(frozen=True, slots=True)
class ExportedHead:
    """A head as shipped in ``heads.jsonl``, with PROOF(previous head's size, this size) if present."""

    head: SignedTreeHead
    consistency_proof: Sequence[bytes] | None = None


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """Outcome of ``verify_export``. On failure ``position`` is the leaf index of the first bad entry,
    or, for a tree head, its ``tree_size`` (heads of size P are checked before entry P)."""

    ok: bool
    entries: int
    heads: int
    position: int | None = None
    reason: str | None = None
    detail: str = ""
    uncovered: int = 0
    archived: int = 0

    def summary(self) -> str:
        if not self.ok:
            return f"FAIL at position {self.position}: {self.detail}"
        return f"OK: {self.entries} entries, {self.heads} tree heads verified"

    def notes(self) -> list[str]:
        notes = []
        if self.ok and self.uncovered:
            first = self.entries - self.uncovered
            notes.append(f"note: entries {first}..{self.entries - 1} are not covered by a signed tree head")
        if self.ok and self.archived:
            notes.append(
                f"note: {self.archived} payloads are archived and were checked only through the leaf"
            )
        return notes


class MalformedExport(ValueError):
    """Raised by an entry iterator for a line that is not an entry; ``verify_export`` turns it into a
    failure at the position it was reading."""


def _fail(position: int, reason: str, detail: str, entries: int, heads: int) -> VerificationResult:
    return VerificationResult(False, entries, heads, position, reason, detail)


def _head_failures(heads: Sequence[ExportedHead], public_key: Ed25519PublicKey) -> list[tuple[int, str, str]]:
    """Everything checkable on the heads alone, as ``(position, reason, detail)``."""
    expected_key = key_id(public_key)
    failures: list[tuple[int, str, str]] = []
    for number, shipped in enumerate(heads, 1):
        head = shipped.head
        name = f"tree head {number} (tree_size {head.tree_size})"
        if head.key_id != expected_key:
            failures.append(
                (
                    head.tree_size,
                    "audit.head_key_mismatch",
                    f"{name} names key {head.key_id}, not {expected_key}",
                )
            )
        elif not verify_tree_head(head, public_key):
            failures.append(
                (head.tree_size, "audit.head_signature_invalid", f"{name}: signature does not verify")
            )
        if number == 1:
            continue
        previous = heads[number - 2].head
        if head.tree_size < previous.tree_size:
            detail = f"{name} comes after a head of tree_size {previous.tree_size}"
            failures.append((head.tree_size, "audit.head_order", detail))
        elif head.timestamp < previous.timestamp:
            detail = (
                f"{name} is timestamped {head.timestamp}, before the previous head's {previous.timestamp}"
            )
            failures.append((head.tree_size, "audit.head_timestamp_backwards", detail))
        elif shipped.consistency_proof is not None and not verify_consistency(
            previous.tree_size, head.tree_size, previous.root_hash, head.root_hash, shipped.consistency_proof
        ):
            detail = f"{name}: consistency proof from tree_size {previous.tree_size} does not verify"
            failures.append((head.tree_size, "audit.consistency_proof_invalid", detail))
    return failures


def _classify_seq(position: int, seq: int, rest: Iterator[AuditEntry]) -> tuple[str, str]:
    """Name a seq discontinuity at ``position``, reading on (seqs only) to tell a gap from a swap."""
    if seq < position:
        return "audit.seq_duplicate", f"seq {seq} appears again at position {position}"
    later: dict[int, int] = {}
    try:
        for offset, entry in enumerate(rest, position + 1):
            later.setdefault(entry.seq, offset)
    except MalformedExport:
        pass
    found = later.get(position)
    if found is None:
        return "audit.seq_gap", f"seq {position} is missing: the entry at this position has seq {seq}"
    if found == seq and later.get(seq) is None:
        return "audit.seq_swapped", f"entries {position} and {seq} are swapped"
    return (
        "audit.seq_out_of_order",
        f"seq {seq} is at position {position}, seq {position} at position {found}",
    )


def verify_export(
    entries: Iterable[AuditEntry],
    heads: Sequence[SignedTreeHead | ExportedHead],
    public_key: Ed25519PublicKey,
) -> VerificationResult:
    """Verify an export in one streaming pass with O(log n) memory (plus seqs after a seq failure).

    Checks, in log order: seq continuity from 0, recorded_at never decreasing along seq (the two
    encodings of the log's order agree), each present payload against its hash, and at every
    head of size P (before entry P) its key, signature, order, timestamp, shipped consistency proof, and
    that the MTH of leaves 0..P-1 equals its root. Heads beyond the export's end are a truncation.
    Recomputing every head's root from the same leaves also proves successive heads consistent.
    """
    shipped = [h if isinstance(h, ExportedHead) else ExportedHead(h) for h in heads]
    failures = _head_failures(shipped, public_key)
    first_head_failure = min(failures, key=lambda f: f[0]) if failures else None
    pending = sorted(enumerate(shipped, 1), key=lambda item: (item[1].head.tree_size, item[0]))
    frontier = MerkleFrontier()
    archived = 0
    cursor = 0
    last_verified = 0
    iterator = iter(entries)
    position = 0
    previous: AuditEntry | None = None
    while True:
        if first_head_failure is not None and first_head_failure[0] == position:
            return _fail(*first_head_failure, position, len(shipped))
        while cursor < len(pending) and pending[cursor][1].head.tree_size == position:
            number, head = pending[cursor][0], pending[cursor][1].head
            if head.root_hash != frontier.root():
                detail = (
                    f"tree head {number} (tree_size {position}): root differs from MTH of 0..{position - 1}"
                )
                if last_verified:
                    detail += f"; 0..{last_verified - 1} matched an earlier head, so the change is after that"
                return _fail(position, "audit.head_root_mismatch", detail, position, len(shipped))
            last_verified = position
            cursor += 1
        try:
            entry = next(iterator)
        except StopIteration:
            break
        except MalformedExport as exc:
            return _fail(position, "audit.entry_malformed", str(exc), position, len(shipped))
        if entry.seq != position:
            reason, detail = _classify_seq(position, entry.seq, iterator)
            return _fail(position, reason, detail, position, len(shipped))
        if previous is not None and entry.recorded_at_us < previous.recorded_at_us:
            detail = (
                f"seq {position} was recorded at {_instant(entry)}, before seq {position - 1} "
                f"({_instant(previous)}): the recording order disagrees with seq"
            )
            return _fail(position, "audit.recorded_at_backwards", detail, position, len(shipped))
        matches = entry.payload_matches()
        if matches is None:
            archived += 1
        elif not matches:
            detail = f"payload of seq {position} does not match its payload_sha256"
            return _fail(position, "audit.payload_mismatch", detail, position, len(shipped))
        if entry.headers_match() is False:
            detail = f"headers of seq {position} do not match its headers_sha256"
            return _fail(position, "audit.headers_mismatch", detail, position, len(shipped))
        frontier.append(entry.leaf_hash())
        previous = entry
        position += 1
    if cursor < len(pending):
        number, head = pending[cursor][0], pending[cursor][1].head
        detail = (
            f"the export ends after {position} entries, but tree head {number} covers {head.tree_size}: "
            f"entries {position}..{head.tree_size - 1} are missing"
        )
        return _fail(position, "audit.export_truncated", detail, position, len(shipped))
    return VerificationResult(
        True, position, len(shipped), uncovered=position - last_verified, archived=archived
    )


def _instant(entry: AuditEntry) -> str:
    return str(entry.to_export()["recorded_at"])


def read_entries(lines: Iterable[str | bytes]) -> Iterator[AuditEntry]:
    """Parse JSON Lines lazily; a bad line raises ``MalformedExport`` naming the line."""
    for number, line in enumerate(lines, 1):
        try:
            yield AuditEntry.from_export(json.loads(line))
        except (ValueError, MalformedRecord) as exc:
            raise MalformedExport(f"line {number} is not an audit entry: {exc}") from exc


def read_heads(lines: Iterable[str | bytes]) -> list[ExportedHead]:
    """Parse ``heads.jsonl``; a bad line raises ``MalformedTreeHead`` naming the line."""
    heads = []
    for number, line in enumerate(lines, 1):
        try:
            head, proof = SignedTreeHead.from_export(json.loads(line))
        except ValueError as exc:
            raise MalformedTreeHead(f"heads line {number}: {exc}") from exc
        heads.append(ExportedHead(head, proof))
    return heads


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify", description="Verify an audit export against its signed tree heads."
    )
    parser.add_argument("--export", required=True, type=Path, help="entries, JSON Lines")
    parser.add_argument("--heads", required=True, type=Path, help="signed tree heads, JSON Lines")
    parser.add_argument("--public-key", required=True, type=Path, help="Ed25519 key: PEM or base64 raw")
    args = parser.parse_args(argv)
    try:
        public_key = load_public_key(args.public_key.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"ERROR: public key {args.public_key}: {exc}", file=sys.stderr)
        return 2
    try:
        with args.heads.open("rb") as heads_file:
            heads = read_heads(heads_file)
        # Binary lines: json.loads decodes UTF-8 itself, so bad bytes fail on their own line.
        with args.export.open("rb") as export_file:
            result = verify_export(read_entries(export_file), heads, public_key)
    except MalformedTreeHead as exc:
        print(f"FAIL in heads file: {exc}")
        return 1
    except OSError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    for note in result.notes():
        print(note)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
