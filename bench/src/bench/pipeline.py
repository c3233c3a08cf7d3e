"""The throughput sections: Kafka's ceiling, intake per feed against the raw passthrough, the cost of
telemetry, and the scaling shape. Every number comes from worker processes (`bench.worker`)."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from typing import Any

from bench import kafka_tools
from bench.feeds import FEEDS
from bench.processes import WorkerProcess
from bench.throughput import Throughput, run_group, wait_assigned

Produce = Callable[[], Awaitable[None]]


async def kafka_ceiling(
    bootstrap: str, raw: WorkerProcess, topic: str, *, records: int, record_size: int, group: str
) -> dict[str, Any]:
    """ProducerPerformance fills `topic`; ConsumerPerformance and the raw aiokafka loop read it all."""
    produced = await kafka_tools.producer_performance(
        bootstrap, topic, records=records, record_size=record_size
    )
    consumed = await kafka_tools.consumer_performance(bootstrap, topic, records=records, group=group)
    aiokafka = await run_group([raw], mode="consume", topics=[topic], group=f"{group}.py", n=records)
    return {
        "topic_records": records,
        "record_bytes": record_size,
        "producer_performance": produced,
        "consumer_performance": consumed,
        "aiokafka_consume": aiokafka.as_dict(),
        "aiokafka_vs_java_consumer": round(aiokafka.per_s / consumed["per_s"], 3),
    }


async def per_feed(
    raw: WorkerProcess,
    intake: WorkerProcess,
    *,
    inputs: dict[str, str],
    sizes: dict[str, int],
    out: str,
    records: int,
    runs: int,
    group: Callable[[str], str],
) -> dict[str, Any]:
    """For every feed, on the same pre-produced topic: the raw passthrough (at least once, and
    exactly once; the median of `runs` runs, as it is over in a few batches),
    then the real intake (exactly once, from an empty case book). The goal's ratio is intake over
    the exactly-once passthrough: the same delivery guarantee."""
    feeds: dict[str, Any] = {}
    for feed in FEEDS:
        topic = inputs[feed]
        plain, tx = [
            await _median_of([raw], mode, topic, records, out, f"{group(mode)}.{feed}", runs)
            for mode in ("passthrough", "passthrough_tx")
        ]
        real = await run_group(
            [intake], mode="intake", topics=[topic], group=group(f"intake.{feed}"), n=records
        )
        feeds[feed] = {
            "records": records,
            "mean_bytes": sizes[feed],
            "intake": real.as_dict(),
            "passthrough": plain.as_dict(),
            "passthrough_tx": tx.as_dict(),
            "ratio_to_passthrough_tx": round(real.per_s / tx.per_s, 3),
            "ratio_to_passthrough": round(real.per_s / plain.per_s, 3),
        }
    return {
        "guarantee_of_ratio": "exactly once (intake vs transactional passthrough)",
        "passthrough_runs": runs,
        "feeds": feeds,
    }


async def _median_of(
    workers: list[WorkerProcess], mode: str, topic: str, records: int, out: str, group: str, times: int
) -> Throughput:
    """The median (by rate) of `times` runs, each a group of its own over the whole topic."""
    runs = [
        await run_group(workers, mode=mode, topics=[topic], group=f"{group}.{i}", n=records, out=out)
        for i in range(times)
    ]
    return sorted(runs, key=lambda t: t.per_s)[len(runs) // 2]


async def telemetry_cost(
    traced: WorkerProcess,
    untraced: WorkerProcess,
    *,
    topics: list[str],
    records: int,
    group: Callable[[str], str],
) -> dict[str, Any]:
    """The same records through the same intake, tracing on (SDK, sampler 1.0, spans dropped by the
    exporter, Prometheus metrics) and off (no provider); rounds alternate which goes first. The cost
    is the extra CPU per record (medians over rounds); throughput is shown next to it."""
    on: list[Throughput] = []
    off: list[Throughput] = []
    for i, topic in enumerate(topics):
        order = [(traced, on, "on"), (untraced, off, "off")]
        for worker, into, tag in order if i % 2 == 0 else reversed(order):
            into.append(
                await run_group(
                    [worker], mode="intake", topics=[topic], group=group(f"tel.{tag}.{i}"), n=records
                )
            )
    cpu_on = statistics.median(t.cpu_us_per_record for t in on)
    cpu_off = statistics.median(t.cpu_us_per_record for t in off)
    rate_on = statistics.median(t.per_s for t in on)
    rate_off = statistics.median(t.per_s for t in off)
    return {
        "records_per_round": records,
        "rounds": len(topics),
        "feed": "party",
        "on": {"per_s": round(rate_on, 1), "cpu_us_per_record": round(cpu_on, 1)},
        "off": {"per_s": round(rate_off, 1), "cpu_us_per_record": round(cpu_off, 1)},
        "cpu_cost": round(cpu_on / cpu_off - 1, 3),
        "throughput_cost": round(1 - rate_on / rate_off, 3),
    }


async def scaling(
    raws: list[WorkerProcess],
    intakes: list[WorkerProcess],
    *,
    topics: dict[tuple[int, int, str], tuple[str, Produce]],
    records: int,
    group: Callable[[str], str],
    out: str,
) -> dict[str, Any]:
    """Throughput with 1, 2 and 4 partitions and 1 or 2 instances (processes) in the group. Each run
    has a topic of its own, filled once every instance owns its partitions, so no rebalance falls
    inside the measurement. `topics[(partitions, instances, mode)]` = (topic, fill it)."""
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for (partitions, instances, mode), (topic, produce) in sorted(topics.items()):
        workers = (raws if mode == "passthrough_tx" else intakes)[:instances]

        async def formed(
            workers: list[WorkerProcess] = workers, partitions: int = partitions, produce: Produce = produce
        ) -> None:
            await wait_assigned(workers, partitions)
            await produce()

        t = await run_group(
            workers,
            mode=mode,
            topics=[topic],
            group=group(f"scale.{mode}.{partitions}.{instances}"),
            n=records,
            out=out,
            before=formed,
        )
        rows.setdefault((partitions, instances), {"partitions": partitions, "instances": instances})[mode] = (
            t.as_dict()
        )
    return {"records": records, "rows": list(rows.values())}
