"""One record never stops everything (issue 13.5), on the real broker: a rejected record close to the
broker's message size is dead-lettered as a truncated copy that points to the original, and the loop
goes on with the next record."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from onegrid.kafka import BatchResult, DeadLetter, OutRecord, Record
from onegrid.kafka.loop import ConsumerLoop, LoopConfig, make_consumer
from onegrid.kafka.producer import make_producer
from onegrid.settings import KafkaSettings

from .conftest import TopicFactory, read_all


async def test_an_oversize_rejected_record_is_dead_lettered_truncated_and_the_loop_goes_on(
    kafka_settings: KafkaSettings, topics: TopicFactory
) -> None:
    # The input topic takes 2 MiB records (a legacy feed's own limit); the DLQ keeps the default 1 MiB.
    src = await topics("oversize.in", extra_config={"max.message.bytes": str(2 * 1024 * 1024 + 1024)})
    out, dlq = await topics("oversize.out"), await topics("oversize.dlq")
    big = b"<alert>" + b"x" * (1024 * 1024 + 100_000) + b"</alert>"
    p = AIOKafkaProducer(max_request_size=3 * 1024 * 1024, **kafka_settings.client_kwargs())
    await p.start()
    for v in (b"a", big, b"b"):
        await p.send_and_wait(src, v, key=b"k", headers=[("origin", b"gateway-1")])
    await p.stop()

    async def handler(records: Sequence[Record]) -> BatchResult:
        res = BatchResult()
        for r in records:
            if len(r.value or b"") > 1000:
                res.dead_letters.append(DeadLetter(r, "cap.too_large", "the alert is too large"))
            else:
                res.outputs.append(OutRecord(out, (r.value or b"").upper()))
        return res

    group = f"g-{src}"
    producer = make_producer(kafka_settings, client_id=f"{group}-p")
    await producer.start()
    loop = ConsumerLoop(
        consumer=make_consumer(kafka_settings, group_id=group, client_id=f"{group}-c"),
        handler=handler,
        producer=producer,
        config=LoopConfig(group_id=group, topics=(src,), service="test", dlq_topic=dlq, batch_max_records=1),
    )
    task = asyncio.create_task(loop.run())
    try:
        outputs = await read_all(kafka_settings, out, expect=2, timeout_s=60)
    finally:
        loop.stop()
        await asyncio.wait_for(task, 30)  # raises if the loop died on the oversize copy
        await producer.stop()
    assert [r.value for r in outputs] == [b"A", b"B"]
    [copy] = await read_all(kafka_settings, dlq, expect=1, timeout_s=20)
    h = {k: v.decode() for k, v in copy.headers}
    assert h["dlq_reason"] == "cap.too_large" and h["origin"] == "gateway-1"
    assert h["dlq_truncated"] == "true" and h["dlq_original_bytes"] == str(len(big))
    assert h["dlq_original_sha256"] == hashlib.sha256(big).hexdigest()
    assert (h["dlq_topic"], h["dlq_partition"], h["dlq_offset"]) == (src, "0", "1")  # points to the original
    assert big.startswith(copy.value) and 0 < len(copy.value) < 1024 * 1024
