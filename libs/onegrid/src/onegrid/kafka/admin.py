"""Topics created or updated idempotently, and consumer lag for `make status` and the console."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidPartitionsError, TopicAlreadyExistsError

from onegrid.kafka.incremental import set_topic_configs
from onegrid.settings import KafkaSettings
from onegrid.topics import TopicSpec

log = logging.getLogger(__name__)


class RepartitionRefused(RuntimeError):
    """A keyed or compacted topic would get more partitions without an explicit migration."""


async def ensure_topics(
    kafka: KafkaSettings, specs: Iterable[TopicSpec], *, strict: bool = False
) -> dict[str, str]:
    """Create missing topics, set the configs the specs name (incrementally: other keys are left as
    the operator set them) and grow partition counts that are too low.

    Replication, `min.insync.replicas` and partition counts come from `kafka` (the cluster's
    settings) where a spec does not fix them. Growing a keyed or compacted topic moves its keys to
    other partitions, so it is refused unless the topic is listed in `kafka.repartition` (the
    explicit migration): logged as an error with the outcome "refused" (a service naming another's
    topic still starts), or raised as `RepartitionRefused` with `strict` (the stack's own topic set-up).
    Returns {topic: "created" | "updated" | "unchanged" | "refused"}; a second call returns the same
    but with "unchanged" for what was created or updated. Returns {} without contacting Kafka when
    topics are managed outside (`kafka.manage_topics`).
    """
    if not kafka.manage_topics:
        return {}
    specs = [
        s.on_cluster(
            replication=kafka.replication_factor,
            min_insync_replicas=kafka.min_insync_replicas,
            partitions=kafka.topic_partitions,
        )
        for s in specs
    ]
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
            refused = {
                s.name: f"{s.name} ({parts.get(s.name)} -> {s.partitions})"
                for s in old
                if s.name in grow and (s.keyed or s.compacted) and s.name not in kafka.repartition
            }
            if refused:
                message = (
                    "refusing to add partitions to keyed or compacted topics (keys would move to other "
                    f"partitions): {', '.join(refused.values())}; list them in ONEGRID_KAFKA_REPARTITION "
                    "to migrate"
                )
                if strict:
                    raise RepartitionRefused(message)
                log.error(message)
                for name in refused:
                    del grow[name]
            for s in old:
                if parts.get(s.name, 0) > s.partitions:
                    log.warning(
                        "%s has %d partitions, more than the %d asked", s.name, parts[s.name], s.partitions
                    )

            resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in old]
            current = await admin.describe_configs(resources)
            have: dict[str, dict[str, str]] = {}
            for resp in current:
                for res in resp.resources:
                    have[res[3]] = {c[0]: c[1] for c in res[4]}
            changes = {
                s.name: {k: v for k, v in s.config().items() if have.get(s.name, {}).get(k) != v} for s in old
            }
            changes = {name: cfg for name, cfg in changes.items() if cfg}
            await set_topic_configs(admin, changes)
            if grow:
                try:
                    await admin.create_partitions(grow)
                except InvalidPartitionsError:
                    pass  # grown concurrently by another starter to the same count: fine
            for s in old:
                changed = s.name in grow or s.name in changes
                outcome[s.name] = "refused" if s.name in refused else "updated" if changed else "unchanged"
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


async def partition_counts(kafka: KafkaSettings, topics: Iterable[str]) -> dict[str, int]:
    """How many partitions each of `topics` has (they must exist)."""
    wanted = list(topics)
    if not wanted:
        return {}
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        described = await admin.describe_topics(wanted)
    finally:
        await admin.close()
    out = {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
    missing = [t for t in wanted if not out.get(t)]
    if missing:
        raise LookupError(f"topics {missing} do not exist")
    return out


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


__all__ = [
    "PartitionLag",
    "RepartitionRefused",
    "TopicPartition",
    "broker_ready",
    "consumer_lag",
    "ensure_topics",
]


class WrittenEnds:
    """Each partition's end counting every record written, committed or not (its high watermark).

    A consumer reading committed records stops at a partition's *last stable offset*: the first
    offset of any transaction still open, whoever opened it. On a topic several producers write, an
    instance killed mid-transaction holds it there until its partition's next owner fences it, and
    everything committed after that offset by others stays unread meanwhile. A reader that must
    have seen all that was committed before some moment (a handover, a ledger judgement) reads to
    these ends instead: it passes the open transaction only once it ends, so reaching them means
    every transaction written before is resolved and read. One read-uncommitted consumer, no group,
    started on first use."""

    def __init__(self, kafka: KafkaSettings, *, client_id: str) -> None:
        self._kafka = kafka
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        # Two loops' handovers may ask at once: one consumer is started, not one each.
        self._starting = asyncio.Lock()

    async def of(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        async with self._starting:
            if self._consumer is None:
                c = AIOKafkaConsumer(
                    client_id=self._client_id,
                    enable_auto_commit=False,
                    isolation_level="read_uncommitted",
                    **self._kafka.client_kwargs(),
                )
                await c.start()
                self._consumer = c
            consumer = self._consumer
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(partitions))
        return ends

    async def close(self) -> None:
        if self._consumer is not None:
            c, self._consumer = self._consumer, None
            await c.stop()
