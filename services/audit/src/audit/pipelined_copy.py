"""COPY in chunks, each one in flight while the caller prepares the next.

PostgreSQL inserts a COPY's rows (and updates the table's indexes) on its own process, while the writer
here waits; the writer's own work per row (describing, hashing, building the row) is the other half
of a batch's time. ``PipelinedCopy.send(rows)`` starts a chunk's COPY as a task on the connection and
returns: the caller builds the next chunk meanwhile, yielding to the event loop now and then
(``await asyncio.sleep(0)``) so the task can hand its rows to the server. One COPY at a time per
connection: ``send`` first waits for the chunk before. All chunks are in the caller's transaction, so
they commit or roll back together. Leaving the context waits for the last chunk; on an error it still
waits for the chunk in flight (the connection is then free for the rollback), and the first error is
the one raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import asyncpg


class PipelinedCopy:
    def __init__(self, conn: asyncpg.Connection, table: str, columns: Sequence[str]) -> None:
        self._conn = conn
        self._table = table
        self._columns = list(columns)
        self._pending: asyncio.Future[Any] | None = None

    async def send(self, rows: list[tuple[Any, ...]]) -> None:
        """Start COPYing ``rows`` once the chunk before is in; returns while they are in flight."""
        await self._settle()
        if rows:
            self._pending = asyncio.ensure_future(
                self._conn.copy_records_to_table(self._table, records=rows, columns=self._columns)
            )
            await asyncio.sleep(0)  # the task sends the COPY statement before the caller computes on

    async def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def __aenter__(self) -> PipelinedCopy:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            await self._settle()
            return
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: the error already raised is the one that counts
