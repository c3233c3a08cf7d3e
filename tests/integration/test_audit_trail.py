"""The trail on a real PostgreSQL: gapless and idempotent appends, append-only by construction, the
Merkle frontier kept with the rows, and proofs that check against the signed heads."""

from __future__ import annotations

import dataclasses
import io
import itertools

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.audit_trail import FakeRecord, case_event, fresh_schema, superuser

from audit.domain.merkle import verify_consistency, verify_inclusion
from audit.domain.tree_head import verify_tree_head
from audit.export import write_export
from audit.heads import HeadSigner
from audit.store import TrailStore
from audit.trail_writer import TrailWriter
from audit.verify import read_entries, read_heads, verify_export
from onegrid.topics import CASE_LIFECYCLE, CASES, LEGACY_ENV_HJ212

pytestmark = pytest.mark.asyncio(loop_scope="session")

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def raw(topic: str, offset: int, partition: int = 0) -> FakeRecord:
    return FakeRecord(topic, partition, offset, f"##0101QN={offset:017d};CP=&&&&".encode())


async def test_appends_are_gapless_and_a_replayed_batch_adds_nothing(database_url: str) -> None:
    db = await fresh_schema(database_url)
    try:
        writer = TrailWriter(db)
        first = [raw("legacy.env.hj212.v1", o, o % 2) for o in range(10)]
        assert (await writer.append(first)).appended == 10
        again = await writer.append([*first[3:], raw("legacy.env.hj212.v1", 10, 0)])
        assert (again.appended, again.duplicates, again.tree_size) == (1, 7, 11)
        async with db.acquire() as conn:
            seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM trail ORDER BY seq")]
            offsets = await conn.fetch('SELECT "offset" FROM trail WHERE seq = 10')
        assert seqs == list(range(11))
        assert offsets[0]["offset"] == 10
    finally:
        await db.close()


async def test_the_trail_refuses_update_delete_and_truncate(database_url: str) -> None:
    db = await fresh_schema(database_url)
    try:
        await TrailWriter(db).append([raw("legacy.party.v1", 0)])
        await HeadSigner(db, KEY, every_entries=1, interval_s=3600).sign_if_due()
        conn = await superuser(database_url, db.schema)
        try:
            partition = await conn.fetchval(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'trail'::regclass LIMIT 1"
            )
            for sql in (
                "UPDATE trail SET payload = 'x'",
                "DELETE FROM trail",
                "TRUNCATE trail",
                f'TRUNCATE "{partition}"',
                f"UPDATE \"{partition}\" SET actor = 'x'",
                "DELETE FROM tree_head",
            ):
                with pytest.raises(asyncpg.PostgresError, match="append-only"):
                    await conn.execute(sql)
                    pytest.fail(f"{sql} was not refused")
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE audit_writer")
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                    await conn.execute("UPDATE trail SET payload = 'x'")
            assert await conn.fetchval("SELECT count(*) FROM trail") == 1
        finally:
            await conn.close()
    finally:
        await db.close()


async def test_proofs_from_the_api_store_check_against_signed_heads(database_url: str) -> None:
    db = await fresh_schema(database_url)
    try:
        writer = TrailWriter(db)
        signer = HeadSigner(db, KEY, every_entries=1, interval_s=3600)
        heads = []
        for batch in range(6):
            await writer.append([raw("legacy.safety.v1", batch * 300 + i) for i in range(300)])
            head = await signer.sign_if_due()
            assert head is not None and verify_tree_head(head, KEY.public_key())
            heads.append(head)
        store = TrailStore(db)
        last = heads[-1]
        for seq in (0, 1, 255, 256, 511, 1000, last.tree_size - 1):
            leaf, proof, root = await store.inclusion_proof(seq, last.tree_size)
            assert root == last.root_hash
            assert verify_inclusion(seq, last.tree_size, leaf, proof, last.root_hash)
        for a, b in itertools.pairwise(heads):
            proof, ra, rb = await store.consistency_proof(a.tree_size, b.tree_size)
            assert (ra, rb) == (a.root_hash, b.root_hash)
            assert verify_consistency(a.tree_size, b.tree_size, a.root_hash, b.root_hash, proof)
    finally:
        await db.close()


async def test_a_batch_is_recorded_in_time_order_across_topics_and_offset_order_within_a_partition(
    database_url: str,
) -> None:
    """One batch holding a legacy packet and the case event built from it: the packet, produced
    first, gets the lower seq though its topic's name sorts after the case topic's. A partition whose
    timestamps go back (another producer's clock) keeps its offset order. The export verifies."""
    t = 1_772_323_200_000
    packet = dataclasses.replace(raw(LEGACY_ENV_HJ212, 7, 0), timestamp=t)
    reported = dataclasses.replace(
        case_event(CASES, 0, "case-1", source={"topic": LEGACY_ENV_HJ212, "partition": 0, "offset": 7}),
        timestamp=t + 5,
    )
    late_clock = dataclasses.replace(raw(LEGACY_ENV_HJ212, 3, 1), timestamp=t + 8)
    early_clock = dataclasses.replace(raw(LEGACY_ENV_HJ212, 4, 1), timestamp=t + 2)
    closed = FakeRecord(CASE_LIFECYCLE, 0, 0, b'{"case_id": "case-1"}', timestamp=t + 9)
    db = await fresh_schema(database_url)
    try:
        await TrailWriter(db).append([closed, early_clock, reported, late_clock, packet])
        await HeadSigner(db, KEY, every_entries=1, interval_s=3600).sign_if_due()
        async with db.acquire() as conn:
            rows = await conn.fetch('SELECT topic, partition, "offset", recorded_at FROM trail ORDER BY seq')
        assert [(r["topic"], r["partition"], r["offset"]) for r in rows] == [
            (LEGACY_ENV_HJ212, 0, 7),
            (CASES, 0, 0),
            (LEGACY_ENV_HJ212, 1, 3),
            (LEGACY_ENV_HJ212, 1, 4),
            (CASE_LIFECYCLE, 0, 0),
        ]
        times = [r["recorded_at"] for r in rows]
        assert all(a < b for a, b in itertools.pairwise(times)), times
        story = await TrailStore(db).story("case-1", limit=10)
        assert [(r["topic"], r["offset"]) for r in story] == [
            (LEGACY_ENV_HJ212, 7),
            (CASES, 0),
            (CASE_LIFECYCLE, 0),
        ]
        entries, heads = io.BytesIO(), io.BytesIO()
        await write_export(TrailStore(db), entries, heads)
    finally:
        await db.close()
    result = verify_export(
        read_entries(entries.getvalue().splitlines()),
        read_heads(heads.getvalue().splitlines()),
        KEY.public_key(),
    )
    assert result.ok and result.entries == 5, result.detail
