"""A department's orders topic exists from its registration on, before any case reaches it, and
outlives its retirement: an integrator can subscribe first and never loses the topic."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from onegrid.settings import KafkaSettings

from .test_registry_harness import running_registry

pytestmark = pytest.mark.asyncio(loop_scope="session")

CITY, DISTRICT = "321000", "321003"


async def topic_names(kafka: KafkaSettings) -> set[str]:
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def listed(kafka: KafkaSettings, name: str, timeout_s: float = 10.0) -> bool:
    """Whether the brokers list ``name`` (their metadata follows the controller within moments)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while name not in await topic_names(kafka):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def department(active: bool = True) -> dict[str, Any]:
    # Our own record of the class: 邗江区 水利局, registered by the city's operators.
    return {
        "name": "邗江区水利局",
        "active": active,
        "tier": "district",
        "division_code": DISTRICT,
        "parent_code": None,
        "category_codes": [],
    }


async def test_registering_a_department_creates_its_topic_and_retiring_keeps_it(
    database_url: str, kafka_settings: KafkaSettings, topics: Any
) -> None:
    changelog = await topics("grid.registry", compacted=True)
    pattern = f"t.{uuid.uuid4().hex[:8]}.dispatch.orders.{{department}}.v1"
    async with running_registry(database_url, kafka_settings, changelog, orders_topic=pattern) as running:
        c = running.client
        city = {"name": "扬州市", "active": True, "level": "city", "parent_code": None, "area": None}
        district = {"name": "邗江区", "active": True, "level": "district", "parent_code": CITY, "area": None}
        assert (await c.put(f"/v1/records/division/{CITY}", json=city)).status_code == 200
        assert (await c.put(f"/v1/records/division/{DISTRICT}", json=district)).status_code == 200
        name = pattern.format(department="hj_shuili")
        assert name not in await topic_names(kafka_settings)
        r = await c.put("/v1/records/department/hj_shuili", json=department())
        assert r.status_code == 200, r.text
        assert await listed(kafka_settings, name)  # created by the registration itself
        r = await c.put("/v1/records/department/hj_shuili", json=department(active=False))
        assert r.status_code == 200, r.text
        assert (await c.delete("/v1/records/department/hj_shuili")).status_code == 204
        assert name in await topic_names(kafka_settings)  # retired and deleted: the topic stays


async def test_the_seeded_departments_have_their_topics_after_start(
    database_url: str, kafka_settings: KafkaSettings, topics: Any
) -> None:
    from grid_registry.domain.seed import DEFAULT_SEED, seed_records

    seeded = sorted(r["code"] for r in seed_records(DEFAULT_SEED) if r["kind"] == "department")
    changelog = await topics("grid.registry", compacted=True)
    pattern = f"t.{uuid.uuid4().hex[:8]}.dispatch.orders.{{department}}.v1"
    async with running_registry(database_url, kafka_settings, changelog, seed=True, orders_topic=pattern):
        names = await topic_names(kafka_settings)
        assert len(seeded) > 5
        assert [d for d in seeded if pattern.format(department=d) not in names] == []
