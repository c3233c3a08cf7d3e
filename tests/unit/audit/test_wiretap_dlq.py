"""The wire tap has a dead-letter topic (issue 13.5): a record the trail writer refuses with a
non-transient error is set aside with the reason and the tap goes on, instead of stopping for good.
The loop is the one the audit's composition root wires, on the in-memory broker."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence

from audit.bootstrap import bootstrap
from audit.settings import Settings
from audit.trail_writer import Appended
from audit.wiretap import WireTap
from onegrid.kafka import Record
from onegrid.kafka.loop import ConsumerLoop, LoopConfig
from onegrid.kafka.memory import MemoryBroker, MemoryConsumer, MemoryProducer


class RefusingWriter:
    """Stores everything but one record, which it refuses as no retry would fix."""

    def __init__(self) -> None:
        self.stored: list[bytes] = []

    async def append(self, records: Sequence[Record]) -> Appended:
        if any(r.value == b"unstorable" for r in records):
            raise ValueError("the trail cannot store this record")
        self.stored += [r.value or b"" for r in records]
        return Appended(appended=len(records), duplicates=0, tree_size=len(self.stored))


async def test_a_record_the_trail_refuses_goes_to_the_audit_dlq_and_the_tap_goes_on() -> None:
    settings = Settings(environment="test", signing_key=base64.b64encode(bytes(range(32))).decode())
    wiring = bootstrap(settings).wiring
    [spec] = wiring.loop_specs
    broker = MemoryBroker()
    for v in (b"a", b"unstorable", b"b"):
        broker.append("cases.v1", v)
    writer = RefusingWriter()
    loop = ConsumerLoop(
        consumer=MemoryConsumer(broker, "audit.wiretap"),
        handler=WireTap(writer).handle,  # type: ignore[arg-type]
        producer=MemoryProducer(broker),
        config=LoopConfig(
            group_id="audit.wiretap",
            topics=("cases.v1",),
            service="audit",
            dlq_topic=spec.dlq_topic,
            quarantine_topic=spec.quarantine_topic,
            commit_interval_s=0,
        ),
    )
    task = asyncio.create_task(loop.run())
    for _ in range(300):
        if broker.committed.get(("audit.wiretap", ("cases.v1", 0))) == 3 or task.done():
            break
        await asyncio.sleep(0.01)
    loop.stop()
    await task  # the tap did not stop on the record
    assert writer.stored == [b"a", b"b"]
    [dead] = broker.records("audit.dlq.v1")
    assert dead.value == b"unstorable"
    assert dict(dead.headers)["dlq_reason"] == b"unhandled.ValueError"
