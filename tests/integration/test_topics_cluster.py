"""Topic management for a real cluster (issue 13.10), on the real broker: configs are altered
incrementally, keyed topics are not repartitioned without an explicit migration, min ISR is set."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from onegrid.kafka.admin import RepartitionRefused, ensure_topics
from onegrid.settings import KafkaSettings
from onegrid.topics import DAY_MS, TopicSpec


async def _config(kafka: KafkaSettings, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        out = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        return {c[0]: c[1] for resp in out for res in resp.resources for c in res[4]}
    finally:
        await admin.close()


async def _settled(kafka: KafkaSettings, topic: str, key: str, value: str) -> dict[str, str]:
    """The topic's config once `key` reads `value` (config changes reach the brokers asynchronously)."""
    for _ in range(50):
        cfg = await _config(kafka, topic)
        if cfg.get(key) == value:
            return cfg
        await asyncio.sleep(0.1)
    return cfg


async def _partitions(kafka: KafkaSettings, topic: str) -> int:
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        return len((await admin.describe_topics([topic]))[0]["partitions"])
    finally:
        await admin.close()


def _name(base: str) -> str:
    return f"t.{base}.{uuid.uuid4().hex[:10]}"


async def test_config_change_keeps_what_the_operator_set(kafka_settings: KafkaSettings) -> None:
    topic = _name("incremental")
    await ensure_topics(kafka_settings, [TopicSpec(topic, partitions=1, retention_ms=DAY_MS)])
    # An operator raises the message size limit by hand (the legacy AlterConfigs call sets all keys).
    admin = AIOKafkaAdminClient(**kafka_settings.client_kwargs())
    await admin.start()
    try:
        cfg = {"cleanup.policy": "delete", "retention.ms": str(DAY_MS), "max.message.bytes": "5000000"}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=cfg)])
    finally:
        await admin.close()
    assert (await _settled(kafka_settings, topic, "max.message.bytes", "5000000"))[
        "max.message.bytes"
    ] == "5000000"

    outcome = await ensure_topics(kafka_settings, [TopicSpec(topic, partitions=1, retention_ms=2 * DAY_MS)])
    assert outcome[topic] == "updated"
    after = await _settled(kafka_settings, topic, "retention.ms", str(2 * DAY_MS))
    assert after["retention.ms"] == str(2 * DAY_MS)
    assert after["max.message.bytes"] == "5000000"  # not reset to the broker default


async def test_keyed_and_compacted_topics_are_not_repartitioned_silently(
    kafka_settings: KafkaSettings,
) -> None:
    keyed, compacted, unkeyed = _name("keyed"), _name("compacted"), _name("unkeyed")
    await ensure_topics(
        kafka_settings,
        [
            TopicSpec(keyed, partitions=1),
            TopicSpec(compacted, partitions=1, compacted=True, keyed=False),
            TopicSpec(unkeyed, partitions=1, keyed=False),
        ],
    )
    for name, spec in (
        (keyed, TopicSpec(keyed, partitions=3)),
        (compacted, TopicSpec(compacted, partitions=3, compacted=True, keyed=False)),
    ):
        assert (await ensure_topics(kafka_settings, [spec]))[name] == "refused"
        with pytest.raises(RepartitionRefused, match=name):
            await ensure_topics(kafka_settings, [spec], strict=True)
        assert await _partitions(kafka_settings, name) == 1

    # An unkeyed topic may grow; a keyed one grows once it is named for migration.
    assert (await ensure_topics(kafka_settings, [TopicSpec(unkeyed, partitions=2, keyed=False)]))[
        unkeyed
    ] == "updated"
    assert await _partitions(kafka_settings, unkeyed) == 2
    migrating = kafka_settings.model_copy(update={"repartition": [keyed]})
    await ensure_topics(migrating, [TopicSpec(keyed, partitions=3)])
    assert await _partitions(kafka_settings, keyed) == 3


async def test_replication_min_isr_and_partitions_come_from_the_cluster_settings(
    kafka_settings: KafkaSettings,
) -> None:
    topic = _name("cluster")
    cluster = kafka_settings.model_copy(update={"topic_partitions": {topic: 4}})
    await ensure_topics(cluster, [TopicSpec(topic, partitions=2)])
    assert await _partitions(kafka_settings, topic) == 4
    assert (await _config(kafka_settings, topic))["min.insync.replicas"] == "1"
