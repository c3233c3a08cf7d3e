"""Topics created or updated idempotently, and consumer lag for `make status` and the console."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidPartitionsError, TopicAlreadyExistsError

from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

log = logging.getLogger(__name__)


async def ensure_topics(kafka: KafkaSettings, specs: Iterable[TopicSpec]) -> dict[str, str]:
    """Create missing topics, raise partition counts that are too low, and set configs.

    Returns {topic: "created" | "updated" | "unchanged"}; a second call returns all "unchanged".
    Returns {} without contacting Kafka when topics are managed outside (`kafka.manage_topics`).
    """
    if not kafka.manage_topics:
        return {}
    specs = list(specs)
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        outcome: dict[str, str] = {}
        new = [s for s in specs if s.name not in existing]
        if new:
            try:
                await admin.create_topics(
                    [NewTopic(s.name, s.partitions, s.replication, topic_configs=s.config()) for s in new]
                )
            except TopicAlreadyExistsError:
                pass  # created concurrently by another starter: fine
            outcome.update({s.name: "created" for s in new})
        old = [s for s in specs if s.name in existing]
        if old:
            described = await admin.describe_topics([s.name for s in old])
            parts = {d["topic"]: len(d["partitions"]) for d in described}
            grow = {s.name: NewPartitions(s.partitions) for s in old if parts.get(s.name, 0) < s.partitions}
            if grow:
                try:
                    await admin.create_partitions(grow)
                except InvalidPartitionsError:
                    pass  # grown concurrently by another starter to the same count: fine

            resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in old]
            current = await admin.describe_configs(resources)
            have: dict[str, dict[str, str]] = {}
            for resp in current:
                for res in resp.resources:
                    have[res[3]] = {c[0]: c[1] for c in res[4]}
            changes = [
                ConfigResource(ConfigResourceType.TOPIC, s.name, configs=s.config())
                for s in old
                if any(have.get(s.name, {}).get(k) != v for k, v in s.config().items())
            ]
            if changes:
                await admin.alter_configs(changes)
            for s in old:
                changed = s.name in grow or any(c.name == s.name for c in changes)
                outcome[s.name] = "updated" if changed else "unchanged"
        return outcome
    finally:
        await admin.close()


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


async def consumer_lag(kafka: KafkaSettings, groups: Iterable[str] | None = None) -> list[PartitionLag]:
    """Committed offset versus end offset for every partition every group has committed."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    probe = AIOKafkaConsumer(**kafka.client_kwargs())
    await admin.start()
    await probe.start()
    try:
        if groups is None:
            groups = [g[0] for g in await admin.list_consumer_groups()]
        rows: list[PartitionLag] = []
        for group in sorted(groups):
            committed = await admin.list_consumer_group_offsets(group)
            tps = list(committed)
            if not tps:
                continue
            ends = await probe.end_offsets(tps)
            for tp in sorted(tps, key=lambda t: (t.topic, t.partition)):
                meta = committed[tp]
                off = meta.offset if meta is not None and meta.offset >= 0 else None
                rows.append(PartitionLag(group, tp.topic, tp.partition, off, ends.get(tp, 0)))
        return rows
    finally:
        await probe.stop()
        await admin.close()


async def broker_ready(kafka: KafkaSettings, timeout_ms: int = 2000) -> bool:
    """True when the cluster answers a metadata request (not merely when the port is open)."""
    admin = AIOKafkaAdminClient(request_timeout_ms=timeout_ms, **kafka.client_kwargs())
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a refused connection is the answer here, not an error
    try:
        await admin.start()
        info = await admin.describe_cluster()
        return bool(info.get("brokers"))
    except Exception:
        return False
    finally:
        quiet.setLevel(level)
        try:
            await admin.close()
        except Exception:
            pass


__all__ = ["PartitionLag", "TopicPartition", "broker_ready", "consumer_lag", "ensure_topics"]
