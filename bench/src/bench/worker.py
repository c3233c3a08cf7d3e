"""One measured process: `python -m bench.worker BOOTSTRAP [--tracing on|off]`.

It reads commands from stdin, one JSON object a line, and answers on stdout the same way, so the
bench can run a consumer in a process of its own (a second instance is a second process, as in
production) and keep the measuring out of the measured process:

- `{"op": "intake", "feeds": {topic: feed}, "cases", "state", "registry", "dlq", "quarantine": T}`
  builds the real
  intake (intake.bootstrap.intake_parts) and catches up its views; answers `{"ready": ...}`.
- `{"op": "run", "mode": M, "topics": [...], "group": G, "n": N|null, "out": T, "instance": I}` with
  M one of consume, passthrough, passthrough_tx, intake, intake_staged, or hops (with `"hops": [T, ...]`:
  exactly-once stages in series that forward every record, the end-to-end latency's floor): runs until N records are done (or a `stop`
  command), printing `{"progress": count, "assigned": partitions}` every 0.2 s, then
  `{"result": {count, t_first, t_last, cpu_s}}` (monotonic clock: comparable across processes), or
  `{"error": reason}` when the run failed (e.g. the consumer loop stopped on its dead-letter limit).
- `"fresh": true` in a run command, or `{"op": "fresh"}` between windows of a running loop, empties
  the intake's case book first (answers `{"fresh": recent cases it held}`).
- `{"op": "lag", "reset": bool}` answers `{"lag": percentiles}`: the event loop's lag (onegrid.looplag)
  since the last reset, sampled every 50 ms all along.
- `{"op": "exit"}` ends the process (the bench reads its RSS from outside, with psutil).

With `ONEGRID_BENCH_CPROFILE=DIR` in its environment, each run is profiled (cProfile) into
`DIR/<mode>-<group>-<instance>.prof`: where a record's time goes on the Kafka side, the same
pipeline's own cost being `make bench ARGS=--profile` (the profiler slows everything down; the
figures of such a run are not the bench's).

With `--tracing on` the process installs the service's telemetry (OpenTelemetry SDK, sampler at 1.0,
Prometheus metrics) with an exporter that drops the spans; with `off` no provider is installed, so
every span and metric is the API's no-op.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.raw import Progress, consume, passthrough
from onegrid.settings import WAVE_INTERVAL_MS, KafkaSettings, TelemetrySettings

log = logging.getLogger("bench.worker")


def wave_interval_ms() -> int:
    """The intake's wave interval, read as the service reads it (ONEGRID_INTAKE_WAVE_INTERVAL_MS)."""
    return int(os.environ.get("ONEGRID_INTAKE_WAVE_INTERVAL_MS", WAVE_INTERVAL_MS))


class _DroppingExporter:
    """A span exporter that keeps nothing: the SDK's full cost up to the wire, and no wire."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def install_telemetry(tracing: bool) -> None:
    from onegrid import telemetry

    settings = TelemetrySettings(sample_ratio=1.0, log_level="WARNING", log_json=True)
    if tracing:
        telemetry.configure("intake", settings, extra_span_exporters=[_DroppingExporter()])  # type: ignore[list-item]
    else:
        telemetry.configure_logging("intake", settings)


class Worker:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.parts: Any = None
        self.dead_letters = ("", "")
        self.follow: asyncio.Task[None] | None = None
        self.progress: Progress | None = None
        self.run_task: asyncio.Task[None] | None = None
        from onegrid.looplag import LoopLag

        self.lag = LoopLag()

    def say(self, obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    async def intake(self, cmd: dict[str, Any]) -> None:
        from intake.bootstrap import intake_parts
        from intake.pipeline import IntakeTopics

        topics = IntakeTopics(feeds=dict(cmd["feeds"]), cases=cmd["cases"], state=cmd["state"])
        self.dead_letters = (cmd["dlq"], cmd["quarantine"])
        self.parts = intake_parts(
            self.kafka,
            client_id=f"bench-intake-{cmd['cases']}",
            topics=topics,
            registry_topic=cmd["registry"],
        )
        await self.parts.catch_up()
        from onegrid import heap

        heap.settle()  # as the service does once its start-up hooks ran
        self.follow = asyncio.create_task(self.parts.follow())
        self.say({"ready": len(self.parts.view.all("division"))})

    def fresh(self) -> int:
        """An empty case book and station state, as in a new intake process on new topics, so that
        every run starts from the same state whatever this process ran before; returns how many
        recent cases the old book held."""
        from intake.domain.correlation import CaseBook
        from intake.domain.feeds.hj212.feed import EnvState

        if self.parts is None:
            return 0
        intake = self.parts.pipeline.intake
        held = sum(len(bucket) for bucket in intake.book.recent.values())
        intake.book, intake.env = CaseBook(), EnvState()
        return held

    async def run(self, cmd: dict[str, Any]) -> None:
        progress = self.progress = Progress()
        n = cmd.get("n")
        reporter = asyncio.create_task(self._report(progress, n))
        mode, topics, group = cmd["mode"], list(cmd["topics"]), cmd["group"]
        profiling = os.environ.get("ONEGRID_BENCH_CPROFILE", "")
        profiler = cProfile.Profile() if profiling else None
        try:
            if profiler is not None:
                profiler.enable()
            await self._run(cmd, mode, topics, group, progress)
        except Exception as exc:
            log.exception("run %s failed", mode)
            self.say({"error": f"{mode} on {topics}: {type(exc).__name__}: {exc}"})
            return
        finally:
            reporter.cancel()
            if profiler is not None:
                profiler.disable()
                instance = cmd.get("instance", "0")
                profiler.dump_stats(str(Path(profiling) / f"{mode}-{group}-{instance}.prof"))
        self.say({"result": progress.summary()})

    async def _run(
        self, cmd: dict[str, Any], mode: str, topics: list[str], group: str, progress: Progress
    ) -> None:
        instance = str(cmd.get("instance", "0"))
        if mode == "consume":
            await consume(self.kafka, topics, group, progress)
        elif mode in ("passthrough", "passthrough_tx"):
            tx = mode == "passthrough_tx"
            await passthrough(
                self.kafka, topics, group, cmd["out"], progress, transactional=tx, instance=instance
            )
        elif mode == "intake":
            await self._intake_loop(topics, group, progress, instance)
        elif mode == "hops":
            await self._hops(topics, group, progress, instance, list(cmd["hops"]))
        elif mode == "intake_staged":
            await self._staged_intake(
                topics, group, progress, instance, cmd["correlate"], cmd["correlate_state"]
            )
        else:
            raise ValueError(f"unknown mode {mode!r}")

    async def _report(self, progress: Progress, n: int | None) -> None:
        while True:
            self.say({"progress": progress.count, "assigned": progress.assigned})
            if n is not None and progress.count >= n:
                progress.stop.set()
            await asyncio.sleep(0.2)

    async def _intake_loop(self, topics: list[str], group: str, progress: Progress, instance: str) -> None:
        """The intake's consumer loop exactly as the service wires it (exactly once, 500 a batch)."""
        from onegrid.kafka import BatchResult, Record
        from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
        from onegrid.kafka.producer import make_producer, partition_producers

        if self.parts is None:
            raise RuntimeError("send the intake command before an intake run")
        pipeline = self.parts.pipeline
        producer = make_producer(self.kafka, client_id=f"{group}-p-{instance}")
        await producer.start()

        async def handle(records: Sequence[Record]) -> BatchResult:
            progress.started()
            result: BatchResult = await pipeline.handle(records)
            # Runs once the batch's transaction has committed: the record is really done then.
            result.after_commit.append(lambda: progress.done(len(records)))
            return result

        loop = ConsumerLoop(
            consumer=make_consumer(self.kafka, group_id=group, client_id=f"{group}-c"),
            handler=handle,
            producer=producer,
            transactional=partition_producers(self.kafka, group=group, client_id=f"{group}-t-{instance}"),
            config=LoopConfig(
                group_id=group,
                topics=tuple(topics),
                service="intake",
                exactly_once=True,
                dlq_topic=self.dead_letters[0],
                quarantine_topic=self.dead_letters[1],
                wave_interval_ms=wave_interval_ms(),
            ),
        )

        async def stop_when_asked() -> None:
            while not progress.stop.is_set():
                progress.assigned = len(loop.assigned)
                await asyncio.sleep(0.05)
            loop.stop()

        watcher = asyncio.create_task(stop_when_asked())
        try:
            await loop.run()
        finally:
            watcher.cancel()
            await producer.stop()

    async def _staged_intake(
        self,
        topics: list[str],
        group: str,
        progress: Progress,
        instance: str,
        correlate: str,
        correlate_state: str,
    ) -> None:
        """The intake as the service runs it (`IntakeParts.loops`): the legacy loop decides HJ 212
        where it reads it and forwards every other report, with its partition's watermarks, to the
        correlation stage, whose own exactly-once loop decides it once every source's watermark has
        passed it. The run has a correlation topic and changelog of its own, read from an empty
        state (as its input topics are)."""
        from dataclasses import replace

        from intake.bootstrap import forwarding_sources
        from intake.domain.correlation import CaseBook
        from intake.settings import Settings
        from onegrid.kafka.table import GlobalTable

        if self.parts is None:
            raise RuntimeError("send the intake command before an intake run")
        parts, pipeline = self.parts, self.parts.pipeline
        plain = pipeline.topics
        pipeline.topics = replace(
            plain,
            feeds={t: f for t, f in plain.feeds.items() if t in topics},
            correlate=correlate,
            correlate_state=correlate_state,
        )
        pipeline.intake.deferred = True
        book = pipeline.intake.book
        pipeline.book = CaseBook(windows=book.windows, keep_sources=book.keep_sources)
        pipeline.marks.clear()
        pipeline.queues.clear()
        pipeline.committed_queues.clear()
        changelog = GlobalTable(
            self.kafka, correlate_state, pipeline.observe_state, client_id=f"{group}-correlate-state"
        )
        await changelog.catch_up()
        following = asyncio.create_task(changelog.follow())
        parts.tables.append(changelog)  # caught up on every hand-over, as in the service
        try:
            pipeline.sources = await forwarding_sources(self.kafka, pipeline)
            legacy, stage = parts.loops(
                self.kafka,
                group_prefix=group,
                client_id=f"{group}-{instance}",
                dlq_topic=self.dead_letters[0],
                quarantine_topic=self.dead_letters[1],
                tick_interval_s=Settings.model_construct().legacy_tick_s,  # the defaults
                wave_interval_ms=wave_interval_ms(),
            )

            async def stop_when_asked() -> None:
                while not progress.stop.is_set():
                    # Ready when both stages hold their partitions.
                    progress.assigned = len(legacy.assigned) if stage.assigned else 0
                    await asyncio.sleep(0.05)
                legacy.stop()
                stage.stop()

            watcher = asyncio.create_task(stop_when_asked())
            try:
                await asyncio.gather(legacy.run(), stage.run())
            finally:
                watcher.cancel()
        finally:
            parts.tables.remove(changelog)
            changelog.stop()  # its follow() closes the consumer within one poll
            await asyncio.gather(following, return_exceptions=True)
            pipeline.topics = plain
            pipeline.intake.deferred = False
            pipeline.sources = frozenset()

    async def _hops(
        self, topics: list[str], group: str, progress: Progress, instance: str, hops: list[str]
    ) -> None:
        """Exactly-once stages in series that do nothing: stage i reads its input (the run's topics,
        then the stage before's output) and writes every record unchanged to `hops[i]`. Built as the
        intake builds its stages (the services' consumer loop, a transactional producer per input
        partition, the same batching), so the latency to the last hop is what the stages' exactly-once
        delivery costs on this machine before any work is done: the end-to-end latency's floor."""
        import functools

        from onegrid.kafka import BatchResult, Record
        from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
        from onegrid.kafka.producer import partition_producers
        from onegrid.kafka.records import OutRecord

        def forward(out: str) -> Any:
            async def handle(records: Sequence[Record]) -> BatchResult:
                return BatchResult(
                    outputs=[OutRecord(out, r.value, key=r.key, headers=tuple(r.headers)) for r in records]
                )

            return handle

        loops = []
        for i, (ins, out) in enumerate(zip([topics, *([h] for h in hops[:-1])], hops, strict=True)):
            name = f"{group}.{i}"
            consumer = functools.partial(
                make_consumer, self.kafka, group_id=name, client_id=f"{name}-{instance}"
            )
            loops.append(
                ConsumerLoop(
                    consumer=consumer(),
                    renew=consumer,
                    handler=forward(out),
                    transactional=partition_producers(
                        self.kafka, group=name, client_id=f"{name}-{instance}-t"
                    ),
                    config=LoopConfig(
                        group_id=name,
                        topics=tuple(ins),
                        service="bench",
                        exactly_once=True,
                        wave_interval_ms=wave_interval_ms(),
                    ),
                )
            )

        async def stop_when_asked() -> None:
            while not progress.stop.is_set():
                # Ready when every stage holds its partitions: the first stage's count.
                progress.assigned = len(loops[0].assigned) if all(x.assigned for x in loops) else 0
                await asyncio.sleep(0.05)
            for x in loops:
                x.stop()

        watcher = asyncio.create_task(stop_when_asked())
        try:
            await asyncio.gather(*(x.run() for x in loops))
        finally:
            watcher.cancel()

    async def serve(self) -> None:
        lag = asyncio.create_task(self.lag.run())
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
        while line := await reader.readline():
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "intake":
                await self.intake(cmd)
            elif op == "run":
                if cmd.get("fresh"):
                    self.say({"fresh": self.fresh()})
                self.run_task = asyncio.create_task(self.run(cmd))
            elif op == "fresh":
                self.say({"fresh": self.fresh()})
            elif op == "stop":
                if self.progress is not None:
                    self.progress.stop.set()
                if self.run_task is not None:
                    await self.run_task
            elif op == "lag":
                self.say({"lag": self.lag.percentiles()})
                if cmd.get("reset"):
                    self.lag.reset()
            elif op == "exit":
                break
        lag.cancel()
        if self.run_task is not None and not self.run_task.done():
            assert self.progress is not None
            self.progress.stop.set()
            await self.run_task
        if self.parts is not None:
            await self.parts.stop()
            if self.follow is not None:
                await self.follow


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("bootstrap")
    parser.add_argument("--tracing", choices=("on", "off"), default="on")
    args = parser.parse_args()
    install_telemetry(args.tracing == "on")
    asyncio.run(Worker(KafkaSettings(bootstrap_servers=args.bootstrap)).serve())


if __name__ == "__main__":
    main()
