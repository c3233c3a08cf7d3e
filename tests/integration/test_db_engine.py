"""An engine's connection found in a broken protocol state is dropped and the work retried.

After PostgreSQL went away and came back, the outbox relay's COMMIT met its connection still busy
with an earlier operation (asyncpg's InternalClientError "cannot switch to state 15; another
operation (2) is in progress"). SQLAlchemy kept that connection and the error was not judged
transient, so the relay job stopped for good and the instance failed its liveness (fault suite,
"PostgreSQL stopped 20 s"). Such a connection can never be used again, while the work can succeed
on a new one: the engine treats it as a disconnect, and the error as transient."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from onegrid.db import make_engine
from onegrid.kafka.policy import is_transient

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_commit_on_a_connection_still_busy_is_a_transient_disconnect(database_url: str) -> None:
    schema = f"t_busy_{uuid.uuid4().hex[:8]}"
    engine = make_engine(database_url.replace("postgresql://", "postgresql+asyncpg://"), schema, pool_size=1)
    try:
        caught: BaseException | None = None
        busy: asyncio.Task[object] | None = None
        try:
            async with engine.begin() as conn:
                await conn.execute(text("SELECT 1"))  # the transaction is open (BEGIN is sent lazily)
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                # an operation the connection has not finished, as one left behind by an outage
                busy = asyncio.create_task(raw._protocol.query("SELECT pg_sleep(0.5)", None))
                await asyncio.sleep(0.1)
        except Exception as exc:
            caught = exc
        assert caught is not None, "the COMMIT went through on a busy connection"
        assert "another operation" in str(caught), caught
        assert is_transient(caught), f"not judged transient: {caught!r}"
        assert getattr(caught, "connection_invalidated", False), "the broken connection went back to the pool"
        if busy is not None:
            await asyncio.gather(busy, return_exceptions=True)
        # the next unit of work gets a sound connection
        async with engine.begin() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
