"""`make bench ARGS=--profile`: CPU µs per record per stage of the intake, per feed, in this process
(no Kafka): the service's pipeline (`IntakePipeline.handle`, then the commit's `apply`) on the feeds'
records in batches of 500, each stage timed exclusively (a stage called inside another is taken out
of the outer one), garbage collection as a stage of its own. What the Kafka side adds is the intake
section's CPU per record (the same pipeline in its consumer loop) minus this total.

CAP areas are computed in the intake's geometry child process: that stage is the main process's
wall time waiting for it (its own CPU is idle meanwhile)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.feeds import FEEDS, FeedStream, seeded_view

BATCH = 500


@dataclass(frozen=True, slots=True)
class _Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


class Stages:
    """Exclusive CPU time per stage: entering a stage pauses the one it was called from."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []

    def enter(self, stage: str) -> None:
        now, wall = time.process_time(), time.perf_counter()
        if self._stack:
            top = self._stack[-1]
            self.cpu[top[0]] += now - top[1]
            self.wall[top[0]] += wall - top[2]
        self._stack.append([stage, now, wall])

    def leave(self) -> None:
        now, wall = time.process_time(), time.perf_counter()
        stage, started, wall_started = self._stack.pop()
        self.cpu[stage] += now - started
        self.wall[stage] += wall - wall_started
        if self._stack:
            self._stack[-1][1], self._stack[-1][2] = now, wall

    def on_gc(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self.enter("garbage collection")
        elif self._stack and self._stack[-1][0] == "garbage collection":
            self.leave()

    def sync(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kw: Any) -> Any:
            self.enter(stage)
            try:
                return fn(*args, **kw)
            finally:
                self.leave()

        return timed

    def coro(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any, **kw: Any) -> Any:
            self.enter(stage)
            try:
                return await fn(*args, **kw)
            finally:
                self.leave()

        return timed


@contextmanager
def _patched(stages: Stages) -> Iterator[None]:
    """Time the intake's stages by wrapping them where they are looked up; undone afterwards."""
    import intake.domain.process as process
    import intake.pipeline as pipeline
    from intake.cap_geometry import CapGeometry
    from intake.domain.correlation import BookTxn
    from intake.domain.crosswalk import Crosswalk

    targets: list[tuple[Any, str, str, bool]] = [
        (
            pipeline.IntakePipeline,
            "handle",
            "pipeline: headers, outcome counters, ledger and state records",
            True,
        ),
        (CapGeometry, "prepare", "CAP geometry (child process, wall time)", True),
        (process.Intake, "process", "core: batch passes (rest)", False),
        (process.Intake, "_parse", "parse (decode, validate, feed rules)", False),
        (process.Intake, "_convert", "coordinates to WGS-84", False),
        (process.Intake, "_place", "placement (grid index, GridChain)", False),
        (process.Intake, "_build", "build (rest)", False),
        (Crosswalk, "map", "crosswalk (category)", False),
        (BookTxn, "decide", "correlation", False),
        (BookTxn, "record", "correlation", False),
        (process, "to_case_event", "case event (normalize)", False),
        (pipeline, "event_record", "output record (encode, headers)", False),
        (process.BatchOutcome, "apply", "apply after commit (case book)", False),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _s, _a in targets]
    for obj, name, stage, is_async in targets:
        fn = getattr(obj, name)
        setattr(obj, name, (stages.coro if is_async else stages.sync)(stage, fn))
    gc.callbacks.append(stages.on_gc)
    try:
        yield
    finally:
        gc.callbacks.remove(stages.on_gc)
        for obj, name, fn in saved:
            setattr(obj, name, fn)


async def _feed(feed: str, n: int, settle: bool) -> dict[str, Any]:
    from intake.bootstrap import intake_parts
    from onegrid.settings import KafkaSettings

    parts = intake_parts(KafkaSettings(), client_id="bench-profile")
    parts.view.records = seeded_view().records
    parts.view.spatial_version += 1
    parts.view.grid_index()
    if settle:
        from onegrid import heap

        heap.settle()  # as the service does once its start-up hooks ran
    pipeline = parts.pipeline
    # The view is filled here, not by the registry's table (which never runs without Kafka): the
    # pipeline's wait for that table to be current does not apply.
    pipeline.settle = None
    topic = next(t for t, f in pipeline.topics.feeds.items() if f == feed)
    stream = FeedStream(feed, seed=13)
    now_ms = int(time.time() * 1000)
    records = [
        _Record(topic, 0, i, r.key, r.value, tuple(r.headers), now_ms)
        for i, r in enumerate(stream.take(n + BATCH))
    ]
    try:
        # one batch first: parsers, codecs and caches warm, not counted
        await _one(pipeline, records[:BATCH])
        stages = Stages()
        with _patched(stages):
            started = time.process_time()
            for i in range(BATCH, len(records), BATCH):
                await _one(pipeline, records[i : i + BATCH])
            total = time.process_time() - started
    finally:
        await parts.stop()
    per = {s: round(v / n * 1e6, 1) for s, v in sorted(stages.cpu.items(), key=lambda kv: -kv[1])}
    cap_wall = stages.wall.get("CAP geometry (child process, wall time)")
    if cap_wall is not None:
        per["CAP geometry (child process, wall time)"] = round(cap_wall / n * 1e6, 1)
    return {"records": n, "cpu_us_per_record": round(total / n * 1e6, 1), "stages_us": per}


async def _one(pipeline: Any, batch: list[_Record]) -> None:
    result = await pipeline.handle(batch)
    for callback in result.after_commit:
        callback()


async def profile_intake(n: int, settle: bool = True) -> dict[str, Any]:
    return {
        "feeds": {feed: await _feed(feed, n, settle) for feed in FEEDS},
        "batch": BATCH,
        "settled_heap": settle,
    }


def render(p: dict[str, Any]) -> str:
    lines = [f"Intake, CPU µs per record per stage (no Kafka; batches of {p['batch']}):"]
    for feed, f in p["feeds"].items():
        lines.append(f"  {feed}: {f['cpu_us_per_record']} µs/record over {f['records']} records")
        lines += [f"    {us:>8.1f}  {stage}" for stage, us in f["stages_us"].items()]
    return "\n".join(lines)


def main(n: int, settle: bool = True) -> dict[str, Any]:
    result = asyncio.run(profile_intake(n, settle))
    print(render(result))
    return result
