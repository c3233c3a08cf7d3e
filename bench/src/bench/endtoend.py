"""The end-to-end section: the intake (a worker process running the service's pipeline) and the real
dispatch service (`python -m dispatch`) on the run's topics, under open-loop load."""

from __future__ import annotations

from typing import Any

from bench.latency import Rig, Tail, highest_sustained
from bench.plan import Plan
from bench.processes import WorkerProcess
from bench.services import ServiceProcess
from bench.throughput import wait_assigned
from onegrid.settings import KafkaSettings


async def end_to_end(
    kafka: KafkaSettings,
    plan: Plan,
    *,
    intake: WorkerProcess,
    dispatch: ServiceProcess,
    feeds: dict[str, str],
    partitions: int,
    group: str,
    cases_topic: str,
    order_topics: list[str],
    start_rate: float,
) -> dict[str, Any]:
    """Latency at each of the plan's fixed rates (to cases.v1 and, for routed cases, to the order),
    then the highest rate the intake sustains (dispatch stopped first: its desk, measured on its
    own, is far slower and would otherwise take the CPU the intake is being measured on)."""
    await intake.send(
        {"op": "run", "mode": "intake", "topics": list(feeds.values()), "group": group, "n": None}
    )
    await wait_assigned([intake], partitions * len(feeds))
    cases, orders = Tail(kafka, [cases_topic]), Tail(kafka, order_topics)
    await cases.start()
    await orders.start()

    async def fresh() -> None:
        await intake.send({"op": "fresh"})
        await intake.answer("fresh")

    rig = Rig(kafka, feeds, cases, orders, fresh=fresh)
    try:
        await rig.run(100, 1.0, drain_s=plan.drain_s, orders=False)  # warm-up: connections, caches
        await rig.settle()
        runs = []
        for rate in plan.latency_rates:
            runs.append(await rig.run(rate, plan.latency_s, drain_s=plan.drain_s))
            await rig.settle()
        under_load = {"intake (worker)": intake.rss(), "dispatch": dispatch.rss()}
        dispatch.stop()
        best, tried = await highest_sustained(
            rig, start_rate, seconds=plan.sustained_s, trials=plan.sustained_trials, drain_s=plan.drain_s
        )
    finally:
        await intake.send({"op": "stop"})
        await intake.answer("result")
        await cases.stop()
        await orders.stop()
    return {
        "feeds": sorted(feeds),
        "runs": runs,
        "sustained": {
            "stage": "legacy record -> cases.v1 (intake)",
            "window_s": plan.sustained_s,
            "highest_rate": best,
            "trials": [
                {k: t[k] for k in ("rate", "achieved_rate", "missing", "sustained")}
                | {"p99_ms": t["cases"]["p99_ms"]}
                for t in tried
            ],
            "rule": "nothing missing after the drain, the producer kept its schedule, p99 <= 1 s",
        },
        "rss_under_load_mb": {k: round(v / 2**20, 1) for k, v in under_load.items()},
    }
