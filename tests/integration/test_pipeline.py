"""The shared library on the real broker: exactly once across SIGKILL, poison to DLQ, SIGTERM drain,
and the trace continuing across a Kafka hop."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from onegrid import telemetry
from onegrid.kafka import BatchResult, OutRecord
from onegrid.kafka.admin import consumer_lag
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer

from .conftest import read_all

RELAY = Path(__file__).parent / "workers" / "relay.py"


async def produce(kafka, topic: str, values: list[bytes]) -> None:
    p = AIOKafkaProducer(**kafka.client_kwargs())
    await p.start()
    try:
        futs = [await p.send(topic, v, key=v) for v in values]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


def start_relay(
    bootstrap: str, src: str, dst: str, group: str, mode: str, delay: float = 0.0, interval: float = 1.0
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(RELAY), bootstrap, src, dst, group, mode, str(delay), str(interval)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_sigkill_mid_stream_then_restart_delivers_every_input_exactly_once(
    kafka_settings, topics
) -> None:
    src, dst = await topics("eos.in", partitions=3), await topics("eos.out", partitions=3)
    n = 3000
    ids = [f"id-{i:05d}".encode() for i in range(n)]
    await produce(kafka_settings, src, ids)
    group = f"g-{src}"
    # Slowed (0.1 s per batch of 50, ~6 s in all) and watched closely, so the kill lands mid-stream.
    worker = start_relay(kafka_settings.bootstrap_servers, src, dst, group, "eos", delay=0.1)
    progress = AIOKafkaConsumer(
        dst,
        auto_offset_reset="earliest",
        isolation_level="read_uncommitted",
        **kafka_settings.client_kwargs(),
    )
    await progress.start()
    try:
        seen = 0
        deadline = asyncio.get_running_loop().time() + 60
        while seen < 600:
            batch = await progress.getmany(timeout_ms=50)
            seen += sum(len(v) for v in batch.values())
            assert asyncio.get_running_loop().time() < deadline, f"only {seen} outputs after 60 s"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        await progress.stop()
    mid = len(await read_all(kafka_settings, dst, timeout_s=2))
    assert 0 < mid < n, f"the kill must land mid-stream (had {mid} of {n})"
    restarted = start_relay(kafka_settings.bootstrap_servers, src, dst, group, "eos")
    try:
        out = await read_all(kafka_settings, dst, expect=n, timeout_s=90)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
    counts = Counter(r.value for r in out)
    assert set(counts) == {b"out:" + i for i in ids}
    assert max(counts.values()) == 1, f"duplicates: {[k for k, c in counts.items() if c > 1][:5]}"


async def test_poison_message_goes_to_dlq_with_original_bytes_and_pipeline_continues(
    kafka_settings, topics
) -> None:
    src, dst = await topics("poison.in"), await topics("poison.out")
    dlq = f"{src}.dlq"
    from onegrid.kafka.admin import ensure_topics
    from onegrid.topics import TopicSpec

    await ensure_topics(kafka_settings, [TopicSpec(dlq, partitions=1)])
    await produce(kafka_settings, src, [b"a", b"b", b"poison", b"c", b"d"])
    worker = start_relay(kafka_settings.bootstrap_servers, src, dst, f"g-{src}", "eos")
    try:
        out = await read_all(kafka_settings, dst, expect=4, timeout_s=60)
        dead = await read_all(kafka_settings, dlq, expect=1, timeout_s=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert [r.value for r in out] == [b"out:a", b"out:b", b"out:c", b"out:d"]
    assert len(dead) == 1 and dead[0].value == b"poison" and dead[0].key == b"poison"
    h = dict(dead[0].headers)
    assert h["dlq_reason"] == b"unhandled.ValueError"
    assert h["dlq_topic"] == src.encode() and h["dlq_offset"] == b"2"


async def test_sigterm_drains_commits_and_leaves(kafka_settings, topics) -> None:
    src, dst = await topics("drain.in"), await topics("drain.out")
    group = f"g-{src}"
    await produce(kafka_settings, src, [f"m{i}".encode() for i in range(200)])
    # A commit interval of an hour: only the shutdown path can commit.
    worker = start_relay(kafka_settings.bootstrap_servers, src, dst, group, "alo", interval=3600)
    await read_all(kafka_settings, dst, expect=200, timeout_s=60)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.stderr.read().decode() if worker.stderr else ""
    lags = [r for r in await consumer_lag(kafka_settings, [group]) if r.topic == src]
    assert lags and all(r.lag == 0 and r.committed == 200 for r in lags), lags


async def test_trace_continues_across_a_kafka_hop(kafka_settings, topics) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    src, dst = await topics("trace.in"), await topics("trace.out")

    # Producer side: a span whose context travels in the record's headers.
    p = AIOKafkaProducer(**kafka_settings.client_kwargs())
    await p.start()
    with tracer.start_as_current_span("intake.receive") as sent:
        headers = telemetry.inject([])
        await p.send_and_wait(src, b"x", headers=headers)
    await p.stop()

    seen: list[trace.SpanContext] = []

    async def handler(records):
        seen.append(trace.get_current_span().get_span_context())
        return BatchResult(outputs=[OutRecord(dst, r.value) for r in records])

    producer = make_producer(kafka_settings, client_id="trace-p")
    await producer.start()
    loop = ConsumerLoop(
        consumer=make_consumer(kafka_settings, group_id=f"g-{src}", client_id="trace-c"),
        handler=handler,
        producer=producer,
        config=LoopConfig(group_id=f"g-{src}", topics=(src,), service="t"),
    )
    loop._tracer = tracer  # the test's provider, not the process-wide one
    task = asyncio.create_task(loop.run())
    try:
        await read_all(kafka_settings, dst, expect=1, timeout_s=30)
    finally:
        loop.stop()
        await task
        await producer.stop()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    consumer_span = spans[f"process {src}"]
    assert consumer_span.context.trace_id == sent.get_span_context().trace_id
    assert (
        consumer_span.parent is not None and consumer_span.parent.span_id == sent.get_span_context().span_id
    )
    assert seen and seen[0].span_id == consumer_span.context.span_id
