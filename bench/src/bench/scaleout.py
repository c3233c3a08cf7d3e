"""Scale-out of the consumer services as they run (`python -m dispatch`, `python -m audit`): N instances
in one consumer group over an input topic of N partitions, fed a fixed load produced once the group is
formed (so no rebalance falls inside the measurement), the throughput counted at the service's output,
next to the exactly-once passthrough (`bench.raw`) over the same records, partitions and number of
processes, on the same cluster.

One mechanism for every service: an `Output` says how to point the service at a run's topics and how
to count what it has put out; `scale_out` does the rest. The load is produced in one transaction, so
every reader (`read_committed`) sees all of it at once and never waits for the loader; the rate runs
from its commit to the last output counted (polled every 0.1 s), the first batch's latency included.
CPU per record is read from outside (psutil) for the service's processes, PostgreSQL and the brokers,
so a row says where the time went.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.environment import connect_pg
from bench.feeds import Legacy
from bench.kafka_io import Namespace, partitions_of, produce_at_once
from bench.processes import WorkerProcess
from bench.services import ServiceProcess, service_env
from bench.throughput import run_group, wait_assigned
from onegrid.kafka.admin import ensure_topics
from onegrid.kafka.cluster import group_states
from onegrid.settings import KafkaSettings
from onegrid.topics import ORDERS_TOPIC_TEMPLATE, TopicSpec

Counter = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class Run:
    """One shape of one service: its topics and names, unique to the run."""

    service: str
    partitions: int
    instances: int
    ns: Namespace
    bootstrap: str
    database_url: str

    def topic(self, what: str) -> str:
        return self.ns.name(f"scale.{self.service}.{self.partitions}.{what}")

    @property
    def run_id(self) -> str:
        """Names the service's schema and groups (`bench_<service>_<run>...`, removed at the end)."""
        return f"{self.ns.run}s{self.partitions}"

    @property
    def input(self) -> str:
        return self.topic("in")

    def env(self) -> dict[str, str]:
        return service_env(
            self.service, self.run_id, bootstrap=self.bootstrap, database_url=self.database_url
        )

    @property
    def group(self) -> str:
        return f"bench-{self.service}-{self.run_id}"  # the SERVICE_NAME service_env gives


@dataclass(frozen=True)
class Output:
    """How a service is measured: the extra topics it reads with the input (same partitions), its
    settings for a run, the consumer loop whose group must be formed, and a counter of its output."""

    service: str
    loop: str
    configure: Callable[[Run], dict[str, str]]
    counter: Callable[[Run], AbstractAsyncContextManager[Counter]]
    inputs: Callable[[Run], list[str]] = lambda run: [run.input]
    # The load is the shared records this many times over, so that a fast service's run still lasts
    # seconds (the audit trail records repeats: it keys entries by source position, not event id).
    repeat: int = 1


# -- dispatch: cases.v1 in, case lifecycle out (through its outbox relay) ----------------------------


def _dispatch_env(run: Run) -> dict[str, str]:
    p = "ONEGRID_DISPATCH_"
    return {
        f"{p}CASES_TOPIC": run.input,
        f"{p}FEEDBACK_TOPIC": run.topic("feedback"),
        f"{p}LIFECYCLE_TOPIC": run.topic("lifecycle"),
        f"{p}DLQ_TOPIC": run.topic("dlq"),
        f"{p}REGISTRY_TOPIC": run.ns.name("grid.registry"),  # the suite publishes the seed there
        # The suite's orders topics, created before any run: no shape pays for creating them.
        f"{p}ORDERS_TOPIC": run.ns.name(ORDERS_TOPIC_TEMPLATE),
        # The run's partition count for its input topics (the catalogue's otherwise).
        "ONEGRID_KAFKA_TOPIC_PARTITIONS": json.dumps({t: run.partitions for t in _dispatch_inputs(run)}),
    }


def _dispatch_inputs(run: Run) -> list[str]:
    # The (idle) feedback topic gets as many partitions as the cases topic: the round-robin assignor
    # then gives each of N instances one partition of each.
    return [run.input, run.topic("feedback")]


@asynccontextmanager
async def _lifecycle_cases(run: Run) -> AsyncIterator[Counter]:
    """Cases with at least one lifecycle event on the run's lifecycle topic (keyed by case id)."""
    kafka = KafkaSettings(bootstrap_servers=run.bootstrap)
    consumer = AIOKafkaConsumer(
        client_id=f"{run.group}-count",
        enable_auto_commit=False,
        isolation_level="read_committed",
        **kafka.client_kwargs(),
    )
    await consumer.start()
    seen: set[bytes] = set()

    async def follow() -> None:
        topic = run.topic("lifecycle")
        tps = [TopicPartition(topic, p) for p in await partitions_of(consumer, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            for rs in (await consumer.getmany(timeout_ms=100, max_records=5000)).values():
                seen.update(r.key for r in rs if r.key is not None)

    task = asyncio.create_task(follow())

    async def count() -> int:
        if task.done():
            task.result()  # a failed follower raises here, not as a silent zero
        return len(seen)

    try:
        yield count
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


DISPATCH = Output(
    service="dispatch",
    loop="inbox",
    configure=_dispatch_env,
    counter=_lifecycle_cases,
    inputs=_dispatch_inputs,
)


# -- audit: every record of its tap pattern in, trail rows out ----------------------------------------


def _audit_env(run: Run) -> dict[str, str]:
    exact = re.escape(run.input)
    # The input is read as cases.v1 would be (case ids and actors extracted), not as opaque bytes.
    return {"ONEGRID_AUDIT_TAP_TOPIC_PATTERN": exact, "ONEGRID_AUDIT_CASE_TOPIC_PATTERN": exact}


@asynccontextmanager
async def _trail_rows(run: Run) -> AsyncIterator[Counter]:
    """Rows in the run's trail (one per recorded record, in the shared log's sequence)."""
    conn = await connect_pg(run.database_url)
    schema = run.env()["ONEGRID_AUDIT_DB_SCHEMA"]

    async def count() -> int:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".trail'))

    try:
        yield count
    finally:
        await conn.close()


AUDIT = Output(service="audit", loop="wiretap", configure=_audit_env, counter=_trail_rows, repeat=5)

OUTPUTS = {o.service: o for o in (DISPATCH, AUDIT)}


# -- the mechanism -------------------------------------------------------------------------------------


async def scale_out(
    output: Output,
    *,
    shapes: Sequence[int],
    records: Sequence[Legacy],
    raws: list[WorkerProcess],
    ns: Namespace,
    kafka: KafkaSettings,
    database_url: str,
    logs: Path,
    out: str,
    postgres_data: Path | None = None,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """For each N in `shapes`: N partitions, N raw passthrough workers, then N service instances.
    `postgres_data`: the data folder of a server the bench started, to count its CPU."""
    load = list(records) * output.repeat
    rows = []
    for n in shapes:
        run = Run(output.service, n, n, ns, kafka.bootstrap_servers, database_url)
        measured = Measured(output, run, kafka, logs, postgres_data, timeout_s)
        rows.append(await _one_shape(measured, load, raws, out))
    return {"records": len(load), "rows": rows}


@dataclass(frozen=True)
class Measured:
    """One shape of one service, and where to measure it."""

    output: Output
    run: Run
    kafka: KafkaSettings
    logs: Path
    postgres_data: Path | None
    timeout_s: float


async def _one_shape(
    m: Measured, records: Sequence[Legacy], raws: list[WorkerProcess], out: str
) -> dict[str, Any]:
    run, kafka = m.run, m.kafka
    n, p = len(records), run.partitions
    baseline_topic = run.topic("passthrough")
    await ensure_topics(kafka, [TopicSpec(t, partitions=p) for t in [baseline_topic, *m.output.inputs(run)]])
    workers = raws[: run.instances]

    async def formed() -> None:
        await wait_assigned(workers, p)
        await produce_at_once(kafka, baseline_topic, records)

    baseline = await run_group(
        workers,
        mode="passthrough_tx",
        topics=[baseline_topic],
        group=run.ns.name(f"g.scale.{run.service}.passthrough.{p}"),
        n=n,
        out=out,
        before=formed,
        timeout_s=m.timeout_s,
    )
    measured = await _measure_service(m, records)
    return {
        "partitions": p,
        "instances": run.instances,
        "passthrough_tx": baseline.as_dict(),
        run.service: measured,
        "ratio_to_passthrough_tx": round(measured["per_s"] / baseline.per_s, 3),
    }


async def _measure_service(m: Measured, records: Sequence[Legacy]) -> dict[str, Any]:
    run, kafka = m.run, m.kafka
    env = run.env() | m.output.configure(run)  # one env (and audit signing key) for every instance
    prefix = "ONEGRID_" + run.service.upper() + "_"
    services = [
        ServiceProcess(
            run.service,
            env | {f"{prefix}INSTANCE_ID": str(i)},
            m.logs / f"scale-{run.service}-{run.partitions}-{i}.log",
        )
        for i in range(run.instances)
    ]
    try:
        for s in services:
            s.start()
        # Generous: four instances starting at once on a loaded two-core machine take minutes.
        await asyncio.gather(*(s.ready(timeout_s=m.timeout_s) for s in services))
        await _group_formed(kafka, f"{run.group}.{m.output.loop}", run.input, run.partitions, run.instances)
        pids = [s.proc.pid for s in services if s.proc is not None]
        async with m.output.counter(run) as count:
            before, machine = _cpu_by_role(pids, m.postgres_data), psutil.cpu_times()
            committed = await produce_at_once(kafka, run.input, records)
            done = await _until_counted(count, len(records), m.timeout_s)
            after, busy = _cpu_by_role(pids, m.postgres_data), _busy_since(machine)
    finally:
        for s in services:
            s.terminate()
        for s in services:
            s.stop()
    seconds = done - committed
    cpu = {role: _minus(after[role], before[role]) for role in after}
    return {
        "records": len(records),
        "seconds": round(seconds, 3),
        "per_s": round(len(records) / seconds, 1),
        # Over the whole load (every record's CPU, the first batch's included); None: not ours to see.
        "cpu_us_per_record": {
            role: None if v is None else round(v / len(records) * 1e6, 1) for role, v in cpu.items()
        },
        # The whole machine's cores busy over the run (every process on it, other users' included).
        "machine_cpu_busy": round(busy, 3),
        "instances": run.instances,
    }


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _busy_since(before: Any) -> float:
    after = psutil.cpu_times()
    total = sum(after) - sum(before)
    idle = (after.idle + getattr(after, "iowait", 0.0)) - (before.idle + getattr(before, "iowait", 0.0))
    return 1.0 - idle / total if total > 0 else 0.0


async def _until_counted(count: Counter, n: int, timeout_s: float) -> float:
    """When the output reached `n` (monotonic clock, polled every 0.1 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (c := await count()) < n:
        if loop.time() > deadline:
            raise TimeoutError(f"only {c} of {n} records out after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic()


async def _group_formed(
    kafka: KafkaSettings,
    group: str,
    topic: str,
    partitions: int,
    instances: int,
    *,
    stable_s: float = 1.5,
    timeout_s: float = 120.0,
) -> None:
    """Until the service's group owns every partition of `topic`, spread over min(partitions,
    instances) members, and has for `stable_s` (no late joiner's rebalance inside the measurement)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    held_since: float | None = None
    seen: list[int] = []
    while True:
        states = await group_states(kafka, [group])
        seen = [
            sum(1 for t, _p in m.partitions if t == topic)
            for g in states
            if g.state == "Stable"
            for m in g.members
        ]
        formed = sum(seen) == partitions and sum(1 for k in seen if k) == min(partitions, instances)
        now = loop.time()
        held_since = (held_since or now) if formed else None
        if held_since is not None and now - held_since >= stable_s:
            return
        if now > deadline:
            raise TimeoutError(f"group {group} not formed on {topic}: members hold {seen} of {partitions}")
        await asyncio.sleep(0.3)


def _cpu_by_role(service_pids: list[int], postgres_data: Path | None) -> dict[str, float | None]:
    """CPU seconds so far of the service's processes, of the Kafka brokers the bench started (its
    descendants) and of the PostgreSQL server it started (found by its pid file: the server detaches)."""
    out: dict[str, float | None] = {"service": 0.0, "kafka": 0.0, "postgres": None}
    services = set(service_pids)
    for proc in psutil.Process().children(recursive=True):
        try:
            role = (
                "service"
                if proc.pid in services
                else "kafka"
                if proc.name() == "java" and "kafka" in " ".join(proc.cmdline()).lower()
                else None
            )
            if role is not None:
                out[role] = (out[role] or 0.0) + _cpu_s(proc)
        except psutil.NoSuchProcess:
            continue
    pid_file = postgres_data / "postmaster.pid" if postgres_data is not None else None
    if pid_file is not None and pid_file.exists():
        postmaster = psutil.Process(int(pid_file.read_text().splitlines()[0]))
        tree = [postmaster, *postmaster.children(recursive=True)]
        out["postgres"] = sum(_cpu_or_zero(p) for p in tree)
    return out


def _cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _cpu_or_zero(proc: psutil.Process) -> float:
    """A backend that ended between listing and reading took its CPU with it."""
    try:
        return _cpu_s(proc)
    except psutil.NoSuchProcess:
        return 0.0
