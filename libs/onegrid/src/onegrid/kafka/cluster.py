"""What a cluster looks like right now: brokers, partition leaders and in-sync replicas, group members.

For `make status`, the fault suite (which broker leads most partitions) and operators' tools; read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from onegrid.settings import KafkaSettings


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int  # -1: no leader (every replica is down or out of sync)
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)


@dataclass(frozen=True)
class GroupMember:
    group: str
    member_id: str
    client_id: str
    host: str
    partitions: tuple[tuple[str, int], ...]


@dataclass
class GroupState:
    group: str
    state: str
    members: list[GroupMember] = field(default_factory=list)


async def cluster_brokers(kafka: KafkaSettings) -> dict[int, str]:
    """{node id: host:port} of the brokers the cluster reports as alive."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        info = await admin.describe_cluster()
        return {int(b["node_id"]): f"{b['host']}:{b['port']}" for b in info.get("brokers", [])}
    finally:
        await admin.close()


async def partition_states(kafka: KafkaSettings, topics: Iterable[str] | None = None) -> list[PartitionState]:
    """Leader, replicas and ISR of every partition of `topics` (default: every non-internal topic)."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        names = (
            sorted(topics)
            if topics is not None
            else sorted(t for t in await admin.list_topics() if not t.startswith("__"))
        )
        if not names:
            return []
        out: list[PartitionState] = []
        for t in await admin.describe_topics(names):
            for p in t["partitions"]:
                out.append(
                    PartitionState(
                        t["topic"],
                        int(p["partition"]),
                        int(p["leader"]),
                        tuple(int(r) for r in p["replicas"]),
                        tuple(int(r) for r in p["isr"]),
                    )
                )
        return sorted(out, key=lambda s: (s.topic, s.partition))
    finally:
        await admin.close()


def leader_counts(states: Iterable[PartitionState]) -> dict[int, int]:
    """How many partitions each broker leads."""
    counts: dict[int, int] = {}
    for s in states:
        if s.leader >= 0:
            counts[s.leader] = counts.get(s.leader, 0) + 1
    return counts


async def group_states(kafka: KafkaSettings, groups: Iterable[str] | None = None) -> list[GroupState]:
    """Every consumer group (or `groups`) with its state and members, and what each member holds."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        names = (
            sorted(groups) if groups is not None else sorted(g[0] for g in await admin.list_consumer_groups())
        )
        out: list[GroupState] = []
        for name in names:
            for resp in await admin.describe_consumer_groups([name]):
                for g in resp.to_object()["groups"]:
                    gs = GroupState(g["group"], g["state"])
                    for m in g["members"]:
                        parts: list[tuple[str, int]] = []
                        raw = m.get("member_assignment") or b""
                        if raw:
                            assigned = ConsumerProtocolMemberAssignment.decode(raw).partitions()
                            parts += [(tp.topic, tp.partition) for tp in assigned]
                        gs.members.append(
                            GroupMember(
                                name, m["member_id"], m["client_id"], m["client_host"], tuple(sorted(parts))
                            )
                        )
                    out.append(gs)
        return out
    finally:
        await admin.close()
