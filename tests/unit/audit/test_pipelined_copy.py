"""COPY in chunks: each chunk is in flight while the next is built, one at a time and in order; a
failed chunk fails the whole, and an error of the caller still waits for the chunk in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from audit.pipelined_copy import PipelinedCopy


class FakeConnection:
    """Answers each COPY when the test releases it; asyncpg allows one operation at a time."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.copied: list[list[tuple[Any, ...]]] = []
        self.release = asyncio.Event()
        self.busy = False
        self.fail_on = fail_on

    async def copy_records_to_table(
        self, table: str, *, records: list[tuple[Any, ...]], columns: list[str]
    ) -> str:
        assert not self.busy, "two operations at once on one connection"
        self.busy = True
        try:
            await self.release.wait()
            if self.fail_on == len(self.copied):
                raise RuntimeError("no partition for this row")
            self.copied.append(records)
            return f"COPY {len(records)}"
        finally:
            self.busy = False


async def test_a_chunk_is_in_flight_while_the_next_is_built_and_all_land_in_order() -> None:
    conn = FakeConnection()
    async with PipelinedCopy(conn, "trail", ["seq"]) as copy:  # type: ignore[arg-type]
        await copy.send([(0,), (1,)])
        assert conn.busy and conn.copied == []  # returned with the first chunk in flight
        conn.release.set()
        await copy.send([(2,)])
    assert conn.copied == [[(0,), (1,)], [(2,)]] and not conn.busy


async def test_a_failed_chunk_fails_the_copy() -> None:
    conn = FakeConnection(fail_on=0)
    conn.release.set()
    with pytest.raises(RuntimeError, match="no partition"):
        async with PipelinedCopy(conn, "trail", ["seq"]) as copy:  # type: ignore[arg-type]
            await copy.send([(0,)])
            await copy.send([(1,)])
    assert conn.copied == []


async def test_an_error_while_building_waits_for_the_chunk_in_flight() -> None:
    conn = FakeConnection(fail_on=0)
    asyncio.get_running_loop().call_later(0.01, conn.release.set)
    with pytest.raises(ValueError, match="while building"):
        async with PipelinedCopy(conn, "trail", ["seq"]) as copy:  # type: ignore[arg-type]
            await copy.send([(0,)])
            raise ValueError("while building the next chunk")
    assert not conn.busy  # the connection is free for the rollback; the chunk's own error is not raised
