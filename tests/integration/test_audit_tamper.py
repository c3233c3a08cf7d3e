"""Tampering done as a superuser who bypasses the triggers is caught by the standalone verifier, which
names the first bad position; the untouched log verifies."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.audit_trail import FakeRecord, case_event, fresh_schema, superuser

from audit.export import entries_lines, write_export
from audit.heads import HeadSigner
from audit.store import TrailStore
from audit.trail_writer import TrailWriter
from audit.verify import read_entries, read_heads, verify_export

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(7, 39)))
BATCHES, PER_BATCH = 4, 30  # heads at 30, 60, 90, 120
BYPASS = "SET session_replication_role = replica"  # superuser only: no triggers fire

TAMPERING = {
    "payload byte changed": (
        "UPDATE trail SET payload = set_byte(payload, 2, get_byte(payload, 2) # 1) WHERE seq = 47",
        47,
        "audit.payload_mismatch",
    ),
    "row deleted": ("DELETE FROM trail WHERE seq = 47", 47, "audit.seq_gap"),
    "two rows swapped": (
        "UPDATE trail SET seq = -1 WHERE seq = 47; UPDATE trail SET seq = 47 WHERE seq = 52; "
        "UPDATE trail SET seq = 52 WHERE seq = -1",
        47,
        "audit.seq_swapped",
    ),
    "tail truncated": ("DELETE FROM trail WHERE seq >= 100", 100, "audit.export_truncated"),
}


async def build_log(database_url: str):  # type: ignore[no-untyped-def]
    db = await fresh_schema(database_url)
    writer = TrailWriter(db)
    signer = HeadSigner(db, KEY, every_entries=1, interval_s=3600)
    for b in range(BATCHES):
        batch: list[FakeRecord] = []
        for i in range(PER_BATCH):
            n = b * PER_BATCH + i
            if n % 3:
                batch.append(FakeRecord("legacy.party.v1", n % 2, n, f'{{"sjbt": "井盖缺失 {n}"}}'.encode()))
            else:
                batch.append(case_event("cases.v1", n, f"case-{n % 7}", partition=n % 2))
        await writer.append(batch)
        await signer.sign_if_due()
    return db


async def export(db) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    entries, heads = io.BytesIO(), io.BytesIO()
    await write_export(TrailStore(db), entries, heads)
    return entries.getvalue(), heads.getvalue()


async def export_entries(db) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join([line async for line in entries_lines(TrailStore(db))])


def verify(entries: bytes, heads: bytes):  # type: ignore[no-untyped-def]
    return verify_export(read_entries(entries.splitlines()), read_heads(heads.splitlines()), KEY.public_key())


async def test_the_untouched_log_verifies_with_the_command(database_url: str, tmp_path: Path) -> None:
    db = await build_log(database_url)
    try:
        entries, heads = await export(db)
    finally:
        await db.close()
    (tmp_path / "entries.jsonl").write_bytes(entries)
    (tmp_path / "heads.jsonl").write_bytes(heads)
    (tmp_path / "key.pem").write_bytes(
        KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    args = ["--export", "entries.jsonl", "--heads", "heads.jsonl", "--public-key", "key.pem"]
    command = [sys.executable, "-m", "audit.verify", *args]
    run = await asyncio.to_thread(subprocess.run, command, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith(f"OK: {BATCHES * PER_BATCH} entries, {BATCHES} tree heads verified")


@pytest.mark.parametrize("scenario", list(TAMPERING))
async def test_tampering_is_found_at_the_first_bad_position(database_url: str, scenario: str) -> None:
    sql, position, reason = TAMPERING[scenario]
    db = await build_log(database_url)
    try:
        entries, heads = await export(db)
        assert verify(entries, heads).ok
        conn = await superuser(database_url, db.schema)
        try:
            await conn.execute(BYPASS)
            await conn.execute(sql)
        finally:
            await conn.close()
        # The heads are public (published on audit.heads.v1): the auditor has them from before.
        tampered = await export_entries(db)
        result = verify(tampered, heads)
    finally:
        await db.close()
    assert not result.ok
    assert (result.position, result.reason) == (position, reason), result.detail


async def test_rewriting_a_row_consistently_is_still_caught_by_the_next_head(database_url: str) -> None:
    """A change that keeps seq, order and the payload hash consistent (a new actor) cannot be placed
    by the entries alone: the first signed head after it fails, and says after which head it lies."""
    db = await build_log(database_url)
    try:
        _, heads = await export(db)
        conn = await superuser(database_url, db.schema)
        try:
            await conn.execute(BYPASS)
            await conn.execute("UPDATE trail SET actor = 'someone-else' WHERE seq = 47")
        finally:
            await conn.close()
        tampered = await export_entries(db)
        result = verify(tampered, heads)
    finally:
        await db.close()
    assert (result.ok, result.position, result.reason) == (False, 60, "audit.head_root_mismatch")
    assert "0..29 matched an earlier head" in result.detail
