"""The auditors' export: ``entries.jsonl`` and ``heads.jsonl`` (contracts/audit/README.md), streamed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import BinaryIO

from audit.store import TrailStore


async def entries_lines(
    store: TrailStore, start: int = 0, end: int | None = None, *, payloads: bool = True
) -> AsyncIterator[bytes]:
    """The entries in seq order; without `payloads` each payload is null, as if archived (the leaf
    holds only its hash, so the export verifies all the same)."""
    async for entry in store.export_entries(start, end):
        out = entry.to_export()
        if not payloads:
            out["payload"] = None
        yield json.dumps(out, ensure_ascii=False).encode() + b"\n"


async def heads_lines(store: TrailStore) -> AsyncIterator[bytes]:
    """Every signed head in signing order, each with PROOF(previous size, its size)."""
    previous = None
    for head in await store.heads(limit=1_000_000):
        proof = None
        if previous is not None:
            proof, _, _ = await store.consistency_proof(previous.tree_size, head.tree_size)
        yield json.dumps(head.to_export(proof)).encode() + b"\n"
        previous = head


async def write_export(store: TrailStore, entries_out: BinaryIO, heads_out: BinaryIO) -> None:
    """Write both files of an export into the given binary streams."""
    async for line in heads_lines(store):
        heads_out.write(line)
    async for line in entries_lines(store):
        entries_out.write(line)
