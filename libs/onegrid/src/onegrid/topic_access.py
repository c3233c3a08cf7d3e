"""Who reads and writes which topic, service by service: derived from the topic catalogue.

The catalogue (`onegrid.topics`) says of every topic who owns it and who reads it; this adds what is
a service's own, not a topic's: its consumer groups (one per consumer loop), whether it writes in
transactions, and whether it describes every topic (the console's throughput and lag pages). Kafka
ACLs are generated from it (deploy/k8s), so a service can write only the topics it owns, and a unit
test checks it against each service's wiring (tests/unit/onegrid/test_topic_access.py).

A `Topics` entry is a topic name, or a prefix (`prefix("legacy.")`) for families of topics: the
per-department orders topics, and the feeds a legacy network's gateway may publish.
"""

from __future__ import annotations

from dataclasses import dataclass

from onegrid.topics import (
    CASE_LIFECYCLE,
    CASES,
    DEPARTMENTS,
    DISPATCH_FEEDBACK,
    GRID_REGISTRY,
    INTAKE_CORRELATE,
    LEGACY_GATEWAYS,
    dispatch_orders_topic,
    legacy_feeds,
    orders_topic_prefix,
    read_by,
    written_by,
)

LEGACY_PREFIX = "legacy."
DISPATCH_ORDERS_PREFIX = orders_topic_prefix()


@dataclass(frozen=True)
class TopicName:
    """One topic, or every topic whose name starts with `name` when `is_prefix`."""

    name: str
    is_prefix: bool = False

    def matches(self, topic: str) -> bool:
        return topic.startswith(self.name) if self.is_prefix else topic == self.name


def prefix(name: str) -> TopicName:
    return TopicName(name, is_prefix=True)


def topics(*names: str | TopicName) -> tuple[TopicName, ...]:
    return tuple(n if isinstance(n, TopicName) else TopicName(n) for n in names)


@dataclass(frozen=True)
class ConsumerGroup:
    """A consumer loop's group `<service>.<loop>` and the topics it subscribes (none: by pattern)."""

    loop: str
    topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopicAccess:
    """A service's topics. Its consumer groups and transactional ids are named `<service>.<loop>...`
    (onegrid.wiring), so they are granted by the prefix `<service>.`."""

    service: str
    reads: tuple[TopicName, ...]
    writes: tuple[TopicName, ...]
    # Exactly-once loops: transactional producers, ids `<service>.<loop>.<instance>`.
    transactional: bool = False
    # Describes every topic and consumer group (throughput and lag pages), reads none of them.
    describes_all: bool = False
    groups: tuple[ConsumerGroup, ...] = ()
    # Publishes a transactional outbox (onegrid.outbox): the relay's transactional id and consumer
    # group are `<service>.outbox.<schema>.<table>`, shared by the instances (each fences the last).
    outbox: bool = False

    @property
    def outbox_prefix(self) -> str:
        return f"{self.service}.outbox."

    def group_id(self, group: ConsumerGroup) -> str:
        return f"{self.service}.{group.loop}"

    def may_read(self, topic: str) -> bool:
        return any(t.matches(topic) for t in self.reads)

    def may_write(self, topic: str) -> bool:
        return any(t.matches(topic) for t in self.writes)


LEGACY_FEEDS = tuple(legacy_feeds())


def _of(
    service: str,
    *,
    reads: tuple[TopicName, ...] = (),
    writes: tuple[TopicName, ...] = (),
    transactional: bool = False,
    describes_all: bool = False,
    groups: tuple[ConsumerGroup, ...] = (),
    outbox: bool = False,
) -> TopicAccess:
    """A service's access: the catalogue's topics it reads and writes, and the families given."""
    return TopicAccess(
        service,
        reads=topics(*(spec.name for spec in read_by(service)), *reads),
        writes=topics(*(spec.name for spec in written_by(service)), *writes),
        transactional=transactional,
        describes_all=describes_all,
        groups=groups,
        outbox=outbox,
    )


SERVICE_TOPICS: tuple[TopicAccess, ...] = (
    # The registry publishes its changelog from its outbox and follows it for its own lookups (a
    # global table read from the start by every instance: no consumer group).
    _of("grid-registry", outbox=True),
    # Legacy records in, case events out in one transaction; its state changelog. The ledger:
    # accounts written with the outputs, read back beside the feeds and the set-aside copies. Its
    # correlation stage: records forwarded by region, decided by the region's partition owner.
    _of(
        "intake",
        transactional=True,
        groups=(ConsumerGroup("legacy", LEGACY_FEEDS), ConsumerGroup("correlate", (INTAKE_CORRELATE,))),
    ),
    # Residents' requests taken over HTTP are published raw to their feed; the status follows the
    # case each went to (cases.v1) and that case's lifecycle.
    _of("open311", groups=(ConsumerGroup("cases", (CASES,)), ConsumerGroup("status", (CASE_LIFECYCLE,)))),
    _of(
        "dispatch",
        writes=(prefix(DISPATCH_ORDERS_PREFIX),),
        groups=(ConsumerGroup("inbox", (CASES, DISPATCH_FEEDBACK)),),
        outbox=True,  # orders and lifecycle events
    ),
    # The wire tap reads every audited topic of the catalogue and every department's orders.
    _of("audit", reads=(prefix(DISPATCH_ORDERS_PREFIX),), groups=(ConsumerGroup("wiretap"),)),
    _of(
        "evaluation",
        groups=(
            ConsumerGroup("projector", (CASE_LIFECYCLE,)),
            ConsumerGroup("lake", (CASE_LIFECYCLE,)),  # the lake sink (ONEGRID_EVALUATION_LAKE_URL)
            ConsumerGroup("dimensions", (GRID_REGISTRY,)),  # the registry's versions, for BI
        ),
    ),
    # The console follows dead letters, quarantine, cases, lifecycle and the registry, reads the
    # newest record of each legacy feed (its headers name the bridge it came through), and replays a
    # quarantined record onto the legacy topic it came from.
    _of("console", describes_all=True),
    # The bridges write the legacy feeds as their networks send them (no consumer groups).
    _of("bridges"),
)


def access_of(service: str) -> TopicAccess:
    for a in SERVICE_TOPICS:
        if a.service == service:
            return a
    raise KeyError(f"no topic access declared for service {service!r}")


# Outside the services: the legacy networks' gateways publish their feeds; each department's system
# reads its own orders and answers on the feedback topic.
LEGACY_GATEWAY = TopicAccess(LEGACY_GATEWAYS, reads=(), writes=topics(prefix(LEGACY_PREFIX)))


def department_access(department_code: str) -> TopicAccess:
    return TopicAccess(
        f"department-{department_code}",
        reads=topics(dispatch_orders_topic(department_code)),
        writes=topics(*(spec.name for spec in written_by(DEPARTMENTS))),
    )
