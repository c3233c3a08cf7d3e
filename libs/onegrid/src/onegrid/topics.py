"""The topic catalogue as code: one place for names, partitions, retention and cleanup policy.

Names are a public interface (departments and BI integrate against them); contracts/asyncapi.yaml
describes the same topics and a contract test keeps the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

DAY_MS = 24 * 3600 * 1000

LEGACY_ENV_HJ212 = "legacy.env.hj212.v1"
LEGACY_EMERGENCY_CAP = "legacy.emergency.cap.v1"
LEGACY_SAFETY = "legacy.safety.v1"
LEGACY_PARTY = "legacy.party.v1"
LEGACY_OPEN311 = "legacy.open311.v1"
CASES = "cases.v1"
INTAKE_DLQ = "intake.dlq.v1"
INTAKE_QUARANTINE = "intake.quarantine.v1"
DISPATCH_DLQ = "dispatch.dlq.v1"
EVALUATION_DLQ = "evaluation.dlq.v1"
# Records the wire tap cannot store (its own failure, not the record's): kept for a replay.
AUDIT_DLQ = "audit.dlq.v1"
# Internal: intake's own state changelog (HJ 212 episodes per station), written in its transactions.
INTAKE_STATE = "intake.state.v1"
# Intake's ledger: what became of every legacy record, written in the same transactions as its outputs.
INTAKE_LEDGER = "intake.ledger.v1"
# Internal: intake's correlation stage, legacy records forwarded by region with their sources'
# watermarks, so one partition decides every report of a region in one order.
INTAKE_CORRELATE = "intake.correlate.v1"
GRID_REGISTRY = "grid.registry.v1"
DISPATCH_FEEDBACK = "dispatch.feedback.v1"
CASE_LIFECYCLE = "case.lifecycle.v1"
AUDIT_HEADS = "audit.heads.v1"

_DEPARTMENT_CODE = re.compile(r"^[a-z][a-z0-9_-]{1,40}$")


def dispatch_orders_topic(department_code: str) -> str:
    """`dispatch.orders.<department-code>.v1`: one topic per department."""
    if not _DEPARTMENT_CODE.match(department_code):
        raise ValueError(f"department code {department_code!r} must match {_DEPARTMENT_CODE.pattern}")
    return f"dispatch.orders.{department_code}.v1"


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


CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(LEGACY_ENV_HJ212, partitions=6),
    TopicSpec(LEGACY_EMERGENCY_CAP, partitions=3),
    TopicSpec(LEGACY_SAFETY, partitions=3),
    TopicSpec(LEGACY_PARTY, partitions=3),
    # Residents' Open311 requests, form bodies as received by the intake API (key: service_request_id).
    TopicSpec(LEGACY_OPEN311, partitions=3),
    TopicSpec(CASES, partitions=6, retention_ms=365 * DAY_MS),
    # Dead letters and quarantine are evidence: kept long, never compacted.
    TopicSpec(INTAKE_DLQ, partitions=1, retention_ms=180 * DAY_MS, keyed=False),
    TopicSpec(INTAKE_QUARANTINE, partitions=1, retention_ms=365 * DAY_MS, keyed=False),
    TopicSpec(DISPATCH_DLQ, partitions=1, retention_ms=180 * DAY_MS, keyed=False),
    TopicSpec(EVALUATION_DLQ, partitions=1, retention_ms=180 * DAY_MS, keyed=False),
    TopicSpec(AUDIT_DLQ, partitions=1, retention_ms=365 * DAY_MS, keyed=False),
    TopicSpec(INTAKE_STATE, partitions=3, compacted=True, extra_config={"min.cleanable.dirty.ratio": "0.1"}),
    TopicSpec(INTAKE_LEDGER, partitions=3),
    TopicSpec(INTAKE_CORRELATE, partitions=3, retention_ms=7 * DAY_MS),
    TopicSpec(
        GRID_REGISTRY,
        partitions=1,
        compacted=True,
        extra_config={"min.cleanable.dirty.ratio": "0.1", "delete.retention.ms": str(DAY_MS)},
    ),
    TopicSpec(DISPATCH_FEEDBACK, partitions=3),
    TopicSpec(CASE_LIFECYCLE, partitions=6, retention_ms=None),
    TopicSpec(AUDIT_HEADS, partitions=1, retention_ms=None),
)


def orders_topic_spec(name: str) -> TopicSpec:
    """A department's orders topic (whatever its name: tests use names of their own)."""
    return TopicSpec(name, partitions=3)


def catalogue(department_codes: Iterable[str] = ()) -> list[TopicSpec]:
    """The fixed topics plus one orders topic per department."""
    specs = list(CATALOGUE)
    specs += [orders_topic_spec(dispatch_orders_topic(code)) for code in department_codes]
    return specs
