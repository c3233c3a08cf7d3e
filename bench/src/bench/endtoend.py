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
from onegrid.topics import CASES


async def end_to_end(
    kafka: KafkaSettings,
    plan: Plan,
    *,
    intake: WorkerProcess,
    dispatch: ServiceProcess,
    windows: list[dict[str, str]],
    partitions: int,
    group: str,
    cases_topic: str,
    order_topics: list[str],
    start_rate: float,
) -> dict[str, Any]:
    """Latency at each of the plan's fixed rates (to cases.v1 and, for routed cases, to the order),
    then the highest rate the intake sustains (dispatch stopped first: its desk, measured on its
    own, is far slower and would otherwise take the CPU the intake is being measured on).
    `windows`: the input topics ({feed: topic}) of each window in turn, all known to the worker."""
    pending = iter(enumerate(windows))
    running = False

    async def next_window() -> dict[str, str]:
        nonlocal running
        if running:  # the previous window's loop commits and leaves; its backlog stays unread
            await intake.send({"op": "stop"})
            await intake.answer("result")
        k, topics = next(pending)
        topic_list = list(topics.values())
        await intake.send(
            {
                "op": "run",
                "mode": "intake",
                "topics": topic_list,
                "group": f"{group}.{k}",
                "n": None,
                "fresh": True,
            }
        )
        await intake.answer("fresh")
        running = True
        await wait_assigned([intake], partitions * len(topics))
        return topics

    cases, orders = Tail(kafka, [cases_topic]), Tail(kafka, order_topics)
    await cases.start()
    await orders.start()
    rig = Rig(kafka, tuple(windows[0]), cases, orders, window=next_window)
    try:
        await rig.run(100, 1.0, drain_s=plan.drain_s, orders=False)  # warm-up: connections, caches
        runs = []
        for rate in plan.latency_rates:
            runs.append(await rig.run(rate, plan.latency_s, drain_s=plan.drain_s))
            under_load = {"intake (worker)": intake.rss(), "dispatch": dispatch.rss()}
        dispatch.stop()
        best, tried = await highest_sustained(
            rig, start_rate, seconds=plan.sustained_s, trials=plan.sustained_trials, drain_s=plan.drain_s
        )
    finally:
        if running:
            await intake.send({"op": "stop"})
            await intake.answer("result")
        await cases.stop()
        await orders.stop()
    return {
        "feeds": sorted(windows[0]),
        "runs": runs,
        "sustained": {
            "stage": f"legacy record -> {CASES} (intake)",
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
        "windows": "each window on input topics of its own, from an empty case book",
    }
