"""The whole run: topics and data, the measured processes, every section in turn, one broker and one
database throughout. A section that fails is reported as failed; the others still run."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.cap_schema import cap_schema_cost
from bench.core import book_growth
from bench.desk import bench_desk, case_records
from bench.endtoend import end_to_end
from bench.environment import Environment, machine, remove_run
from bench.feeds import FEEDS, FeedStream, Legacy, describe, published_seed
from bench.kafka_io import Namespace, produce, publish_seed
from bench.lookups import bench_lookups
from bench.memory import service_memory
from bench.open311 import bench_open311
from bench.pipeline import kafka_ceiling, per_feed, scaling, telemetry_cost
from bench.plan import Plan
from bench.processes import WorkerProcess
from bench.scaleout import OUTPUTS, scale_out
from bench.services import ServiceProcess, service_env
from bench.throughput import run_group
from onegrid.kafka.admin import ensure_topics
from onegrid.settings import KafkaSettings
from onegrid.topics import ORDERS_TOPIC_TEMPLATE, TopicSpec, dispatch_orders_topic

log = logging.getLogger("bench")
E2E_FEEDS = ("party", "safety")


class Suite:
    def __init__(
        self, plan: Plan, env: Environment, workdir: Path, *, only: frozenset[str] | None = None
    ) -> None:
        self.plan, self.env, self.workdir = plan, env, workdir
        self.only = only  # the sections to run (None: all)
        self.kafka = KafkaSettings(bootstrap_servers=env.bootstrap)
        self.ns = Namespace(self.kafka)
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.results: dict[str, Any] = {}
        self.streams = {f: FeedStream(f, seed=7) for f in FEEDS}
        self.workers: list[WorkerProcess] = []
        self.services: list[ServiceProcess] = []
        n = self.ns.name
        self.registry = n("grid.registry")
        self.inputs = {f: n(f"legacy.{f}") for f in FEEDS}
        self.warm = {f: n(f"warm.{f}") for f in FEEDS}
        self.perf, self.out = n("perf"), n("passthrough.out")
        self.telemetry = [n(f"telemetry.{i}") for i in range(plan.telemetry_rounds)]
        # The end-to-end windows (warm-up, each fixed rate, each trial of the two sustained-rate
        # searches: to the order, then to cases.v1): input topics each.
        windows = 1 + len(plan.latency_rates) + 2 * plan.sustained_trials
        self.e2e = [{f: n(f"e2e.{k}.legacy.{f}") for f in E2E_FEEDS} for k in range(windows)]
        # ... and the correlation stage's topic and changelog of each window.
        self.e2e_stage = [(n(f"e2e.{k}.correlate"), n(f"e2e.{k}.correlate.state")) for k in range(windows)]
        # The latency's floor at each fixed rate: input topics as a window's, and two exactly-once
        # stages' outputs (partitioned as the correlation topic and the cases topic).
        self.hops = [
            (
                {f: n(f"e2e.hops.{k}.legacy.{f}") for f in E2E_FEEDS},
                [n(f"e2e.hops.{k}.mid"), n(f"e2e.hops.{k}.out")],
            )
            for k in range(len(plan.latency_rates))
        ]
        self.scale = (
            {
                (p, i, mode): n(f"scale.{mode}.{p}.{i}")
                for p in plan.scaling_partitions
                for i in plan.scaling_instances
                for mode in ("passthrough_tx", "intake")
            }
            if plan.scaling_records and plan.scaling_intake
            else {}
        )
        departments = sorted(r["code"] for r in published_seed() if r["kind"] == "department")
        self.orders = [n(dispatch_orders_topic(d)) for d in departments]

    def group(self, name: str) -> str:
        return self.ns.name(f"g.{name}")

    def outputs(self, tag: str) -> dict[str, str]:
        """The topics one intake deployment writes (shared by its instances)."""
        return {k: self.ns.name(f"{tag}.{k}") for k in ("cases", "state", "dlq", "quarantine")}

    # -- set-up -------------------------------------------------------------------------------------

    async def create_topics(self) -> None:
        p = self.plan.partitions
        specs = [TopicSpec(self.registry, partitions=1, compacted=True)]
        specs += [
            TopicSpec(t, partitions=p)
            for t in [*self.inputs.values(), *self.warm.values(), self.perf, self.out]
        ]
        specs += [
            TopicSpec(t, partitions=p)
            for t in [*self.telemetry, *(t for w in self.e2e for t in w.values()), *self.orders]
        ]
        specs += [TopicSpec(t, partitions=parts) for (parts, _i, _m), t in self.scale.items()]
        for inputs, (mid, out) in self.hops:
            specs += [TopicSpec(t, partitions=p) for t in inputs.values()]
            specs += [TopicSpec(mid, partitions=3), TopicSpec(out, partitions=6)]
        for correlate, changelog in self.e2e_stage:  # as INTAKE_CORRELATE and its state in the catalogue
            specs += [TopicSpec(correlate, partitions=3), TopicSpec(changelog, partitions=3, compacted=True)]
        for tag in ("on", "off", "e2e"):
            o = self.outputs(tag)
            specs += [
                TopicSpec(o["cases"], partitions=6),
                TopicSpec(o["state"], partitions=3, compacted=True),
            ]
            specs += [TopicSpec(o["dlq"], partitions=1), TopicSpec(o["quarantine"], partitions=1)]
        specs += [
            TopicSpec(self.ns.name(f"dispatch.{t}"), partitions=p) for t in ("feedback", "lifecycle", "dlq")
        ]
        await ensure_topics(self.kafka, specs)

    async def intake_worker(self, tag: str, feeds: dict[str, str], *, tracing: bool = True) -> WorkerProcess:
        w = await WorkerProcess(
            self.env.bootstrap, self.logs / f"worker-{tag}-{len(self.workers)}.log", tracing=tracing
        ).start()
        self.workers.append(w)
        await w.send({"op": "intake", "feeds": feeds, "registry": self.registry, **self.outputs(tag)})
        return w

    def dispatch_service(self) -> ServiceProcess:
        env = service_env(
            "dispatch", self.ns.run, bootstrap=self.env.bootstrap, database_url=self.env.database_url
        )
        prefix = "ONEGRID_DISPATCH_"
        env |= {
            f"{prefix}CASES_TOPIC": self.outputs("e2e")["cases"],
            f"{prefix}REGISTRY_TOPIC": self.registry,
            f"{prefix}ORDERS_TOPIC": self.ns.name(ORDERS_TOPIC_TEMPLATE),
            f"{prefix}FEEDBACK_TOPIC": self.ns.name("dispatch.feedback"),
            f"{prefix}LIFECYCLE_TOPIC": self.ns.name("dispatch.lifecycle"),
            f"{prefix}DLQ_TOPIC": self.ns.name("dispatch.dlq"),
        }
        s = ServiceProcess("dispatch", env, self.logs / "dispatch-e2e.log").start()
        self.services.append(s)
        return s

    def take(self, feed: str, n: int) -> list[Legacy]:
        return self.streams[feed].take(n)

    # -- the run ------------------------------------------------------------------------------------

    def wants(self, section: str) -> bool:
        return self.only is None or section in self.only

    async def run(self) -> dict[str, Any]:
        plan, r = self.plan, self.results
        started = time.monotonic()
        r["machine"] = await machine(self.env)
        kafka_sections = [s for s in ("kafka", "intake", "telemetry", "scaling") if self.wants(s)]
        e2e = self.wants("latency")
        if kafka_sections or e2e:
            await self.create_topics()
            await publish_seed(self.kafka, self.registry)
        raw = traced = untraced = e2e_worker = None
        by_topic: dict[str, str] = {}
        if kafka_sections:
            raw = await WorkerProcess(self.env.bootstrap, self.logs / "worker-raw.log", tracing=False).start()
            self.workers.append(raw)
            by_topic = {t: f for f, t in [*self.inputs.items(), *self.warm.items()]}
            by_topic |= {t: "party" for t in self.telemetry}
            by_topic |= {t: "party" for (_p, _i, m), t in self.scale.items() if m == "intake"}
            traced = await self.intake_worker("on", by_topic)
            untraced = await self.intake_worker("off", by_topic, tracing=False)
        if e2e:
            e2e_worker = await self.intake_worker("e2e", {t: f for w in self.e2e for f, t in w.items()})
            dispatch = self.dispatch_service()
        sizes: dict[str, int] = {}
        if kafka_sections:
            assert raw is not None and traced is not None and untraced is not None
            # The data, produced while the workers start.
            inputs = {f: self.take(f, plan.feed_records) for f in FEEDS}
            sizes = {f: describe(v)["mean_bytes"] for f, v in inputs.items()}
            warm = {f: self.take(f, 40) for f in FEEDS}
            await asyncio.gather(
                *(produce(self.kafka, self.inputs[f], v) for f, v in inputs.items()),
                *(produce(self.kafka, self.warm[f], v) for f, v in warm.items()),
                *(produce(self.kafka, t, self.take("party", plan.telemetry_records)) for t in self.telemetry),
            )
            for w in (traced, untraced):
                await w.answer("ready")
            # First-batch costs (codecs, parsers, connections) out of the measurements.
            warm_topics, warm_n = list(self.warm.values()), sum(len(v) for v in warm.values())
            for w, tag in ((traced, "on"), (untraced, "off")):
                await run_group(
                    [w], mode="intake", topics=warm_topics, group=self.group(f"warm.{tag}"), n=warm_n
                )
            for mode in ("passthrough", "passthrough_tx"):
                group = self.group(f"warm.{mode}")
                await run_group([raw], mode=mode, topics=warm_topics, group=group, n=warm_n, out=self.out)
        if e2e:
            assert e2e_worker is not None
            await e2e_worker.answer("ready")
            await dispatch.ready()

        r["setup_s"] = round(time.monotonic() - started, 1)  # topics, data, processes started and warm
        if self.wants("kafka"):
            assert raw is not None
            mean_size = round(sum(sizes.values()) / len(sizes))
            await self.section(
                "kafka",
                lambda: kafka_ceiling(
                    self.env.bootstrap,
                    raw,
                    self.perf,
                    records=plan.perf_records,
                    record_size=mean_size,
                    group=self.group("perf"),
                ),
            )
        if self.wants("intake"):
            assert raw is not None and traced is not None
            await self.section("intake", lambda: self.intake_section(raw, traced, sizes))
        if self.wants("telemetry"):
            assert traced is not None and untraced is not None
            await self.section(
                "telemetry",
                lambda: telemetry_cost(
                    traced, untraced, topics=self.telemetry, records=plan.telemetry_records, group=self.group
                ),
            )
        if self.wants("growth"):
            await self.section(
                "growth",
                lambda: asyncio.to_thread(
                    book_growth, "party", chunks=plan.growth_chunks, chunk=plan.growth_chunk
                ),
            )
        if self.wants("audit"):
            await self.section("audit", self.audit)
        if self.wants("lookups"):
            await self.section("lookups", lambda: asyncio.to_thread(bench_lookups, plan.lookup_points))
        if self.wants("dispatch"):
            await self.section("dispatch", lambda: bench_desk(self.env.database_url, plan.desk_cases))
        if e2e:
            assert e2e_worker is not None
            start_rate = 0.7 * min(
                r.get("intake", {}).get("feeds", {}).get(f, {}).get("intake", {}).get("per_s", 500.0)
                for f in E2E_FEEDS
            )
            await self.section(
                "latency",
                lambda: end_to_end(
                    self.kafka,
                    plan,
                    intake=e2e_worker,
                    dispatch=dispatch,
                    windows=self.e2e,
                    stages=self.e2e_stage,
                    partitions=plan.partitions,
                    group=self.group("e2e"),
                    cases_topic=self.outputs("e2e")["cases"],
                    order_topics=self.orders,
                    start_rate=start_rate,
                    database_url=self.env.database_url,
                    dispatch_schema=f"bench_dispatch_{self.ns.run}",
                    hops=self.hops,
                ),
            )
        if self.wants("scaling"):
            if self.plan.scaling_records:
                assert raw is not None and traced is not None
                await self.section("scaling", lambda: self.scaling(raw, traced, by_topic))
            else:
                r["scaling"] = {"skipped": "Scaling runs in the full run only (make bench, without --quick)."}
        if self.wants("open311"):
            await self.section(
                "open311",
                lambda: bench_open311(
                    self.ns,
                    bootstrap=self.env.bootstrap,
                    database_url=self.env.database_url,
                    logs=self.logs,
                    requests=plan.open311_requests,
                ),
            )
        if self.wants("memory"):
            await self.section("memory", lambda: self.memory())
        r["goals"] = report.goals(r)
        return r

    async def section(self, name: str, body: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        started = time.monotonic()
        log.warning("bench: %s ...", name)
        try:
            result = await body()
        except Exception as exc:
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["section_s"] = round(time.monotonic() - started, 1)
        self.results[name] = result

    async def intake_section(
        self, raw: WorkerProcess, traced: WorkerProcess, sizes: dict[str, int]
    ) -> dict[str, Any]:
        plan = self.plan
        result = await per_feed(
            raw,
            traced,
            inputs=self.inputs,
            sizes=sizes,
            out=self.out,
            records=plan.feed_records,
            runs=plan.passthrough_runs,
            group=self.group,
        )
        return result | {"cap_schema": cap_schema_cost(alerts=min(plan.feed_records, 2000))}

    async def audit(self) -> dict[str, Any]:
        from bench.audit_sink import bench_sink_beside_raw

        n = self.plan.audit_rows
        sink, raw = await bench_sink_beside_raw(self.env.database_url, n)
        return {
            "rows": n,
            "sink_rows_per_s": round(sink),
            "raw_copy_rows_per_s": round(raw),
            "ratio": round(sink / raw, 3),
        }

    async def scaling(
        self, raw: WorkerProcess, traced: WorkerProcess, by_topic: dict[str, str]
    ) -> dict[str, Any]:
        most = max(self.plan.scaling_instances)
        raws, intakes = [raw], [traced]
        while len(raws) < most:
            log_file = self.logs / f"worker-raw-{len(raws) + 1}.log"
            raws.append(await WorkerProcess(self.env.bootstrap, log_file, tracing=False).start())
            self.workers.append(raws[-1])
        while self.scale and len(intakes) < most:
            intakes.append(await self.intake_worker("on", by_topic))
        for w in intakes[1:]:
            await w.answer("ready")
        n = self.plan.scaling_records
        prepared = {key: self.take("party", n) for key in self.scale}

        def filler(topic: str, records: list[Legacy]) -> Callable[[], Awaitable[None]]:
            return lambda: produce(self.kafka, topic, records)

        topics = {key: (t, filler(t, prepared[key])) for key, t in self.scale.items()}
        result = await scaling(raws, intakes, topics=topics, records=n, group=self.group, out=self.out)
        for w in intakes[1:]:  # their memory and CPU are the services' now
            await w.stop()
        if self.plan.scaling_services:
            result["services"] = await self.scale_services(raws, n)
        return result

    async def scale_services(self, raws: list[WorkerProcess], n: int) -> dict[str, Any]:
        """Dispatch and audit as processes, fed case events as intake writes them (the same load
        for every shape); the dispatch instances read the run's registry topic (`grid.registry`)."""
        load = await asyncio.to_thread(case_records, n)
        out: dict[str, Any] = {}
        for name in self.plan.scaling_services:
            try:
                out[name] = await scale_out(
                    OUTPUTS[name],
                    shapes=self.plan.scaling_instances,
                    records=load,
                    raws=raws,
                    ns=self.ns,
                    kafka=self.kafka,
                    database_url=self.env.database_url,
                    logs=self.logs,
                    out=self.out,
                    postgres_data=self.env.postgres_data,
                )
            except Exception as exc:  # the other service's figures still count
                traceback.print_exc()
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    async def memory(self) -> dict[str, Any]:
        services = await service_memory(
            f"{self.ns.run}m",
            bootstrap=self.env.bootstrap,
            database_url=self.env.database_url,
            logs=self.logs,
        )
        return {"services": services}

    # -- tear-down ----------------------------------------------------------------------------------

    async def close(self) -> None:
        for s in self.services:
            s.terminate()
        for s in self.services:
            s.stop()
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        await remove_run(self.env, self.kafka, self.ns.run)
