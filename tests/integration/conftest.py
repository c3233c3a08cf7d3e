"""One real Kafka broker (KRaft) and one real PostgreSQL per test session; unique topics per test.

A test module that runs the whole system (every service under its standard topic names, consumer
groups and schemas, as `make up` does) takes `system_ground` instead: a broker and a database of its
own, so what one such module filed (cases, correlation state, committed offsets) is not there for the
next one. A broker starts in about 3 s.

Set ONEGRID_TEST_KAFKA_BOOTSTRAP to use a running cluster, DATABASE_URL to use a running server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer

from devstack.kafka import KafkaBroker
from devstack.paths import free_port
from devstack.postgres import LocalPostgres
from onegrid.kafka.admin import ensure_topics
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("ONEGRID_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port())
    broker.start()
    try:
        asyncio.run(broker.wait_ready())
        yield broker.bootstrap
    finally:
        broker.stop()


def pg_home() -> Path:
    """A private folder for a local PostgreSQL, outside pytest's temp root: every pytest session
    started on the machine chmods /tmp/pytest-of-<user> to 0700, which would take from the server's
    user (not us, when we are root) the way to its data while another session runs."""
    return Path(tempfile.mkdtemp(prefix="onegrid-pg-"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    home = pg_home()
    pg = LocalPostgres(home / "data", port=free_port(), database="onegrid_test")
    pg.start()
    try:
        yield pg.url
    finally:
        pg.stop()
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class Ground:
    """Where a whole system runs: a Kafka bootstrap and a PostgreSQL URL nobody else writes to."""

    kafka_bootstrap: str
    database_url: str


@pytest.fixture(scope="module")
def system_ground(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ground]:
    """A fresh broker and a fresh database (on the session's server) for one module's whole system.
    With ONEGRID_TEST_KAFKA_BOOTSTRAP set the given cluster is shared, and such modules may then see
    each other's cases."""
    database = f"onegrid_sys_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_database(database_url, database))
    url = urlsplit(database_url)._replace(path=f"/{database}").geturl()
    external = os.environ.get("ONEGRID_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield Ground(external, url)
        return
    broker = KafkaBroker(
        tmp_path_factory.mktemp("kafka-system"), port=free_port(), controller_port=free_port()
    )
    broker.start()
    try:
        asyncio.run(broker.wait_ready())
        yield Ground(broker.bootstrap, url)
    finally:
        broker.stop()


async def _create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest_asyncio.fixture(loop_scope="session")
async def topics(kafka_settings: KafkaSettings) -> AsyncIterator[TopicFactory]:
    yield TopicFactory(kafka_settings)


class TopicFactory:
    """Creates topics whose names are unique to the test, so tests never see each other's data."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka

    async def __call__(self, base: str, partitions: int = 1, **kw: object) -> str:
        name = f"t.{base}.{uuid.uuid4().hex[:10]}"
        await ensure_topics(self.kafka, [TopicSpec(name, partitions=partitions, **kw)])  # type: ignore[arg-type]
        return name


async def read_all(
    kafka: KafkaSettings,
    topic: str,
    *,
    expect: int | None = None,
    timeout_s: float = 30.0,
    isolation_level: str = "read_committed",
) -> list:
    """Every record of `topic` (committed transactions only), waiting until `expect` have arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        **kafka.client_kwargs(),
    )
    await consumer.start()
    out: list = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        idle_rounds = 0
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            got = [r for rs in batch.values() for r in rs]
            out.extend(got)
            if expect is not None and len(out) >= expect:
                # keep reading briefly: more than expected is a failure we want to see
                idle_rounds += 1 if not got else 0
                if idle_rounds >= 3:
                    break
            elif expect is None:
                idle_rounds += 1 if not got else 0
                if idle_rounds >= 3:
                    break
        return out
    finally:
        await consumer.stop()
