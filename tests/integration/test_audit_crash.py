"""The wire tap on the real broker: SIGKILLed mid-batch and restarted, every record is in the trail once,
seq is gapless, and the persisted Merkle frontier is the tree of exactly the stored leaves."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from support.audit_trail import case_event, fresh_schema
from support.waiting import wait_until

from audit.domain.merkle import MerkleFrontier, root

pytestmark = pytest.mark.asyncio(loop_scope="session")
TAP = Path(__file__).resolve().parents[1] / "support" / "audit_trail.py"


def start_tap(
    bootstrap: str, database_url: str, schema: str, pause_s: float, topics: list[str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(TAP), bootstrap, database_url, schema, str(pause_s), *topics],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def count(db) -> int:  # type: ignore[no-untyped-def]
    async with db.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM trail"))


async def wait_for(db, n: int, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> None:  # type: ignore[no-untyped-def]
    async def reached() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "tap exited"
        return bool(await count(db) >= n)

    await wait_until(reached, timeout_s=timeout_s, what=f"the trail to reach {n} entries")


async def test_sigkill_mid_batch_then_restart_leaves_no_duplicate_and_no_gap(
    kafka_settings, topics, database_url: str
) -> None:
    legacy, cases = await topics("audit.legacy", partitions=3), await topics("audit.cases", partitions=2)
    n_legacy, n_cases = 900, 600
    producer = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await producer.start()
    try:
        futures = [
            await producer.send(legacy, f"packet-{i}".encode(), key=str(i).encode()) for i in range(n_legacy)
        ]
        for i in range(n_cases):
            r = case_event(cases, 0, f"case-{i % 40}")
            futures.append(await producer.send(cases, r.value, key=r.key, headers=r.headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    total = n_legacy + n_cases
    db = await fresh_schema(database_url)
    try:
        tap = start_tap(kafka_settings.bootstrap_servers, database_url, db.schema, 0.05, [legacy, cases])
        try:
            await wait_for(db, 300, tap)
        finally:
            tap.send_signal(signal.SIGKILL)
            tap.wait()
        mid = await count(db)
        assert 0 < mid < total, f"the kill must land mid-stream (had {mid} of {total})"
        tap = start_tap(kafka_settings.bootstrap_servers, database_url, db.schema, 0, [legacy, cases])
        try:
            await wait_for(db, total, tap)
        finally:
            tap.send_signal(signal.SIGTERM)
            await asyncio.to_thread(tap.wait, 30)
        async with db.acquire() as conn:
            rows = await conn.fetch(
                'SELECT seq, topic, partition, "offset", leaf_hash FROM trail ORDER BY seq'
            )
            state = await conn.fetchrow("SELECT size, frontier FROM log_state")
    finally:
        await db.close()
    assert [r["seq"] for r in rows] == list(range(total)), "seq must be gapless from 0"
    positions = [(r["topic"], r["partition"], r["offset"]) for r in rows]
    assert len(set(positions)) == total, "no record may be recorded twice"
    assert {p[0] for p in positions} == {legacy, cases}
    frontier = MerkleFrontier.from_bytes(state["frontier"])
    assert state["size"] == frontier.size == total
    assert frontier.root() == root([bytes(r["leaf_hash"]) for r in rows])
