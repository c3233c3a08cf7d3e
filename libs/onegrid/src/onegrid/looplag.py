"""Event-loop lag: how late the loop wakes a task that asked to sleep until a given moment. Every
heartbeat, poll, HTTP answer and commit of a service waits behind whatever CPU work runs on the loop,
so this is the one number that says a service stalls (a rebuilt index, a replay, a large batch
decoded at once) before its consumers are thrown out of their groups.

`LoopLag.run` samples every `interval_s` and records each sample in the histogram
`onegrid_event_loop_lag` (seconds; Prometheus `onegrid_event_loop_lag_seconds_bucket`), which the
alert OneGridEventLoopLag watches; `percentiles()` answers from the last samples it kept (the bench
reads them from its worker processes)."""

from __future__ import annotations

import asyncio
from collections import deque

from onegrid import telemetry

# Seconds: a healthy loop lags well under 5 ms; a Kafka heartbeat waits 3 s by default.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopLag:
    def __init__(self, interval_s: float = 0.05, keep: int = 20_000) -> None:
        self.interval_s = interval_s
        self.samples: deque[float] = deque(maxlen=keep)
        self._histogram = telemetry.meter("onegrid").create_histogram(
            "onegrid_event_loop_lag",
            unit="s",
            description="how late the event loop woke a task after its sleep (CPU work blocking the loop)",
            explicit_bucket_boundaries_advisory=list(BUCKETS),
        )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, loop.time() - due)
            self.samples.append(lag)
            self._histogram.record(lag)

    def reset(self) -> None:
        self.samples.clear()

    def percentiles(self) -> dict[str, float | int | None]:
        """p50, p99, p99.9 and max of the kept samples, in milliseconds."""
        xs = sorted(self.samples)
        if not xs:
            return {"n": 0, "p50_ms": None, "p99_ms": None, "p99_9_ms": None, "max_ms": None}

        def at(q: float) -> float:
            return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2)

        return {
            "n": len(xs),
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "p99_9_ms": at(0.999),
            "max_ms": round(xs[-1] * 1000, 2),
        }
