"""The end-to-end section: the intake (a worker process running the service's pipeline) and the real
dispatch service (`python -m dispatch`) on the run's topics, under open-loop load."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench import cpu
from bench.environment import connect_pg
from bench.latency import Rig, Tail, highest_sustained, keyed_ids
from bench.plan import Plan
from bench.processes import WorkerProcess
from bench.services import ServiceProcess, bucket_percentiles
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
    stages: list[tuple[str, str]],
    partitions: int,
    group: str,
    cases_topic: str,
    order_topics: list[str],
    start_rate: float,
    database_url: str,
    dispatch_schema: str,
    hops: list[tuple[dict[str, str], list[str]]] | None = None,
) -> dict[str, Any]:
    """Latency at each of the plan's fixed rates (to cases.v1 and, for routed cases, to the order),
    with the event-loop lag of the intake (worker) and of dispatch during each; then the highest
    rate sustained to the department order (intake and dispatch), and the highest the intake
    sustains alone (dispatch stopped first, so it takes none of the CPU the intake is measured on).
    `windows`: the input topics ({feed: topic}) of each window in turn, all known to the worker;
    `stages`: each window's correlation topic and changelog (the intake runs both its stages, as the
    service does: the reports of these feeds are decided by the correlation stage). `hops`: for
    each fixed rate, input topics ({feed: topic}) and the topics of two exactly-once stages that do
    nothing, run at that rate after the intake's fixed-rate windows: the floor of the latency to
    cases.v1 on this machine (`_floor`)."""
    pending = iter(enumerate(windows))
    running = False
    # Each window starts with dispatch caught up: an overloaded window (5,000/s) leaves tens of
    # thousands of cases on the cases topic, and the next windows' orders would queue behind them.
    settle_dispatch = True
    settled: list[float] = []

    async def next_window() -> dict[str, str]:
        nonlocal running
        if running:  # the previous window's loop commits and leaves; its backlog stays unread
            await intake.send({"op": "stop"})
            await intake.answer("result")
        if settle_dispatch:
            settled.append(await _settle(database_url, dispatch_schema))
        k, topics = next(pending)
        topic_list = list(topics.values())
        await intake.send(
            {
                "op": "run",
                "mode": "intake_staged",
                "topics": topic_list,
                "correlate": stages[k][0],
                "correlate_state": stages[k][1],
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
    dispatched = _dispatched(database_url, dispatch_schema)
    rig = Rig(kafka, tuple(windows[0]), cases, orders, window=next_window, dispatched=dispatched)
    try:
        # Warm-up: connections, caches, and the broker's transaction paths (its JIT). On a fresh
        # broker two forwarding exactly-once stages at 200/s took p99 575 ms in their first 20 s,
        # 130 ms in the next 20 s and 50-80 ms after a minute: the full run warms up for 30 s.
        await rig.run(200, plan.warmup_s, drain_s=plan.drain_s, orders=False)
        runs = []
        for rate in plan.latency_rates:
            await intake.send({"op": "lag", "reset": True})
            await intake.answer("lag")
            before = await asyncio.to_thread(dispatch.loop_lag_buckets)
            cpu_before, started = await asyncio.to_thread(cpu.snapshot), time.monotonic()
            run = await rig.run(rate, plan.latency_s, drain_s=plan.drain_s, steady_cpu=True)
            # the whole window (its set-up and drain too): every record sent is done or abandoned
            run["cpu"] = cpu.per_record(
                cpu_before,
                await asyncio.to_thread(cpu.snapshot),
                records=run["sent"],
                wall_s=time.monotonic() - started,
            )
            await intake.send({"op": "lag", "reset": True})
            after = await asyncio.to_thread(dispatch.loop_lag_buckets)
            run["event_loop_lag"] = {
                "intake (worker)": (await intake.answer("lag"))["lag"],
                "dispatch": bucket_percentiles(before, after),
            }
            runs.append(run)
            under_load = {"intake (worker)": intake.rss(), "dispatch": dispatch.rss()}
        floor: list[dict[str, Any]] = []
        if hops:
            if running:  # the intake's last window leaves; the floor runs in the same worker
                await intake.send({"op": "stop"})
                await intake.answer("result")
                running = False
            floor = await _floor(
                kafka,
                plan,
                intake,
                hops,
                partitions=partitions,
                group=f"{group}.hops",
                # on a quiet machine: dispatch done with what the windows before left it
                settle=lambda: _settle(database_url, dispatch_schema),
            )
        # To the order: from the highest fixed rate sustained to the order (else below the lowest),
        # bounded by the lowest fixed rate above it that was not.
        good = [float(r["rate"]) for r in runs if r["sustained_orders"]]
        start = max(good) if good else 0.7 * min(plan.latency_rates)
        failed = [float(r["rate"]) for r in runs if not r["sustained_orders"] and r["rate"] > start]
        best_orders, tried_orders = await highest_sustained(
            rig,
            start,
            seconds=plan.sustained_s,
            trials=plan.sustained_trials,
            drain_s=plan.drain_s,
            orders=True,
            failed_at=min(failed) if failed else None,
        )
        dispatch.stop()
        settle_dispatch = False
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
        "floor": floor,
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
        "sustained_orders": {
            "stage": "legacy record -> department order (intake and dispatch)",
            "window_s": plan.sustained_s,
            "highest_rate": best_orders,
            "trials": [
                {k: t[k] for k in ("rate", "achieved_rate", "missing", "sustained_orders", "dispatched")}
                | {"p99_ms": t["orders"]["p99_ms"]}
                for t in tried_orders
            ],
            "rule": f"sustained to {CASES}, and every case registered by dispatch and every order it "
            "wrote seen on the orders topics within the drain, order p99 <= 1 s",
        },
        "dispatch_settle_s": {
            "windows": len(settled),
            "max": round(max(settled), 1) if settled else None,
            "total": round(sum(settled), 1),
        },
        "rss_under_load_mb": {k: round(v / 2**20, 1) for k, v in under_load.items()},
        "windows": "each window on input topics of its own, from an empty case book",
    }


def _dispatched(database_url: str, schema: str) -> Callable[[list[str]], Awaitable[tuple[int, int]]]:
    """Of the given case ids: how many dispatch registered, how many got an order (its database)."""

    async def count(case_ids: list[str]) -> tuple[int, int]:

        conn = await connect_pg(database_url)
        try:
            registered = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".cases WHERE case_id = ANY($1::uuid[])', case_ids
            )
            routed = await conn.fetchval(
                f'SELECT count(DISTINCT case_id) FROM "{schema}".orders WHERE case_id = ANY($1::uuid[])',
                case_ids,
            )
        finally:
            await conn.close()
        return int(registered), int(routed)

    return count


async def _floor(
    kafka: KafkaSettings,
    plan: Plan,
    worker: WorkerProcess,
    hops: list[tuple[dict[str, str], list[str]]],
    *,
    partitions: int,
    group: str,
    settle: Callable[[], Awaitable[float]],
) -> list[dict[str, Any]]:
    """The same records at each fixed rate through two exactly-once stages that only forward them
    (the intake's two stages, without the intake's work: `bench.worker` mode `hops`), each rate on
    topics of its own; latency from the send to the arrival on the last hop, read_committed."""
    pending = iter(enumerate(hops))
    running = False

    async def window() -> dict[str, str]:
        nonlocal running
        if running:
            await worker.send({"op": "stop"})
            await worker.answer("result")
        await settle()
        k, (inputs, chain) = next(pending)
        await worker.send(
            {
                "op": "run",
                "mode": "hops",
                "topics": list(inputs.values()),
                "hops": chain,
                "group": f"{group}.{k}",
                "n": None,
            }
        )
        running = True
        await wait_assigned([worker], partitions * len(inputs))
        return inputs

    last = Tail(kafka, [chain[-1] for _, chain in hops])
    await last.start()
    rig = Rig(kafka, tuple(hops[0][0]), last, None, window=window, identify=keyed_ids)
    try:
        runs = []
        for rate in plan.latency_rates[: len(hops)]:
            run = await rig.run(rate, plan.latency_s, drain_s=plan.drain_s, orders=False)
            runs.append(
                {k: run[k] for k in ("rate", "achieved_rate", "sent", "missing", "cases", "sustained")}
            )
        return runs
    finally:
        if running:
            await worker.send({"op": "stop"})
            await worker.answer("result")
        await last.stop()


SETTLE_QUIET_S = 2.0
SETTLE_TIMEOUT_S = 600.0


async def _settle(database_url: str, schema: str) -> float:
    """Wait until dispatch has caught up (its outbox empty and no case registered for
    `SETTLE_QUIET_S`); the seconds it took. Raises after `SETTLE_TIMEOUT_S`."""

    started = time.monotonic()
    conn = await connect_pg(database_url)
    try:
        last, quiet_since = -1, time.monotonic()
        while True:
            cases = int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".cases'))
            pending = int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox'))
            now = time.monotonic()
            if cases != last or pending:
                last, quiet_since = cases, now
            elif now - quiet_since >= SETTLE_QUIET_S:
                return round(now - started - SETTLE_QUIET_S, 1)
            if now - started > SETTLE_TIMEOUT_S:
                raise TimeoutError(
                    f"dispatch still busy after {SETTLE_TIMEOUT_S} s ({pending} in its outbox)"
                )
            await asyncio.sleep(0.25)
    finally:
        await conn.close()
