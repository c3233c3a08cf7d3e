"""End-to-end latency at fixed open-loop rates: a legacy record's send -> its CaseEvent on cases.v1
-> (when dispatch routes the case to a department) its order on dispatch.orders.<dept>.v1.

Open loop: records are sent on a wall-clock schedule (record i at t0 + i/rate), never waiting for
results, so a slow system shows as growing latency, not as a slower producer. Latency is measured
in this process on one clock: from just before `send` to the arrival of the committed event
(read_committed consumers, assigned every partition, positioned at the end before the run).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench import cpu
from bench.feeds import FeedStream, Legacy
from bench.kafka_io import partitions_of
from onegrid.settings import KafkaSettings

# A rate is sustained when nothing is missing after the drain, the producer kept its schedule and
# latency stayed bounded (no backlog building up).
SUSTAINED_P99_MS = 1000.0


def percentiles(ms: list[float]) -> dict[str, float | int | None]:
    if not ms:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "p99_9_ms": None, "max_ms": None}
    a = np.asarray(ms)
    p50, p99, p999 = np.percentile(a, [50, 99, 99.9])
    return {
        "n": len(ms),
        "p50_ms": round(float(p50), 1),
        "p99_ms": round(float(p99), 1),
        "p99_9_ms": round(float(p999), 1),
        "max_ms": round(float(a.max()), 1),
    }


class Tail:
    """Reads topics from their end as they grow; `on_record` extracts (key, payload) pairs."""

    def __init__(self, kafka: KafkaSettings, topics: list[str]) -> None:
        self.kafka = kafka
        self.topics = topics
        self.consumer: AIOKafkaConsumer | None = None
        self.records: list[tuple[float, bytes | None, bytes | None]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        c = AIOKafkaConsumer(
            isolation_level="read_committed", enable_auto_commit=False, **self.kafka.client_kwargs()
        )
        await c.start()
        tps = []
        for t in self.topics:
            tps += [TopicPartition(t, p) for p in await partitions_of(c, t)]
        c.assign(tps)
        await c.seek_to_end(*tps)
        for tp in tps:
            await c.position(tp)
        self.consumer = c
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self.consumer is not None
        while True:
            fetched = await self.consumer.getmany(timeout_ms=50)
            now = time.time()
            for rs in fetched.values():
                self.records += [(now, r.key, r.value) for r in rs]

    def take(self) -> list[tuple[float, bytes | None, bytes | None]]:
        out, self.records = self.records, []
        return out

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.consumer is not None:
            await self.consumer.stop()


def case_event_ids(_key: bytes | None, value: bytes | None) -> tuple[str, str]:
    """(source id, case id) of a CaseEvent on the cases topic."""
    event = json.loads(value or b"{}")
    return event.get("source", {}).get("source_id", ""), event.get("case_id", "")


def keyed_ids(key: bytes | None, _value: bytes | None) -> tuple[str, str]:
    """(source id, source id) of a legacy record forwarded unchanged (its key is its source id)."""
    k = (key or b"").decode()
    return k, k


@dataclass
class Rig:
    """The system under load: feed topics in, the cases topic and the orders topics out."""

    kafka: KafkaSettings
    feeds: tuple[str, ...]
    cases: Tail
    orders: Tail | None  # None: nothing downstream of the cases topic is measured
    # Before each window: the intake's input topics for it ({feed: topic}). Each window has topics of
    # its own, read by the intake from an empty case book, so the backlog a failed window leaves
    # behind never slows the next one.
    window: Callable[[], Awaitable[dict[str, str]]]
    # With orders: how many of the given cases dispatch has registered, and how many got an order
    # (its database), so a rate counts as sustained to the order only when dispatch kept up.
    dispatched: Callable[[list[str]], Awaitable[tuple[int, int]]] | None = None
    streams: dict[str, FeedStream] = field(default_factory=dict)
    # What an arrival on `cases` answers: (the legacy record's source id, the case id)
    identify: Callable[[bytes | None, bytes | None], tuple[str, str]] = case_event_ids

    def __post_init__(self) -> None:
        self.streams = {f: FeedStream(f, seed=23) for f in self.feeds}

    def records(self, n: int, topics: dict[str, str]) -> list[tuple[str, Legacy]]:
        feeds = self.feeds
        per = {f: self.streams[f].take(n // len(feeds) + 1) for f in feeds}
        return [
            (topics[feeds[i % len(feeds)]], per[feeds[i % len(feeds)]][i // len(feeds)]) for i in range(n)
        ]

    async def run(
        self, rate: float, seconds: float, *, drain_s: float, orders: bool = True, steady_cpu: bool = False
    ) -> dict[str, Any]:
        """One window at `rate`; `orders=False` skips waiting for orders (dispatch not running).
        `steady_cpu`: the CPU per record by process from the first quarter of the window's records
        sent to the last (`cpu_steady`): the system's cost at that rate once running, without the
        window's set-up (a fresh intake run catching up), its drain, or the catching up before it."""
        todo = self.records(max(1, int(rate * seconds)), await self.window())
        self.cases.take()
        if self.orders is not None:
            self.orders.take()
        producer = AIOKafkaProducer(
            acks="all", linger_ms=5, client_id="bench-legacy", **self.kafka.client_kwargs()
        )
        await producer.start()
        sent: dict[str, float] = {}
        futures = []
        try:
            t0 = time.monotonic()
            first = len(todo) // 4 if steady_cpu else -1
            for i, (topic, r) in enumerate(todo):
                if i == first:  # the pacing below makes up for the snapshot's time
                    steady = (await asyncio.to_thread(cpu.snapshot), time.monotonic())
                due = t0 + i / rate
                delay = due - time.monotonic()
                if delay > 0.001:
                    await asyncio.sleep(delay)
                sent[r.key.decode()] = time.time()
                futures.append(await producer.send(topic, r.value, key=r.key, headers=list(r.headers)))
            send_s = time.monotonic() - t0
            if first >= 0:
                cpu_steady = cpu.per_record(
                    steady[0],
                    await asyncio.to_thread(cpu.snapshot),
                    records=len(todo) - first,
                    wall_s=time.monotonic() - steady[1],
                )
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        case_ms, case_sent = await self._collect_cases(sent, drain_s)
        orders = orders and self.orders is not None
        order_ms = await self._collect_orders(case_sent, drain_s) if orders else []
        registered = routed = None
        if orders and self.dispatched is not None:
            registered, routed = await self.dispatched(list(case_sent))
        missing = len(sent) - len(case_ms)  # one latency per record whose event arrived
        achieved = len(sent) / send_s if send_s > 0 else float(len(sent))
        cases = percentiles(case_ms)
        sustained = (
            missing == 0
            and achieved >= 0.98 * rate
            and cases["p99_ms"] is not None
            and float(cases["p99_ms"]) <= SUSTAINED_P99_MS
        )
        order_pct = percentiles(order_ms)
        # To the order: every case registered by dispatch within the drain, every order it wrote
        # seen on the orders topics, and the order's p99 within the same bound.
        sustained_orders = (
            sustained
            and registered == len(case_sent)
            and routed == len(order_ms)
            and order_pct["p99_ms"] is not None
            and float(order_pct["p99_ms"]) <= SUSTAINED_P99_MS
        )
        return {
            **({"cpu_steady": cpu_steady} if first >= 0 else {}),
            "rate": rate,
            "seconds": seconds,
            "sent": len(sent),
            "achieved_rate": round(achieved, 1),
            "missing": missing,
            "cases": cases,
            "orders": order_pct,
            "dispatched": {"cases": len(case_sent), "registered": registered, "with_orders": routed},
            "sustained": sustained,
            "sustained_orders": sustained_orders,
        }

    async def _collect_cases(
        self, sent: dict[str, float], drain_s: float
    ) -> tuple[list[float], dict[str, float]]:
        """Latency of each record's first case event; and {case id: its record's send time}."""
        seen: set[str] = set()
        case_sent: dict[str, float] = {}
        latencies: list[float] = []
        deadline = time.monotonic() + drain_s
        while len(seen) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            for at, key, value in self.cases.take():
                source, case_id = self.identify(key, value)
                if source in sent and source not in seen:
                    seen.add(source)
                    latencies.append((at - sent[source]) * 1000)
                    case_sent.setdefault(case_id, sent[source])
        return latencies, case_sent

    async def _collect_orders(self, case_sent: dict[str, float], drain_s: float) -> list[float]:
        """Orders for this run's cases, until none has come for a second (or the drain ends); orders
        of earlier runs' cases arriving late are not counted."""
        assert self.orders is not None
        case_sent = dict(case_sent)
        latencies: list[float] = []
        deadline = time.monotonic() + drain_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.0:
            await asyncio.sleep(0.1)
            got = self.orders.take()
            if got:
                quiet_since = time.monotonic()
            for at, key, _value in got:
                case = (key or b"").decode()
                t = case_sent.pop(case, None)
                if t is not None:
                    latencies.append((at - t) * 1000)
        return latencies


async def highest_sustained(
    rig: Rig,
    start: float,
    *,
    seconds: float,
    trials: int,
    drain_s: float,
    orders: bool = False,
    failed_at: float | None = None,
    close: float = 1.05,
) -> tuple[float | None, list[dict[str, Any]]]:
    """The highest rate sustained for `seconds` (with `orders`: sustained to the department order)
    within `trials` windows. From `start`: up by 1.25 while sustained, down by 0.7 while nothing is;
    once a sustained rate and a failed one above it are known, their geometric middle (bisection) until
    the two are within `close` of each other. `failed_at`: a rate already seen failing (a fixed-rate
    window), the ceiling from the start. A failed window is run again before it counts (one window
    can fail on its own, e.g. the database busy after the overload before it), and only rates
    sustained in these windows are reported."""
    key = "sustained_orders" if orders else "sustained"
    best, ceiling, tried = None, failed_at, []
    rate, retried = start, False
    for _ in range(trials):
        result = await rig.run(round(rate), seconds, drain_s=drain_s, orders=orders)
        tried.append(result)
        ran = float(result["rate"])
        if result[key]:
            best, retried = max(best or 0.0, ran), False
        elif not retried and (best is None or ran > best):
            retried = True  # the same rate once more before it bounds the search
            continue
        else:
            retried = False
            if best is None or ran > best:
                ceiling = ran if ceiling is None else min(ceiling, ran)
        if best is not None and ceiling is not None:
            if ceiling / best <= close:
                break
            rate = (best * ceiling) ** 0.5
        elif best is not None:
            rate = best * 1.25
        else:
            rate = (ceiling if ceiling is not None else rate) * 0.7
    return best, tried
