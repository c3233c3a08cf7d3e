"""Who reads and writes which topic of the catalogue (`onegrid.topics`), service by service.

The catalogue says what a topic is; this says whose it is. Kafka ACLs are generated from it
(deploy/k8s), so a service can write only the topics listed here as its own, and a unit test checks
it against each service's wiring (tests/unit/onegrid/test_topic_access.py). Kept beside the
catalogue, in the same terms, so that the two can later become one table.

A `Topics` entry is a topic name, or a prefix (`prefix("legacy.")`) for families of topics: the
legacy feeds and the per-department orders topics.
"""

from __future__ import annotations

from dataclasses import dataclass

from onegrid.topics import (
    AUDIT_DLQ,
    AUDIT_HEADS,
    CASE_LIFECYCLE,
    CASES,
    DISPATCH_DLQ,
    DISPATCH_FEEDBACK,
    EVALUATION_DLQ,
    GRID_REGISTRY,
    INTAKE_CORRELATE,
    INTAKE_DLQ,
    INTAKE_LEDGER,
    INTAKE_QUARANTINE,
    INTAKE_STATE,
    LEGACY_EMERGENCY_CAP,
    LEGACY_ENV_HJ212,
    LEGACY_OPEN311,
    LEGACY_PARTY,
    LEGACY_SAFETY,
    dispatch_orders_topic,
)

LEGACY_PREFIX = "legacy."
DISPATCH_ORDERS_PREFIX = "dispatch.orders."


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

    def group_id(self, group: ConsumerGroup) -> str:
        return f"{self.service}.{group.loop}"

    def may_read(self, topic: str) -> bool:
        return any(t.matches(topic) for t in self.reads)

    def may_write(self, topic: str) -> bool:
        return any(t.matches(topic) for t in self.writes)


LEGACY_FEEDS = (LEGACY_ENV_HJ212, LEGACY_EMERGENCY_CAP, LEGACY_SAFETY, LEGACY_PARTY, LEGACY_OPEN311)

SERVICE_TOPICS: tuple[TopicAccess, ...] = (
    # The registry publishes its changelog from its outbox and follows it for its own lookups (a
    # global table read from the start by every instance: no consumer group).
    TopicAccess(
        "grid-registry",
        reads=topics(GRID_REGISTRY),
        writes=topics(GRID_REGISTRY),
    ),
    # Legacy records in, case events out in one transaction; its state changelog; Open311 requests
    # taken over HTTP are published raw to their feed; the status followers read cases and lifecycle.
    # The ledger: accounts written with the outputs, read back beside the feeds and the set-aside copies.
    # Its correlation stage: records forwarded by region, decided by the region's partition owner.
    TopicAccess(
        "intake",
        reads=topics(
            *LEGACY_FEEDS,
            CASES,
            INTAKE_STATE,
            GRID_REGISTRY,
            CASE_LIFECYCLE,
            INTAKE_LEDGER,
            INTAKE_DLQ,
            INTAKE_QUARANTINE,
            INTAKE_CORRELATE,
        ),
        writes=topics(
            CASES,
            INTAKE_STATE,
            INTAKE_DLQ,
            INTAKE_QUARANTINE,
            LEGACY_OPEN311,
            INTAKE_LEDGER,
            INTAKE_CORRELATE,
        ),
        transactional=True,
        groups=(
            ConsumerGroup("legacy", LEGACY_FEEDS),
            ConsumerGroup("correlate", (INTAKE_CORRELATE,)),
            ConsumerGroup("open311-cases", (CASES,)),
            ConsumerGroup("open311-status", (CASE_LIFECYCLE,)),
        ),
    ),
    TopicAccess(
        "dispatch",
        reads=topics(CASES, DISPATCH_FEEDBACK, GRID_REGISTRY),
        writes=topics(CASE_LIFECYCLE, prefix(DISPATCH_ORDERS_PREFIX), DISPATCH_DLQ),
        groups=(ConsumerGroup("inbox", (CASES, DISPATCH_FEEDBACK)),),
    ),
    # The wire tap reads every topic of the system except its own heads.
    TopicAccess(
        "audit",
        reads=topics(
            prefix(LEGACY_PREFIX),
            CASES,
            INTAKE_DLQ,
            INTAKE_QUARANTINE,
            prefix(DISPATCH_ORDERS_PREFIX),
            DISPATCH_FEEDBACK,
            CASE_LIFECYCLE,
            GRID_REGISTRY,
        ),
        writes=topics(AUDIT_HEADS, AUDIT_DLQ),
        groups=(ConsumerGroup("wiretap"),),
    ),
    TopicAccess(
        "evaluation",
        reads=topics(CASE_LIFECYCLE, GRID_REGISTRY),
        writes=topics(EVALUATION_DLQ),
        groups=(
            ConsumerGroup("projector", (CASE_LIFECYCLE,)),
            ConsumerGroup("lake", (CASE_LIFECYCLE,)),  # the lake sink (ONEGRID_EVALUATION_LAKE_URL)
            ConsumerGroup("dimensions", (GRID_REGISTRY,)),  # the registry's versions, for BI
        ),
    ),
    # The console follows dead letters, quarantine, cases, lifecycle and the registry, reads the
    # newest record of each legacy feed (its headers name the bridge it came through), and replays a
    # quarantined record onto the legacy topic it came from.
    TopicAccess(
        "console",
        reads=topics(
            INTAKE_DLQ, INTAKE_QUARANTINE, CASE_LIFECYCLE, CASES, GRID_REGISTRY, prefix(LEGACY_PREFIX)
        ),
        writes=topics(prefix(LEGACY_PREFIX)),
        describes_all=True,
    ),
    # The bridges write the legacy feeds as their networks send them (no consumer groups).
    TopicAccess(
        "bridges",
        reads=(),
        writes=topics(LEGACY_ENV_HJ212, LEGACY_EMERGENCY_CAP, LEGACY_SAFETY, LEGACY_PARTY),
    ),
)


def access_of(service: str) -> TopicAccess:
    for a in SERVICE_TOPICS:
        if a.service == service:
            return a
    raise KeyError(f"no topic access declared for service {service!r}")


# Outside the services: the legacy networks' gateways publish their feeds; each department's system
# reads its own orders and answers on the feedback topic.
LEGACY_GATEWAY = TopicAccess("legacy-gateway", reads=(), writes=topics(prefix(LEGACY_PREFIX)))


def department_access(department_code: str) -> TopicAccess:
    return TopicAccess(
        f"department-{department_code}",
        reads=topics(dispatch_orders_topic(department_code)),
        writes=topics(DISPATCH_FEEDBACK),
    )
