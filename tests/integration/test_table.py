"""GlobalTable on the real broker: catch up with a compacted topic, then follow live changes."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from onegrid.kafka.table import GlobalTable
from registry_client import RegistryView


async def test_catch_up_then_follow(kafka_settings, topics) -> None:
    topic = await topics("table", partitions=2, compacted=True)
    p = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await p.start()
    for i in range(50):
        await p.send(topic, b'{"code": "%d"}' % i, key=b"department:d%d" % i)
    await p.send(topic, None, key=b"department:d7")  # tombstone
    await p.flush()
    view = RegistryView()
    table = GlobalTable(kafka_settings, topic, view.handle)
    assert await table.catch_up() == 51
    assert len(view.all("department")) == 49 and view.get("department", "d7") is None
    task = asyncio.create_task(table.follow())
    await p.send_and_wait(topic, b'{"code": "new"}', key=b"department:new")
    await p.stop()
    for _ in range(100):
        if view.get("department", "new"):
            break
        await asyncio.sleep(0.1)
    table.stop()
    await task
    assert view.get("department", "new") == {"code": "new"}


async def test_a_table_only_caught_up_closes_its_consumer(kafka_settings, topics) -> None:
    topic = await topics("table-close", partitions=1, compacted=True)
    p = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await p.start()
    await p.send_and_wait(topic, b'{"code": "a"}', key=b"department:a")
    await p.stop()
    table = GlobalTable(kafka_settings, topic, RegistryView().handle)
    assert await table.catch_up() == 1
    consumer = await table._start()
    await table.close()
    assert consumer._closed  # aiokafka's own flag: stop() ran (no "Unclosed AIOKafkaConsumer" at exit)
