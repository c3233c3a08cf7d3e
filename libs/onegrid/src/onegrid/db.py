"""Async SQLAlchemy engines and per-service Alembic migrations.

Each service owns one PostgreSQL schema and keeps its Alembic version table inside it, so services
migrate independently in one database (or in separate ones: the URL is per service).
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from onegrid.kafka.policy import connection_busy


def server_settings(schema: str) -> dict[str, str]:
    """The session settings of every service connection (SQLAlchemy's and raw asyncpg pools alike):
    `schema` first on the search path, the schema as the application name, and a plan per execution.

    `plan_cache_mode = force_custom_plan`: the services' statements are batch statements whose
    parameters are arrays of a batch's keys (`= ANY($1)`, `unnest`), prepared once per connection.
    After five executions PostgreSQL may plan such a statement once for all (a generic plan), costed on
    the table as it is at that moment, and keep it while the table grows: rows added do not invalidate
    it, only an ANALYZE does. A table of a few hundred to a few thousand rows gets a sequential scan
    there whose filter compares every row with every key of the batch, unhashed (the keys are unknown
    when the plan is made): dispatch's read of a batch's message ids cost 40 µs a case at 6,000 rows
    that way, growing with the table, and 1.7 µs with a plan made for the keys. Planning each
    execution costs tens of microseconds per statement, not per row."""
    return {
        "search_path": f'"{schema}",public',
        "application_name": schema,
        "plan_cache_mode": "force_custom_plan",
    }


def make_engine(url: str, schema: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine whose connections use `schema` first on their search_path, and which drops a
    connection left in a broken protocol state (see `_unusable_is_a_disconnect`)."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": server_settings(schema)},
    )
    event.listen(engine.sync_engine, "handle_error", _unusable_is_a_disconnect)
    return engine


def _unusable_is_a_disconnect(ctx: ExceptionContext) -> None:
    """Treat such a connection as lost: SQLAlchemy invalidates it (instead of handing it out again)
    and the error says `connection_invalidated`, which `is_transient` takes as worth a retry."""
    if connection_busy(ctx.original_exception):
        ctx.is_disconnect = True


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _lock_key(schema: str) -> int:
    return int.from_bytes(hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True)


def _upgrade(url: str, schema: str, script_location: Path, to: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["url"] = url
    cfg.attributes["schema"] = schema
    command.upgrade(cfg, to)


async def migrate(url: str, schema: str, script_location: Path, *, to: str = "head") -> None:
    """Create the schema and run its migrations to head (or revision `to`, for tests of a migration);
    safe with several instances starting at once (an advisory lock serializes them)."""
    engine = create_async_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _lock_key(schema)})
            try:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                await conn.commit()
                # Alembic is synchronous; its env runs its own event loop in a worker thread.
                await asyncio.to_thread(_upgrade, url, schema, script_location, to)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(schema)})
                await conn.commit()
    finally:
        await engine.dispose()


def run_statements(script: str) -> None:
    """Run a migration's `;`-separated SQL one command per execute (asyncpg prepares each statement,
    and a prepared statement holds one command). Call it from a migration's upgrade or downgrade."""
    from alembic import op

    for statement in script.split(";"):
        if statement.strip():
            op.execute(statement)


def run_alembic_env() -> None:
    """The body of every service's `migrations/env.py` (online mode, async engine, own schema)."""
    from alembic import context
    from sqlalchemy.engine import Connection

    config = context.config
    url: str = config.attributes["url"]
    schema: str = config.attributes["schema"]

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'SET search_path TO "{schema}", public'))
        context.configure(
            connection=connection,
            target_metadata=None,
            version_table_schema=schema,
            include_schemas=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, pool_size=1)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run_async())
