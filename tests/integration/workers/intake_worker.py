"""The intake pipeline as its own process on test-private topics, so a test can SIGKILL it:
`python intake_worker.py BOOTSTRAP NAMESPACE [DELAY_S]`. Topics are `<catalogue name>.<NAMESPACE>`.

INTAKE_WORKER_STAGES=2 runs intake as the service does: the legacy stage (group `intake.<NS>.legacy`)
forwards the reports that may join another network's case to the correlation stage (group
`intake.<NS>.correlate`, its state on the correlation changelog), which decides and accounts them.
Otherwise one stage decides everything where it is read (group `intake.<NS>`)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from intake.bootstrap import IntakeParts, intake_parts
from intake.pipeline import IntakeTopics
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer, partition_producers
from onegrid.settings import KafkaSettings
from onegrid.topics import (
    CASES,
    GRID_REGISTRY,
    INTAKE_CORRELATE,
    INTAKE_CORRELATE_STATE,
    INTAKE_DLQ,
    INTAKE_LEDGER,
    INTAKE_QUARANTINE,
    INTAKE_STATE,
)

FEEDS = {
    "legacy.env.hj212.v1": "hj212",
    "legacy.emergency.cap.v1": "cap",
    "legacy.safety.v1": "safety",
    "legacy.party.v1": "party",
}


def names(ns: str) -> dict[str, str]:
    base = [
        *FEEDS,
        CASES,
        INTAKE_STATE,
        GRID_REGISTRY,
        INTAKE_DLQ,
        INTAKE_QUARANTINE,
        INTAKE_LEDGER,
        INTAKE_CORRELATE,
        INTAKE_CORRELATE_STATE,
    ]
    return {t: f"{t}.{ns}" for t in base}


def two_stages() -> bool:
    return os.environ.get("INTAKE_WORKER_STAGES") == "2"


async def main(bootstrap: str, ns: str, delay: float) -> None:
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    n = names(ns)
    topics = IntakeTopics(
        feeds={n[t]: f for t, f in FEEDS.items()},
        cases=n[CASES],
        state=n[INTAKE_STATE],
        # INTAKE_WORKER_LEDGER=1: write the ledger's accounts too (the test creates that topic).
        ledger=n[INTAKE_LEDGER] if os.environ.get("INTAKE_WORKER_LEDGER") else None,
        correlate=n[INTAKE_CORRELATE] if two_stages() else None,
        correlate_state=n[INTAKE_CORRELATE_STATE] if two_stages() else None,
    )
    parts = intake_parts(kafka, client_id=f"intake-{ns}", topics=topics, registry_topic=n[GRID_REGISTRY])
    await parts.catch_up()
    follow = asyncio.create_task(parts.follow())
    group = f"intake.{ns}"
    if two_stages():
        await run_stages(kafka, parts, group, n, delay)
        await follow
        return
    producer = make_producer(kafka, client_id=f"{group}-p")
    await producer.start()

    async def handle(records):  # type: ignore[no-untyped-def]
        if delay:
            await asyncio.sleep(delay)  # slows the first run so that a test's SIGKILL lands mid-stream
        return await parts.pipeline.handle(records)

    loop = ConsumerLoop(
        consumer=make_consumer(kafka, group_id=group, client_id=f"{group}-c"),
        handler=handle,
        producer=producer,
        transactional=partition_producers(kafka, group=group, client_id=f"{group}-t"),
        prepare=parts.handover,
        config=LoopConfig(
            group_id=group,
            topics=tuple(topics.feeds),
            service="intake",
            exactly_once=True,
            dlq_topic=n[INTAKE_DLQ],
            quarantine_topic=n[INTAKE_QUARANTINE],
            batch_max_records=200,
        ),
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, loop.stop)
    print("ready", flush=True)
    try:
        await loop.run()
    finally:
        await parts.stop()
        await follow
        await producer.stop()


async def run_stages(
    kafka: KafkaSettings, parts: IntakeParts, group: str, n: dict[str, str], delay: float
) -> None:
    """Both stages as the service runs them (IntakeParts.loops), each batch of each slowed by `delay`."""
    pipeline = parts.pipeline
    if delay:
        pipeline.handle = _slowed(pipeline.handle, delay)  # type: ignore[method-assign]
        pipeline.correlate = _slowed(pipeline.correlate, delay)  # type: ignore[method-assign]
    loops = parts.loops(
        kafka,
        group_prefix=group,
        client_id=group,
        dlq_topic=n[INTAKE_DLQ],
        quarantine_topic=n[INTAKE_QUARANTINE],
        batch_max_records=200,
        tick_interval_s=0.5,  # idle partitions' watermarks: the correlation stage decides the last records
    )
    # One handler: a second add_signal_handler for SIGTERM would replace the first.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, lambda: [loop.stop() for loop in loops])
    print("ready", flush=True)
    try:
        await asyncio.gather(*(loop.run() for loop in loops))
    finally:
        await parts.stop()


def _slowed(handler, delay: float):  # type: ignore[no-untyped-def]
    async def handle(records):  # type: ignore[no-untyped-def]
        await asyncio.sleep(delay)  # slows the first run so that a test's SIGKILL lands mid-stream
        return await handler(records)

    return handle


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0.0))
