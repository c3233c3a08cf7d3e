"""How much each section measures: `--quick` (under two minutes on two cores, for `make test` and a
first look) and the full run."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Plan:
    name: str
    perf_records: int  # Kafka perf tools and the raw aiokafka consumer, on one topic
    feed_records: int  # per feed: intake and the passthroughs
    passthrough_runs: int  # the passthrough's figure is the median of this many runs
    telemetry_records: int  # per round, tracing on and off
    telemetry_rounds: int
    audit_rows: int
    desk_cases: int
    lookup_points: int
    latency_rates: tuple[int, ...]
    latency_s: float
    warmup_s: float  # the end-to-end section's first window at 200/s, not measured
    sustained_s: float
    sustained_trials: int
    drain_s: float
    settle_s: float  # services idle this long after start before their RSS is read
    scaling_records: int  # 0: no scaling section
    growth_chunks: int  # the intake core as its case book grows: chunks of `growth_chunk` records
    growth_chunk: int
    partitions: int = 3  # of the feed topics, as in the catalogue
    open311_requests: int = 100  # POSTed, read and followed to closed through the Open311 service
    scaling_instances: tuple[int, ...] = (1, 2)  # processes in the group, per partition count
    scaling_partitions: tuple[int, ...] = (1, 2, 4)  # of intake's scaling topics
    # Services scaled out as processes (bench.scaleout), N instances over N partitions for each N of
    # scaling_instances, next to the passthrough with the same N.
    scaling_services: tuple[str, ...] = ()
    scaling_intake: bool = True  # intake's grid in the scaling section


QUICK = Plan(
    name="quick",
    perf_records=50_000,
    feed_records=1_500,
    passthrough_runs=1,
    telemetry_records=2_000,
    telemetry_rounds=1,
    audit_rows=5_000,
    desk_cases=300,
    lookup_points=1_000_000,
    latency_rates=(200, 1_000),
    latency_s=2.0,
    warmup_s=5.0,
    sustained_s=3.0,
    sustained_trials=2,
    drain_s=5.0,
    settle_s=1.0,
    scaling_records=0,
    growth_chunks=3,
    growth_chunk=1_000,
)

FULL = Plan(
    name="full",
    perf_records=1_000_000,
    feed_records=10_000,
    passthrough_runs=3,
    telemetry_records=10_000,
    telemetry_rounds=3,
    audit_rows=50_000,
    desk_cases=3_000,
    lookup_points=1_000_000,
    latency_rates=(200, 1_000, 5_000),
    latency_s=30.0,
    warmup_s=30.0,
    sustained_s=60.0,
    sustained_trials=7,
    drain_s=60.0,
    settle_s=10.0,
    scaling_records=10_000,
    growth_chunks=8,
    growth_chunk=2_500,
    open311_requests=3_000,
)


# `make bench ARGS=--scaling`: the scaling section alone, on a 3-node cluster (replication 3, min ISR
# 2, as `make up BROKERS=3`): intake with 1, 2 and 4 instances over 1, 2 and 4 partitions; dispatch
# and audit with 1, 2 and 4 instances over as many partitions.
SCALING = replace(FULL, name="scaling", scaling_instances=(1, 2, 4), scaling_services=("dispatch", "audit"))
SCALING_BROKERS = 3

# `--scaling --quick`: the same code path with a tiny load and 1 or 2 instances, on whatever broker
# it is given (the integration test's): a smoke run, its figures mean nothing.
SCALING_SMOKE = replace(
    SCALING, name="scaling-smoke", scaling_records=600, scaling_instances=(1, 2), scaling_partitions=(1, 2)
)
