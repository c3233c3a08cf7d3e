"""A consume-transform-produce worker on the shared ConsumerLoop, run as a separate process so tests
can SIGKILL or SIGTERM it: `python relay.py BOOTSTRAP IN OUT GROUP MODE [DELAY_S] [COMMIT_INTERVAL_S]`.

MODE is `eos` (transactional) or `alo` (at least once). Values b"poison" make the handler raise.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

from onegrid.kafka import BatchResult, OutRecord, Record
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer, partition_producers
from onegrid.settings import KafkaSettings


async def main(
    bootstrap: str, src: str, dst: str, group: str, mode: str, delay: float, interval: float
) -> None:
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    eos = mode == "eos"
    producer = make_producer(kafka, client_id=f"{group}-p")
    await producer.start()

    async def handle(records: Sequence[Record]) -> BatchResult:
        if delay:
            await asyncio.sleep(delay)
        for r in records:
            if r.value == b"poison":
                raise ValueError("poison value")
        return BatchResult(outputs=[OutRecord(dst, b"out:" + (r.value or b""), r.key) for r in records])

    loop = ConsumerLoop(
        consumer=make_consumer(kafka, group_id=group, client_id=f"{group}-c"),
        handler=handle,
        producer=producer,
        transactional=partition_producers(kafka, group=group, client_id=f"{group}-t") if eos else None,
        config=LoopConfig(
            group_id=group,
            topics=(src,),
            service="relay",
            dlq_topic=f"{src}.dlq",
            exactly_once=eos,
            batch_max_records=50,
            commit_interval_s=interval,
        ),
    )
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, loop.stop)
    print("ready", flush=True)
    try:
        await loop.run()
    finally:
        await producer.stop()


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(
        main(
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            float(a[5]) if len(a) > 5 else 0.0,
            float(a[6]) if len(a) > 6 else 1.0,
        )
    )
