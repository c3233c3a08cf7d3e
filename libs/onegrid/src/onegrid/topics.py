"""The topic catalogue: the one place where a topic's facts are written.

Each topic has its name, partitions, retention and cleanup policy, and what the rest of the system
derives from: the one service that writes it (`owner`), the services that read it (`readers`; the
audit tap reads every topic marked `audited` and is not listed), what its key is (`key`: per-key
order, co-partitioned state), whether it carries personal data, its role (data, or a service's dead
letters or quarantine) and, for a legacy feed, the format intake parses it as (`feed`). Derived from
it: each service's topic access and so the Kafka ACLs (`onegrid.topic_access`, deploy/k8s), the
audit tap's subscription and trust, the console's followed topics, intake's feeds, each service's own
topic specs and dead-letter topics. Names are a public interface (departments and BI integrate
against them); contracts/asyncapi.yaml describes the same topics and a contract test keeps the two in
step (tests/contract/test_asyncapi.py). No other module spells a topic's name
(tests/unit/onegrid/test_topic_names.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

DAY_MS = 24 * 3600 * 1000

LEGACY_ENV_HJ212 = "legacy.env.hj212.v1"
LEGACY_EMERGENCY_CAP = "legacy.emergency.cap.v1"
LEGACY_SAFETY = "legacy.safety.v1"
LEGACY_PARTY = "legacy.party.v1"
LEGACY_OPEN311 = "legacy.open311.v1"
# Grid workers' patrol reports from the phone app (console /worker/), photos by content hash.
LEGACY_PATROL = "legacy.patrol.v1"
CASES = "cases.v1"
INTAKE_DLQ = "intake.dlq.v1"
INTAKE_QUARANTINE = "intake.quarantine.v1"
DISPATCH_DLQ = "dispatch.dlq.v1"
EVALUATION_DLQ = "evaluation.dlq.v1"
OPEN311_DLQ = "open311.dlq.v1"
# Records the wire tap cannot store (its own failure, not the record's): kept for a replay.
AUDIT_DLQ = "audit.dlq.v1"
# Internal: intake's own state changelog (HJ 212 episodes per station), written in its transactions.
INTAKE_STATE = "intake.state.v1"
# Intake's ledger: what became of every legacy record, written in the same transactions as its outputs.
INTAKE_LEDGER = "intake.ledger.v1"
# Internal: intake's correlation stage, legacy records forwarded by region with their sources'
# watermarks, so one partition decides every report of a region in one order.
INTAKE_CORRELATE = "intake.correlate.v1"
# Internal: the correlation stage's state changelog (source stream times, queues, horizons).
INTAKE_CORRELATE_STATE = "intake.correlate.state.v1"
GRID_REGISTRY = "grid.registry.v1"
DISPATCH_FEEDBACK = "dispatch.feedback.v1"
CASE_LIFECYCLE = "case.lifecycle.v1"
AUDIT_HEADS = "audit.heads.v1"
# Internal: the outbox relays' passes. Each pass a relay publishes ends with a record here (key: the
# relay, `<service>.outbox.<schema>.<table>`), and the relay's consumer group of that name commits its
# offset, with the pass's number, in the same Kafka transaction as the pass's records (onegrid.outbox).
OUTBOX_PASSES = "outbox.passes.v1"
# One orders topic per department: `{department}` is its code.
ORDERS_TOPIC_TEMPLATE = "dispatch.orders.{department}.v1"

# Writers and readers outside the services: the departments' systems (their orders, the feedback
# topic), and the legacy networks' gateways that may publish a feed themselves.
DEPARTMENTS = "departments"
LEGACY_GATEWAYS = "legacy-gateway"

_DEPARTMENT_CODE = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")

Role = Literal["data", "dlq", "quarantine"]


def dispatch_orders_topic(department_code: str) -> str:
    """`dispatch.orders.<department-code>.v1`: one topic per department."""
    if not _DEPARTMENT_CODE.match(department_code):
        raise ValueError(f"department code {department_code!r} must match {_DEPARTMENT_CODE.pattern}")
    return ORDERS_TOPIC_TEMPLATE.format(department=department_code)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 6
    # None: the cluster's setting (ONEGRID_KAFKA_REPLICATION_FACTOR / _MIN_INSYNC_REPLICAS).
    replication: int | None = None
    retention_ms: int | None = 30 * DAY_MS
    compacted: bool = False
    extra_config: dict[str, str] = field(default_factory=dict)
    # Records are partitioned by key (order per key, co-partitioned state): adding partitions moves
    # keys, so `ensure_topics` refuses it unless the topic is named for migration.
    keyed: bool = True
    min_insync_replicas: int | None = None
    # The catalogue's facts (module docstring); topics of tests leave them empty.
    owner: str = ""
    readers: tuple[str, ...] = ()
    # Writers besides the owner: the console replays a quarantined record onto the feed it came from.
    also_written_by: tuple[str, ...] = ()
    key: str = ""
    personal_data: bool = False
    role: Role = "data"
    feed: str | None = None
    # Read by the audit tap: all but the trail's own topics (recording them would feed on itself)
    # and the correlation stage's control topics (the note above CATALOGUE).
    audited: bool = True
    # Its records may name cases, case-event types and actors (the tap trusts them for that); a
    # legacy feed's headers are anyone's and say nothing.
    case_facts: bool = False

    def named(self, name: str) -> TopicSpec:
        """This topic under another name (services' settings rename topics; tests use their own)."""
        return replace(self, name=name)

    def writers(self) -> tuple[str, ...]:
        return (self.owner, *self.also_written_by) if self.owner else self.also_written_by

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": "compact" if self.compacted else "delete"}
        # Compacted changelogs keep every key's latest value forever: no time retention.
        cfg["retention.ms"] = "-1" if self.compacted or self.retention_ms is None else str(self.retention_ms)
        if self.min_insync_replicas is not None:
            cfg["min.insync.replicas"] = str(self.min_insync_replicas)
        cfg.update(self.extra_config)
        return cfg

    def on_cluster(
        self, *, replication: int, min_insync_replicas: int, partitions: dict[str, int] | None = None
    ) -> TopicSpec:
        """This spec with the cluster's replication, min ISR and partition override filled in."""
        rf = self.replication if self.replication is not None else replication
        isr = (
            self.min_insync_replicas if self.min_insync_replicas is not None else min(min_insync_replicas, rf)
        )
        return replace(
            self,
            replication=rf,
            min_insync_replicas=isr,
            partitions=(partitions or {}).get(self.name, self.partitions),
        )


_ORIGINAL_KEY = "The original record's key, unchanged."
_FEED_READERS = ("intake", "console")


def _feed(
    name: str,
    feed: str,
    *,
    key: str,
    partitions: int = 3,
    owner: str = "bridges",
    personal_data: bool = False,
) -> TopicSpec:
    """A legacy network's records, bytes unchanged: parsed by intake; the console shows the newest of
    each and replays a quarantined record onto it."""
    return TopicSpec(
        name,
        partitions=partitions,
        owner=owner,
        readers=_FEED_READERS,
        also_written_by=("console",),
        key=key,
        feed=feed,
        personal_data=personal_data,
    )


def _set_aside(
    name: str,
    owner: str,
    role: Role,
    *,
    readers: tuple[str, ...] = (),
    days: int = 180,
    audited: bool = True,
) -> TopicSpec:
    """A service's dead letters or quarantine: evidence, kept long, never compacted; the original
    record's key and bytes (so personal data where the original had it)."""
    return TopicSpec(
        name,
        partitions=1,
        retention_ms=days * DAY_MS,
        keyed=False,
        owner=owner,
        readers=readers,
        key=_ORIGINAL_KEY,
        role=role,
        personal_data=True,
        audited=audited,
    )


# Not evidence, so not recorded by the audit tap (`audited=False`): the correlation stage's topics.
# They carry clock watermarks and the stage's changelog even while nothing happens (a source
# partition read to its end marks about once a second), which grew the trail by millions of entries a
# day on an idle city. A forwarded record is a copy of a legacy record the trail holds at its own
# position on its feed, and what the stage decides is recorded where it is written (`cases.v1`, the
# ledger).

CATALOGUE: tuple[TopicSpec, ...] = (
    _feed(LEGACY_ENV_HJ212, "hj212", key="The station's MN (data logger id).", partitions=6),
    _feed(LEGACY_EMERGENCY_CAP, "cap", key="The alert's sender."),
    _feed(LEGACY_SAFETY, "safety", key="The source system's event number."),
    _feed(LEGACY_PARTY, "party", key="The app's record id.", personal_data=True),
    # Residents' Open311 requests, form bodies as received by the Open311 service's API.
    _feed(
        LEGACY_OPEN311,
        "open311",
        key="The service_request_id the Open311 service assigned.",
        owner="open311",
        personal_data=True,
    ),
    # Grid workers' patrol reports as the console's worker app took them (photos stored first).
    replace(
        _feed(LEGACY_PATROL, "patrol", key="The phone's report id (UUID).", owner="console"),
        also_written_by=(),
    ),
    TopicSpec(
        CASES,
        partitions=6,
        retention_ms=365 * DAY_MS,
        owner="intake",
        # Intake follows its own cases (the case book); open311, the case each request went to.
        readers=("intake", "dispatch", "console", "open311"),
        key="case_id",
        personal_data=True,
        case_facts=True,
    ),
    # The console shows intake's set-aside records; intake's ledger counts them.
    _set_aside(INTAKE_DLQ, "intake", "dlq", readers=("intake", "console")),
    _set_aside(INTAKE_QUARANTINE, "intake", "quarantine", readers=("intake", "console"), days=365),
    _set_aside(DISPATCH_DLQ, "dispatch", "dlq"),
    _set_aside(EVALUATION_DLQ, "evaluation", "dlq"),
    _set_aside(OPEN311_DLQ, "open311", "dlq"),
    _set_aside(AUDIT_DLQ, "audit", "dlq", days=365, audited=False),
    TopicSpec(
        INTAKE_STATE,
        partitions=3,
        compacted=True,
        extra_config={"min.cleanable.dirty.ratio": "0.1"},
        owner="intake",
        readers=("intake",),
        key="`env:<MN>`",
    ),
    TopicSpec(
        INTAKE_LEDGER,
        partitions=3,
        owner="intake",
        readers=("intake",),
        key="`<legacy topic>:<partition>`, or `<correlation topic>:<partition>` for progress",
    ),
    TopicSpec(
        INTAKE_CORRELATE,
        partitions=3,
        retention_ms=7 * DAY_MS,
        owner="intake",
        readers=("intake",),
        key="The correlation region (`city`).",
        personal_data=True,
        audited=False,  # not evidence: see the note above CATALOGUE
    ),
    TopicSpec(
        INTAKE_CORRELATE_STATE,
        partitions=3,
        compacted=True,
        extra_config={"min.cleanable.dirty.ratio": "0.1"},
        owner="intake",
        readers=("intake",),
        key="`mark:<legacy topic>:<partition>`, `corr:<partition>:marks` or `corr:<partition>:held:<order key>`",
        personal_data=True,
        audited=False,  # not evidence: see the note above CATALOGUE
    ),
    TopicSpec(
        GRID_REGISTRY,
        partitions=1,
        compacted=True,
        extra_config={"min.cleanable.dirty.ratio": "0.1", "delete.retention.ms": str(DAY_MS)},
        owner="grid-registry",
        readers=("grid-registry", "intake", "dispatch", "evaluation", "console"),
        key="<kind>:<code>",
        personal_data=True,
    ),
    TopicSpec(
        DISPATCH_FEEDBACK,
        partitions=3,
        owner=DEPARTMENTS,
        readers=("dispatch",),
        key="case_id",
        case_facts=True,
    ),
    TopicSpec(
        CASE_LIFECYCLE,
        partitions=6,
        retention_ms=None,
        owner="dispatch",
        # open311: a request's status follows its case.
        readers=("evaluation", "console", "open311"),
        key="case_id",
        case_facts=True,
    ),
    TopicSpec(AUDIT_HEADS, partitions=1, retention_ms=None, owner="audit", key="key_id", audited=False),
    # The relays' groups commit their offsets here too, which Kafka grants on the topic's Read.
    TopicSpec(
        OUTBOX_PASSES,
        partitions=1,
        compacted=True,
        extra_config={"min.cleanable.dirty.ratio": "0.1"},
        owner="dispatch",
        also_written_by=("grid-registry",),
        readers=("dispatch", "grid-registry"),
        key="The relay: `<service>.outbox.<schema>.<table>`.",
        audited=False,  # bookkeeping: the records it accounts for are on their own topics
    ),
)

# The family of per-department orders topics (`ORDERS_TOPIC_TEMPLATE`); `orders_topic_spec` names one.
ORDERS = TopicSpec(
    ORDERS_TOPIC_TEMPLATE,
    partitions=3,
    owner="dispatch",
    readers=(DEPARTMENTS,),
    key="case_id",
    case_facts=True,
)


def orders_topic_spec(name: str) -> TopicSpec:
    """A department's orders topic (whatever its name: tests use names of their own)."""
    return ORDERS.named(name)


def catalogue(department_codes: Iterable[str] = ()) -> list[TopicSpec]:
    """The fixed topics plus one orders topic per department."""
    specs = list(CATALOGUE)
    specs += [orders_topic_spec(dispatch_orders_topic(code)) for code in department_codes]
    return specs


def spec_of(name: str) -> TopicSpec:
    """The catalogue's spec of a topic (a department's orders topic included)."""
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    if orders_topic_pattern().fullmatch(name):
        return orders_topic_spec(name)
    raise KeyError(f"{name!r} is not in the topic catalogue")


def renamed(names: dict[str, str]) -> list[TopicSpec]:
    """The catalogue, with the topics a service's settings rename (catalogue name -> name) added
    under their new names: a service creates the catalogue's topics and its own as configured."""
    specs = list(CATALOGUE)
    known = {spec.name for spec in specs}
    specs += [spec_of(base).named(name) for base, name in names.items() if name not in known]
    return specs


def orders_topic_pattern(template: str = ORDERS_TOPIC_TEMPLATE) -> re.Pattern[str]:
    """Every department's orders topic, whatever the department (a template's `{department}`)."""
    head, _, tail = template.partition("{department}")
    return re.compile(f"{re.escape(head)}.+{re.escape(tail)}")


def orders_topic_prefix(template: str = ORDERS_TOPIC_TEMPLATE) -> str:
    return template.partition("{department}")[0]


def legacy_feeds() -> dict[str, str]:
    """Legacy topic -> the feed format intake parses it as."""
    return {spec.name: spec.feed for spec in CATALOGUE if spec.feed is not None}


def owned_by(service: str, role: Role) -> str:
    """A service's dead-letter (`dlq`) or quarantine topic."""
    for spec in CATALOGUE:
        if spec.owner == service and spec.role == role:
            return spec.name
    raise KeyError(f"the catalogue has no {role} topic of {service!r}")


def dlq_of(service: str) -> str:
    return owned_by(service, "dlq")


def quarantine_of(service: str) -> str:
    return owned_by(service, "quarantine")


def read_by(service: str) -> list[TopicSpec]:
    """The fixed topics a service reads (the audit tap: every audited topic)."""
    if service == "audit":
        return [spec for spec in CATALOGUE if spec.audited]
    return [spec for spec in CATALOGUE if service in spec.readers]


def written_by(service: str) -> list[TopicSpec]:
    """The fixed topics a service writes (its own and those it also writes)."""
    return [spec for spec in CATALOGUE if service in spec.writers()]


def names_pattern(names: Iterable[str], *families: re.Pattern[str]) -> str:
    """A regular expression matching exactly these topic names and families (full match)."""
    alternatives = [re.escape(n) for n in names] + [f.pattern for f in families]
    return "^(" + "|".join(alternatives) + ")$"


def audit_tap_pattern() -> str:
    """The wire tap's subscription: every audited topic and every department's orders."""
    return names_pattern((s.name for s in read_by("audit")), orders_topic_pattern())


def case_facts_pattern() -> str:
    """Topics whose records may name cases and actors (see audit.domain.capture.TopicTrust)."""
    return names_pattern((s.name for s in CATALOGUE if s.case_facts), orders_topic_pattern())


def set_aside_pattern() -> str:
    """Topics of dead letters and quarantined records (they name their original)."""
    return names_pattern(s.name for s in CATALOGUE if s.role != "data")


def legacy_feeds_pattern() -> str:
    """The legacy networks' topics: anyone's headers, opaque to the tap."""
    return names_pattern(legacy_feeds())
