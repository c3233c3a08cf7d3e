"""`python -m onegrid.migrate`, the step a deployment runs as a Job before the rollout, migrates one
service's schema on the session's PostgreSQL, and a second run changes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg


def run_migrate(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "onegrid.migrate", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def version_in(database_url: str, schema: str) -> str:
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return str(await conn.fetchval(f'SELECT version_num FROM "{schema}".alembic_version'))
    finally:
        await conn.close()


def test_migrate_runs_a_services_migrations_to_head_once(database_url: str) -> None:
    schema = f"t_migrate_{uuid.uuid4().hex[:8]}"
    first = run_migrate(database_url, "evaluation", "--schema", schema)
    assert first.returncode == 0, first.stderr
    assert f"schema {schema} migrated to head" in first.stdout
    head = asyncio.run(version_in(database_url, schema))
    assert head
    again = run_migrate(database_url, "evaluation", "--schema", schema)
    assert again.returncode == 0, again.stderr
    assert asyncio.run(version_in(database_url, schema)) == head


def test_migrate_names_what_is_missing() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "onegrid.migrate", "evaluation"], env=env, capture_output=True, text=True
    )
    assert out.returncode != 0 and "DATABASE_URL is not set" in out.stderr
