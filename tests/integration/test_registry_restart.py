"""The registry's own view after a restart and with two instances (issue 13.1), on the real broker and
database: the view is read from the start of grid.registry.v1 by every instance, not resumed from a
consumer group's committed offset, so lookups and the summary answer the same on every instance."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from onegrid.settings import KafkaSettings

from .conftest import TopicFactory
from .test_registry_api import CITY, DISTRICT, area, division
from .test_registry_harness import running_registry

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_restarted_and_a_second_instance_see_the_whole_registry(
    database_url: str, kafka_settings: KafkaSettings
) -> None:
    topic = await TopicFactory(kafka_settings)("grid.registry", compacted=True)
    uid = uuid.uuid4().hex[:8]
    async with running_registry(database_url, kafka_settings, topic, uid=uid) as first:
        for code, body in [
            (CITY, division(CITY, "city", None, None)),
            (DISTRICT, division(DISTRICT, "district", CITY, area(119.2, 32.3, 119.5, 32.55))),
        ]:
            assert (await first.client.put(f"/v1/records/division/{code}", json=body)).status_code == 200
        await first.caught_up()
        before = (await first.client.get("/v1/summary")).json()
        assert before == {"division": 2}
        # A second instance of the same service, running beside the first.
        async with running_registry(database_url, kafka_settings, topic, uid=uid, instance_id="1") as second:
            await second.wait_for("division", DISTRICT, 1)
            assert (await second.client.get("/v1/summary")).json() == before
            assert (await second.client.get("/readyz")).status_code == 200
            assert (await first.client.get("/readyz")).status_code == 200

    # The same service restarted (same schema, same groups): nothing new is published.
    async with running_registry(database_url, kafka_settings, topic, uid=uid) as again:
        async with again.service.registry.store.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM outbox")) == 0
        await again.wait_for("division", DISTRICT, 1)
        assert (await again.client.get("/v1/summary")).json() == before
        found = await again.client.get("/v1/lookup/point", params={"lon": 119.3, "lat": 32.4})
        assert found.status_code == 200, found.text
